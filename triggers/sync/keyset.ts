/**
 * The keyset reader of table-sync: the next batch after the cursor, in primary key order, and the
 * cursor after it. A batch is one REPEATABLE READ transaction: its snapshot (txid_current_snapshot)
 * is recorded when the sync hands over to table-changes-cdc (sync/handover.ts), and the rows come
 * through COPY (SELECT … ORDER BY key LIMIT n), decoded once the batch is complete.
 */
import { configOf, describeTable, execute, PgActionsError, quoteIdentifier, quoteQualifiedName } from '../../connection/index.js';
import { setField } from '../../connection/row-field.js';
import { copyInSnapshot } from '../../connection/snapshot-copy.js';
import { typeResolutionSql } from '../../connection/result-types.js';
import type { TableSyncConfig, TableSyncEvent } from '../../schemas/types.gen.js';
import type { Batch, TriggerArguments } from '../definition.js';
import { eventId, keyTextId } from '../event-id.js';
import { keyObject, keyValues } from '../key-input.js';
import { columnOrders, keyTypesSql, rowAfter, stale } from '../key-order.js';
import { invalidState } from '../state.js';
import { checkSyncHandover } from './checked-handover.js';
import { isLabelsFingerprint, keyEnumLabelsSql, labelsFingerprint, labelsRenamed } from '../enum-labels.js';
import { recordBatch, type SyncHandover } from './handover.js';
import { readShrinking } from './shrinking-batch.js';

export interface SyncPosition {
  /** When the run started: part of every id, so a new run's events are new. */
  run: string;
  /** Index in config.tables of the table being copied (= tables.length when done). */
  table: number;
  /** Primary key values of the last handled row of that table (as events carry them); null before its first. */
  after: unknown[] | null;
  /**
   * The same key as PostgreSQL wrote it (COPY text): what the next batch starts after. Parsed values
   * do not always cast back to the value they came from (bytea and domains over it, arrays, jsonb
   * numbers beyond a double: REVIEW5 R101-R103); the server's own text always does. Absent in
   * states made before it: `after` is used then.
   */
  afterText?: (string | null)[] | null;
  /**
   * The key columns' types and collations (oids, as JSON) read by the batch that made the cursor: the
   * cursor orders rows only in them, so a later batch whose statement reads others (ALTER COLUMN …
   * TYPE or COLLATE since) refuses the state rather than skip rows (REVIEW10 R165). Absent before a
   * table's first cursor and in states made before it (read as they are).
   */
  keyShape?: string;
  /**
   * The labels of the enums the key's types reach, when the batch made the cursor (enum-labels.ts): a
   * label renamed since gives the cursor's text another place, so a later batch refuses the state
   * (REVIEW11 R175). Absent when the key reaches no enum, before a table's first cursor and in states
   * made before it (read as they are: a rename is not seen).
   */
  keyLabels?: string;
  rowsDone: number;
  estimatedTotal: number;
  /** Estimated memory of one row's event in the table being copied, from the last batch (sizes the next one). */
  rowBytes?: number;
  /** With config.handover: each batch's snapshot, and the state table-changes-cdc starts from. */
  handover?: SyncHandover;
}

/** The custom setting that carries the keyset cursor into COPY (which takes no parameters). */
const AFTER_SETTING = 'pg_actions.sync_after';
/** Rows of a table's first batch, before its rows' size is known. */
const FIRST_BATCH_ROWS = 1000;
/**
 * Memory of a delivered event beyond its row's COPY text: the event, its id, key and progress, the
 * row object, and per column a property and a value (heap measured on Node 20: 395 bytes for a
 * 3-column row of 27 bytes of text; this estimates 379).
 */
const EVENT_OVERHEAD_BYTES = 256;
const COLUMN_OVERHEAD_BYTES = 32;

/**
 * Rows of the next batch: at most batchSize, and as many as fit batchBytes (and half the
 * connection's maxResultBytes, which caps the COPY text) at the last batch's size per row.
 * Batches of a few MB also leave V8's young generation before most scavenges: a batch that
 * outgrows it is copied and promoted whole, which cost more than the rows' parsing (bench/).
 */
export function batchRows(config: TableSyncConfig, maxResultBytes: number, rowBytes: number | undefined): number {
  const most = Math.trunc(config.batchSize ?? 50_000);
  if (rowBytes === undefined) return Math.min(most, FIRST_BATCH_ROWS);
  const budget = Math.min(config.batchBytes ?? 4 * 1024 * 1024, maxResultBytes / 2);
  return Math.max(1, Math.min(most, Math.floor(budget / rowBytes)));
}

export async function estimatedRows(connection: unknown, tables: readonly string[]): Promise<number> {
  const names = tables.map((table, i) => quoteQualifiedName(table, `config.tables[${i}]`));
  const { rows } = await execute(connection, {
    // Every name qualified: a look-alike unnest(text[]) in public would run with the flow's role (REVIEW6 R112).
    text:
      'SELECT COALESCE(pg_catalog.sum(GREATEST(c.reltuples, 0::pg_catalog.float4)), 0)::pg_catalog.int8 AS total FROM pg_catalog.pg_class c ' +
      'WHERE c.oid OPERATOR(pg_catalog.=) ANY (SELECT pg_catalog.to_regclass(t)::pg_catalog.oid FROM pg_catalog.unnest($1::pg_catalog.text[]) AS t)',
    values: [names],
    readOnly: true,
  });
  return Number(rows[0]!.total);
}

/**
 * The counts of a state the host kept, as table-sync wrote them (REVIEW6 R122): edited, a
 * `rowBytes` of "abc" reached the COPY as `LIMIT NaN` (an UNDEFINED_COLUMN "nan") and a
 * `rowsDone` of "x" gave events `progress.rowsDone: null`.
 */
function checkCounts(position: SyncPosition): void {
  const count = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
  const problems = [
    count(position.table) ? undefined : 'state.position.table must be the index of a table of config.tables (a whole number, 0 or more)',
    count(position.rowsDone) ? undefined : 'state.position.rowsDone must be a whole number, 0 or more',
    count(position.estimatedTotal) ? undefined : 'state.position.estimatedTotal must be a whole number, 0 or more',
    position.rowBytes === undefined || (typeof position.rowBytes === 'number' && Number.isFinite(position.rowBytes) && position.rowBytes > 0) ? undefined : 'state.position.rowBytes must be a positive number when present',
  ].filter((problem): problem is string => problem !== undefined);
  if (problems.length > 0) throw invalidState('state.position holds counts table-sync never writes (the state was edited, or made by something else)', problems);
}

/**
 * A cursor that no longer reads as its key type (an enum label renamed or dropped, a domain's
 * check tightened since the state was made) fails every poll the same way: say the state is the
 * problem, not a value the user gave (REVIEW6 R120).
 */
async function withCursorChecked<T>(hasCursor: boolean, field: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (!hasCursor || !(error instanceof PgActionsError) || (error.code !== 'INVALID_VALUE' && error.code !== 'CHECK_VIOLATION')) throw error;
    const stale = invalidState(`state.position's cursor no longer reads as the primary key of ${field} (${error.message}): the key's type changed since the state was made`, [
      'state.position.afterText is not a value of the key type any more',
    ]);
    Object.defineProperty(stale, 'cause', { value: error, enumerable: false });
    throw stale;
  }
}

/**
 * The primary key columns' types ($3, in order) of the table ($2), each named with its schema whatever
 * the search_path (format_type omits it for a type visible there): table-changes-cdc resolves the name
 * on its own path, where a look-alike of an unqualified name could win (REVIEW10 R163). As JSON.
 */
const keyTypeNamesSql = `(SELECT pg_catalog.json_agg(pg_catalog.format('%I.%I'::pg_catalog.text, tn.nspname, ty.typname) ORDER BY u.n)::pg_catalog.text
                            FROM pg_catalog.unnest($3::pg_catalog.name[]) WITH ORDINALITY AS u(c, n)
                            JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) $2::pg_catalog.regclass::pg_catalog.oid
                             AND a.attname OPERATOR(pg_catalog.=) u.c AND NOT a.attisdropped
                            JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) a.atttypid
                            JOIN pg_catalog.pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=) ty.typnamespace)`;

/**
 * The primary key columns' ($3, in order) collations, named by the server as table-changes-cdc names the
 * column's then (quote_ident, schema-qualified; null for a type without one), as JSON: the batches are cut
 * in them, so the handover refuses to place changed keys in any other (REVIEW11 R174).
 */
const keyCollationNamesSql = `(SELECT pg_catalog.json_agg((SELECT pg_catalog.quote_ident(cn.nspname::pg_catalog.text) OPERATOR(pg_catalog.||) '.'::pg_catalog.text OPERATOR(pg_catalog.||) pg_catalog.quote_ident(co.collname::pg_catalog.text)
                                   FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) co.collnamespace
                                  WHERE co.oid OPERATOR(pg_catalog.=) a.attcollation) ORDER BY u.n)::pg_catalog.text
                                FROM pg_catalog.unnest($3::pg_catalog.name[]) WITH ORDINALITY AS u(c, n)
                                JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) $2::pg_catalog.regclass::pg_catalog.oid
                                 AND a.attname OPERATOR(pg_catalog.=) u.c AND NOT a.attisdropped)`;

/** The primary key columns' ($3, in order) types and collations of the table ($2), as JSON: what orders the cursor. */
const keyShapeSql = `(SELECT pg_catalog.json_agg(pg_catalog.json_build_array(a.atttypid, a.attcollation) ORDER BY u.n)::pg_catalog.text
                        FROM pg_catalog.unnest($3::pg_catalog.name[]) WITH ORDINALITY AS u(c, n)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) $2::pg_catalog.regclass::pg_catalog.oid
                         AND a.attname OPERATOR(pg_catalog.=) u.c AND NOT a.attisdropped)`;

/** `attempt`: batches read again because the key's type changed since its orders were cached (REVIEW7 R124). */
export async function readBatch(args: TriggerArguments<TableSyncConfig>, position: SyncPosition, attempt = 0): Promise<Batch<TableSyncEvent, SyncPosition>> {
  const tables = args.config.tables;
  checkCounts(position);
  if (position.handover !== undefined) checkSyncHandover(position.handover);
  if (position.table >= tables.length) return { events: [], position }; // the run is complete
  const field = `config.tables[${position.table}]`;
  const info = await describeTable(args.connection, tables[position.table]!, field);
  if (!info) throw new PgActionsError('UNDEFINED_TABLE', { message: `${field}: no table ${JSON.stringify(tables[position.table])} is visible to this user`, problems: [`${field} does not exist`] });
  if (info.primaryKey.length === 0) {
    throw new PgActionsError('INVALID_INPUT', {
      message: `${field}: ${info.schema}.${info.name} has no primary key to copy it in order`,
      problems: [`${field} must have a primary key`],
      fixes: [`ALTER TABLE ${quoteIdentifier(info.schema)}.${quoteIdentifier(info.name)} ADD PRIMARY KEY (<column>);`],
    });
  }
  if (position.after !== null && (!Array.isArray(position.after) || position.after.length !== info.primaryKey.length)) {
    throw invalidState('state.position.after does not fit the table\'s primary key (it changed since the state was made)', ['state.position.after has the wrong number of values']);
  }
  const afterText = position.afterText ?? null;
  if (afterText !== null && (!Array.isArray(afterText) || afterText.length !== info.primaryKey.length || !afterText.every((value) => typeof value === 'string'))) {
    throw invalidState('state.position.afterText does not fit the table\'s primary key (it changed since the state was made, or the state was edited)', ['state.position.afterText must hold one text per primary key column']);
  }
  if (position.keyShape !== undefined && typeof position.keyShape !== 'string') {
    throw invalidState('state.position.keyShape is not what table-sync writes (the state was edited)', ['state.position.keyShape must be the one a previous poll returned']);
  }
  if (position.keyLabels !== undefined && !isLabelsFingerprint(position.keyLabels)) {
    throw invalidState('state.position.keyLabels is not what table-sync writes (the state was edited)', ['state.position.keyLabels must be the one a previous poll returned']);
  }
  const target = `${quoteIdentifier(info.schema)}.${quoteIdentifier(info.name)}`;
  const key = info.primaryKey.map((name) => `t.${quoteIdentifier(name)}`);
  // Compared with the key's own opclass operators, never ones the search_path finds (REVIEW6 R109/R110).
  const orders = await columnOrders(args.connection, target, info.primaryKey, field);
  // The cursor is read through the key types' input functions, never a cast from text (REVIEW8 R143).
  const cursor = keyValues(`pg_catalog.current_setting('${AFTER_SETTING}')::pg_catalog.jsonb`, orders.map(({ base }) => base), !afterText);
  const where = afterText || position.after ? `WHERE ${rowAfter(key, cursor, orders)} ` : '';

  let rowsDone = position.rowsDone;
  const estimatedTotal = position.estimatedTotal;
  // One hash per batch for the run and table; per row only the key's text as JSON (a hash per row halves throughput).
  const prefix = eventId('table-sync', position.run, info.schema, info.name);
  let events: TableSyncEvent[] = [];
  const keyOf = rowKeyOf(info.primaryKey);
  let lastRow: Record<string, unknown> | undefined;
  const { rows: batchSize, result: read } = await withCursorChecked(afterText !== null || position.after !== null, field, () => readShrinking(batchRows(args.config, configOf(args.connection).maxResultBytes, position.rowBytes), field, (batchSize) => {
    // A batch read again smaller starts over.
    ((events = []), (rowsDone = position.rowsDone), (lastRow = undefined));
    return copyInSnapshot(args.connection, {
      table: target,
      prelude: {
        text: `SELECT pg_catalog.txid_current_snapshot()::pg_catalog.text AS snapshot, pg_catalog.set_config('${AFTER_SETTING}', $1, true) AS after,
                      ${position.handover ? 'pg_catalog.pg_current_wal_lsn()::pg_catalog.text' : 'NULL::pg_catalog.text'} AS wal,
                      (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(a.attname, r.base, r.element) ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                         JOIN (${typeResolutionSql(`SELECT atttypid FROM pg_catalog.pg_attribute WHERE attrelid OPERATOR(pg_catalog.=) $2::pg_catalog.regclass::pg_catalog.oid AND attnum OPERATOR(pg_catalog.>) 0 AND NOT attisdropped`)}) r ON r.type OPERATOR(pg_catalog.=) a.atttypid
                        WHERE a.attrelid OPERATOR(pg_catalog.=) $2::pg_catalog.regclass::pg_catalog.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) AS columns,
                      ${keyTypesSql('$2', '$3', '$3')} AS key_types, ${keyShapeSql} AS key_shape, ${keyEnumLabelsSql} AS key_labels,
                      ${position.handover ? keyTypeNamesSql : 'NULL::pg_catalog.text'} AS key_type_names,
                      ${position.handover ? keyCollationNamesSql : 'NULL::pg_catalog.text'} AS key_collation_names`,
        values: [JSON.stringify(keyObject(afterText ?? position.after ?? [])), target, info.primaryKey],
      },
      copy: `COPY (SELECT t.* FROM ${target} AS t ${where}ORDER BY ${key.join(', ')} LIMIT ${batchSize}) TO STDOUT`,
      keepText: info.primaryKey,
      // Each column's type as Query Rows sees it: a domain's base type, an unknown array's element (REVIEW4 R35).
      columns: (prelude) => (JSON.parse(prelude.columns!) as [string, number, number | null][]).map(([name, oid, element]) => ({ name, oid, element })),
      onRow(row, index, count, keyText) {
        // The hot loop of a sync: one event per row, no per-row closures or arrays. The array is
        // made at its final size, not grown by push (a store copied at each growth, up to ~128 KB):
        // 54 scavenges per 1,000,000 rows became 17 (--trace-gc, bench/).
        if (index === 0) events = new Array<TableSyncEvent>(count);
        rowsDone++;
        lastRow = row;
        events[index] = { id: keyTextId(prefix, keyText), op: 'READ', schema: info.schema, table: info.name, key: keyOf(row), new: row, progress: { rowsDone, estimatedTotal } };
      },
    });
  }));
  // Compared with the orders of a type the key no longer has (an ALTER … TYPE between reading them and
  // the batch): the batch is dropped and read again with the key's own.
  if (stale(args.connection, target, info.primaryKey, orders, read.prelude.key_types)) {
    if (attempt >= 2) {
      throw new PgActionsError('INVALID_INPUT', {
        message: `${field}: the primary key's type of ${info.schema}.${info.name} changed while each of three batches was read; poll again once the schema change is over`,
        problems: [`${field}'s primary key changed type during the sync`],
      });
    }
    return readBatch(args, position, attempt + 1);
  }
  // A cursor made in another order than the key's now (retyped or recollated between two batches): rows
  // between its place in the old order and in the new one would never be read (REVIEW10 R165).
  if ((afterText !== null || position.after !== null) && position.keyShape !== undefined && position.keyShape !== read.prelude.key_shape) {
    throw invalidState(`state.position's cursor was made when the primary key of ${info.schema}.${info.name} (${field}) had another type or collation (ALTER COLUMN … TYPE since): the rows after it are in another order now, and going on would skip some; sync again`, [
      'state.position was made with the key\'s old type: start table-sync again without a state',
    ]);
  }
  // A cursor whose enum label was renamed since (ALTER TYPE … RENAME VALUE): its text now names another
  // place in the enum's order, or none; rows between the two would never be read (REVIEW11 R175).
  if ((afterText !== null || position.after !== null) && position.keyLabels !== undefined && labelsRenamed(position.keyLabels, read.prelude.key_labels ?? null)) {
    throw invalidState(`state.position's cursor was made when an enum the primary key of ${info.schema}.${info.name} (${field}) holds had other labels (ALTER TYPE … RENAME VALUE since): the cursor's text names another place in the enum's order now, and going on would skip rows; sync again`, [
      'state.position was made with the enum\'s old labels: start table-sync again without a state',
    ]);
  }
  const last = lastRow ? info.primaryKey.map((name) => lastRow![name]) : null;
  const done = read.rows < batchSize;
  // The batch's bound as the server wrote it: the handover compares changed keys with it exactly (REVIEW5 R101-R103).
  const bound = done ? null : { text: read.lastText as string[] };
  // The key's types and collations as this batch's statement read them, not the table's cached shape: a key retyped since was recorded by its old type (REVIEW8 R149).
  // And its enums' labels: the bounds are label texts, which a rename before the handover ends would move (REVIEW11 R175).
  const labels = labelsFingerprint(read.prelude.key_labels ?? null);
  const shape = { schema: info.schema, table: info.name, key: info.primaryKey, types: JSON.parse(read.prelude.key_type_names!) as string[], collations: JSON.parse(read.prelude.key_collation_names!) as (string | null)[], ...(labels === undefined ? {} : { labels }) };
  const handover = position.handover
    ? recordBatch(position.handover, position.table, shape, bound, String(read.prelude.snapshot), done && position.table + 1 === tables.length ? String(read.prelude.wal) : undefined)
    : undefined;
  const next: SyncPosition = { ...position, after: last, afterText: read.lastText ?? null, rowsDone };
  delete next.rowBytes;
  delete next.keyShape;
  delete next.keyLabels;
  const keyLabels = done ? undefined : labels;
  if (done) Object.assign(next, { table: position.table + 1, after: null, afterText: null });
  else Object.assign(next, { keyShape: String(read.prelude.key_shape), rowBytes: Math.ceil(read.bytes / read.rows) + EVENT_OVERHEAD_BYTES + COLUMN_OVERHEAD_BYTES * read.columns });
  if (keyLabels !== undefined) next.keyLabels = keyLabels;
  if (handover) next.handover = handover;
  return { events, position: next };
}

/**
 * A row's key object, for its primary key. (Its event id is "<run and table hash>:<the key's text as a
 * JSON array>", keyTextId: from the key as PostgreSQL wrote it, COPY text.)
 */
function rowKeyOf(primaryKey: readonly string[]): (row: Record<string, unknown>) => Record<string, unknown> {
  if (primaryKey.length === 1) {
    const column = primaryKey[0]!;
    return (row) => {
      // Not a computed-key literal ({ [column]: … }): V8 builds those through a slow runtime call, 0.5 µs a row.
      const key: Record<string, unknown> = {};
      setField(key, column, row[column]); // a column named "__proto__" an own property, as in the row (assigned, it was dropped)
      return key;
    };
  }
  return (row) => Object.fromEntries(primaryKey.map((name) => [name, row[name]]));
}
