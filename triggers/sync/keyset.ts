/** The keyset reader of table-sync: the next batch after the cursor, in primary key order, and the cursor after it. */
import { describeTable, execute, PgActionsError, quoteIdentifier, quoteQualifiedName } from '../../connection/index.js';
import type { TableSyncConfig, TableSyncEvent } from '../../schemas/types.gen.js';
import type { Batch, TriggerArguments } from '../definition.js';
import { eventId } from '../event-id.js';
import { invalidState } from '../state.js';

export interface SyncPosition {
  /** When the run started: part of every id, so a new run's events are new. */
  run: string;
  /** Index in config.tables of the table being copied (= tables.length when done). */
  table: number;
  /** Primary key values of the last handled row of that table; null before its first. */
  after: unknown[] | null;
  rowsDone: number;
  estimatedTotal: number;
}

export async function estimatedRows(connection: unknown, tables: readonly string[]): Promise<number> {
  const names = tables.map((table, i) => quoteQualifiedName(table, `config.tables[${i}]`));
  const { rows } = await execute(connection, {
    text: 'SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint AS total FROM pg_class c WHERE c.oid = ANY (SELECT to_regclass(t) FROM unnest($1::text[]) AS t)',
    values: [names],
    readOnly: true,
  });
  return Number(rows[0]!.total);
}

export async function readBatch(args: TriggerArguments<TableSyncConfig>, position: SyncPosition): Promise<Batch<TableSyncEvent, SyncPosition>> {
  const tables = args.config.tables;
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
  const batchSize = args.config.batchSize ?? 1000;
  const key = info.primaryKey.map((name) => `t.${quoteIdentifier(name)}`);
  const types = info.primaryKey.map((name) => info.columns.find((c) => c.name === name)!.type);
  const after = position.after ? `WHERE (${key.join(', ')}) > (${types.map((type, i) => (type === 'bytea' ? `decode($${i + 1}, 'base64')` : `$${i + 1}::${type}`)).join(', ')}) ` : '';
  const values = [...(position.after ?? []), batchSize];
  const { rows } = await execute(args.connection, {
    text: `SELECT t.* FROM ${quoteIdentifier(info.schema)}.${quoteIdentifier(info.name)} AS t ${after}ORDER BY ${key.join(', ')} LIMIT $${values.length}`,
    values,
    readOnly: true,
  });
  let rowsDone = position.rowsDone;
  const estimatedTotal = position.estimatedTotal;
  // One hash per batch for the run and table; per row only the key's JSON (a hash per row halves throughput).
  const prefix = eventId('table-sync', position.run, info.schema, info.name);
  const events = rows.map((row): TableSyncEvent => {
    const values = info.primaryKey.map((name) => row[name]);
    const rowKey = Object.fromEntries(info.primaryKey.map((name, i) => [name, values[i]]));
    rowsDone++;
    return { id: `${prefix}:${JSON.stringify(values)}`, op: 'READ', schema: info.schema, table: info.name, key: rowKey, new: row, progress: { rowsDone, estimatedTotal } };
  });
  const last = rows[rows.length - 1];
  const next: SyncPosition = rows.length < batchSize
    ? { ...position, table: position.table + 1, after: null, rowsDone }
    : { ...position, after: info.primaryKey.map((name) => last![name]), rowsDone };
  return { events, position: next };
}
