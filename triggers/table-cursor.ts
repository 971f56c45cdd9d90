/**
 * The polling engine of new-row and new-or-updated-row: SELECT only, nothing installed.
 *
 * Cursor = (ordering column, primary key), so rows with equal values are neither skipped nor
 * repeated, read with LIMIT (the rest comes next poll) through an index on the column when one
 * exists. Late commits are handled by a delivery horizon (horizon.ts): rows are read only up to
 * a value that no transaction still open can commit below, so the cursor never passes a row
 * that becomes visible later.
 */
import { describeTable, execute, PgActionsError, quoteIdentifier, type TableInfo } from '../connection/index.js';
import type { Batch, SampleResult, TriggerArguments, TriggerEvent } from './definition.js';
import { eventId, keyTextId } from './event-id.js';
import { advanceHorizon, type Horizon } from './horizon.js';
import { columnOrders, compare, forgetKeyOrders, keyTypesSql, rowAfter, stale } from './key-order.js';

export interface TableCursorConfig {
  table: string;
  column: string;
  batchSize?: number;
  from?: 'now' | 'beginning';
}

/** The last delivered row's (column, ...primary key) values; null = before the first row. */
export interface TableCursorPosition {
  after: unknown[] | null;
  /**
   * The same row's values as PostgreSQL writes them (each column's text): the cursor, exact for every
   * type, where `after` (values as events carry them) does not always read back (a jsonb string or a
   * number beyond a double). Absent in states made before it existed: `after` is the cursor then.
   */
  afterText?: string[] | null;
  /** How far the cursor may go (absent in states made before the horizon existed, and by start). */
  horizon?: Horizon;
}

export interface TableRowEvent<Op extends string = string> extends TriggerEvent {
  op: Op;
  schema: string;
  table: string;
  key: Record<string, unknown>;
  new: Record<string, unknown>;
}

const SAMPLE_SIZE = 3;

interface Shape {
  info: TableInfo;
  table: string;
  order: string[];
}

async function shapeOf(connection: unknown, config: TableCursorConfig): Promise<Shape> {
  const info = await describeTable(connection, config.table, 'config.table');
  if (!info) {
    throw new PgActionsError('UNDEFINED_TABLE', { message: `config.table: no table ${JSON.stringify(config.table)} is visible to this user`, problems: ['config.table does not exist'] });
  }
  if (!info.columns.some((c) => c.name === config.column)) {
    throw new PgActionsError('UNDEFINED_COLUMN', {
      message: `config.column: ${info.schema}.${info.name} has no column ${JSON.stringify(config.column)}`,
      problems: ['config.column is not a column of config.table'],
    });
  }
  if (info.primaryKey.length === 0) {
    throw new PgActionsError('INVALID_INPUT', {
      message: `config.table: ${info.schema}.${info.name} has no primary key; the cursor needs one to tell rows with equal ${config.column} apart`,
      problems: ['config.table must have a primary key'],
      fixes: ['Add a primary key to the table, or use the row-changes trigger.'],
    });
  }
  const order = [config.column, ...info.primaryKey.filter((k) => k !== config.column)];
  return { info, table: `${quoteIdentifier(info.schema)}.${quoteIdentifier(info.name)}`, order };
}

function rowKey(info: TableInfo, row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(info.primaryKey.map((k) => [k, row[k]]));
}

export async function startPosition(args: TriggerArguments<TableCursorConfig>, attempt = 0): Promise<TableCursorPosition> {
  if (args.config.from === 'beginning') return { after: null };
  const { info, table, order } = await shapeOf(args.connection, args.config);
  const columns = order.map((c) => `t.${quoteIdentifier(c)}`);
  const texts = textSelect(info, order);
  const orders = await columnOrders(args.connection, table, order, 'config.column');
  const typesColumn = freeName(info, 'pg_actions_key_types');
  const { rows } = await execute(args.connection, {
    text: `SELECT ${columns.join(', ')}, ${keyTypesSql('$1', '$2', '$3')} AS ${quoteIdentifier(typesColumn)}, ${texts.sql} FROM ${table} AS t WHERE t.${quoteIdentifier(order[0]!)} IS NOT NULL ORDER BY ${columns.map((c) => c + ' DESC').join(', ')} LIMIT 1`,
    values: [table, order, info.primaryKey],
    readOnly: true,
    fixedFormats: true,
  });
  // A start made by a cached primary key the table no longer has would be refused by the first poll (REVIEW8 R145): read it again by the current one.
  if (rows[0] && stale(args.connection, table, order, orders, rows[0][typesColumn]) && attempt < 2) return startPosition(args, attempt + 1);
  return rows[0] ? { after: order.map((c) => rows[0]![c]), afterText: [...texts.take(rows[0]).orderText] } : { after: null };
}

export async function pollTable<Event extends TableRowEvent>(
  args: TriggerArguments<TableCursorConfig>,
  position: TableCursorPosition,
  toEvent: RowToEvent<Event>,
  attempt = 0,
): Promise<Batch<Event, TableCursorPosition>> {
  const { info, table, order } = await shapeOf(args.connection, args.config);
  if (position.after !== null && (!Array.isArray(position.after) || position.after.length !== order.length)) {
    throw new PgActionsError('TRIGGER_STATE_INVALID', { message: 'state.position does not fit the table\'s primary key (it changed since the state was made)', problems: ['state.position.after has the wrong number of values'] });
  }
  const afterText = position.after === null ? null : position.afterText ?? null;
  if (afterText !== null && (!Array.isArray(afterText) || afterText.length !== order.length || !afterText.every((value) => typeof value === 'string'))) {
    throw new PgActionsError('TRIGGER_STATE_INVALID', { message: 'state.position does not fit the table\'s primary key (it changed since the state was made, or the state was edited)', problems: ['state.position.afterText must hold one text per value of state.position.after'] });
  }
  const stay = afterText === null ? { after: position.after } : { after: position.after, afterText };
  const columns = order.map((c) => `t.${quoteIdentifier(c)}`);
  // Compared with the columns' own opclass operators, never ones the search_path finds (REVIEW6 R110). A
  // column without a btree ordering (json) is refused naming config.column before the horizon's ORDER BY meets it.
  const orders = await columnOrders(args.connection, table, order, 'config.column');
  const horizon = await advanceHorizon(args.connection, table, quoteIdentifier(order[0]!), position.horizon);
  if (horizon.through === null || horizon.through === undefined) return { events: [], position: { ...stay, horizon } };
  // The rows carry the key columns' current types under a name no column has: compared with cached
  // orders of a type the key no longer has (REVIEW7 R124), or by a cached primary key the table no
  // longer has (REVIEW8 R145), the rows are read again with the table's current shape and orders.
  const typesColumn = freeName(info, 'pg_actions_key_types');
  const texts = textSelect(info, order);
  const values: unknown[] = [...(afterText ?? position.after ?? [])];
  // Parameter n as the column's base type. The cursor and horizon hold values as events carry them: a
  // bytea as base64, which bytea's input would read as its own characters (REVIEW7 R133).
  const bound = (n: number, column: number) => (orders[column]!.base === 'pg_catalog.bytea' ? `pg_catalog.decode($${n}::pg_catalog.text, 'base64')` : `$${n}::${orders[column]!.base}`);
  // The cursor as text is read by the type's own input (a parameter of that type, not a cast).
  const cursor = afterText ? (n: number, column: number) => `$${n}::${orders[column]!.base}` : bound;
  const after = position.after
    ? ` AND ${compare(columns[0]!, 'ge', cursor(1, 0), orders[0]!)} AND ${rowAfter(columns, order.map((_, i) => cursor(i + 1, i)), orders)}`
    : '';
  values.push(horizon.through, table, order, info.primaryKey, args.config.batchSize ?? 100);
  const n = values.length;
  // A statement after the horizon's: its snapshot sees every row up to horizon.through.
  const rows = await execute(args.connection, {
    text: `SELECT t.*, ${keyTypesSql(`$${n - 3}`, `$${n - 2}`, `$${n - 1}`)} AS ${quoteIdentifier(typesColumn)}, ${texts.sql} FROM ${table} AS t WHERE ${compare(columns[0]!, 'le', bound(n - 4, 0), orders[0]!)}${after} ORDER BY ${columns.join(', ')} LIMIT $${n}`,
    values,
    readOnly: true,
    fixedFormats: true,
  }).then(({ rows: read }) => read, (error: unknown) => {
    // Cached orders of a key type the table no longer has (dropped and made again with another within
    // 30 s) bind the horizon or cursor as the old type, and the statement fails before its key types can
    // say they are stale (INVALID_VALUE on a value the user never gave, REVIEW8 R146): forget the
    // orders and the table's shape, and poll once more.
    if (attempt > 0 || !(error instanceof PgActionsError) || !/^(22|42883$|42804$)/.test(error.sqlstate ?? '')) throw error;
    forgetKeyOrders(args.connection, table, order);
    // An edited cursor fails the same way with fresh orders: said as the state's problem, without polling again (REVIEW10 R166).
    return position.after === null ? undefined : refuseUnreadableCursor(args, table, order, values.slice(0, order.length), afterText !== null).then(() => undefined);
  });
  if (rows === undefined) return pollTable(args, position, toEvent, attempt + 1);
  // No row, nothing delivered: the position stays, and the next poll compares again.
  if (rows.length > 0 && stale(args.connection, table, order, orders, rows[0]![typesColumn])) {
    if (attempt < 2) return pollTable(args, position, toEvent, attempt + 1);
    throw new PgActionsError('INVALID_INPUT', {
      message: `config.table: the key's type of ${info.schema}.${info.name} changed while each of three polls was read; poll again once the schema change is over`,
      problems: ["config.table's key changed type during the poll"],
    });
  }
  for (const row of rows) delete row[typesColumn];
  let lastText: readonly string[] = [];
  const events = rows.map((row) => {
    const { orderText, keyText } = texts.take(row);
    lastText = orderText;
    return toEvent(info, row, keyText);
  });
  const last = rows[rows.length - 1];
  return { events, position: last ? { after: order.map((c) => last[c]), afterText: [...lastText], horizon } : { ...stay, horizon } };
}

/**
 * Throws TRIGGER_STATE_INVALID naming the cursor when its values do not read as the key columns'
 * current base types (the state was edited: afterText ['abc'] for an int key); returns when they do.
 */
async function refuseUnreadableCursor(args: TriggerArguments<TableCursorConfig>, table: string, order: readonly string[], cursor: unknown[], asText: boolean): Promise<void> {
  const orders = await columnOrders(args.connection, table, order, 'config.column');
  const read = (column: number) => (!asText && orders[column]!.base === 'pg_catalog.bytea' ? `pg_catalog.decode($${column + 1}::pg_catalog.text, 'base64')` : `$${column + 1}::${orders[column]!.base}`);
  const field = asText ? 'state.position.afterText' : 'state.position.after';
  // Each value named apart (c1, c2…): unnamed, two of one type were both "int4", which a result refuses (INVALID_INPUT, not the check).
  await execute(args.connection, { text: `SELECT ${order.map((_, i) => `${read(i)} AS c${i + 1}`).join(', ')}`, values: cursor, readOnly: true }).catch((error: unknown) => {
    if (!(error instanceof PgActionsError) || !/^(22|23514$)/.test(error.sqlstate ?? '')) throw error;
    throw new PgActionsError('TRIGGER_STATE_INVALID', {
      message: `${field} is not a value of the cursor columns' types of ${table} (${error.message}): the state was edited, or the key was retyped; poll from a new state`,
      problems: [`${field} does not read as the cursor columns' types`],
      cause: error,
    });
  });
}

/** `name`, or `name_2`, `name_3`…: the first that is not a column of the table. */
function freeName(info: TableInfo, name: string): string {
  const taken = new Set(info.columns.map((c) => c.name));
  let candidate = name;
  for (let i = 2; taken.has(candidate); i++) candidate = `${name}_${i}`;
  return candidate;
}

/** An event from a row, its primary key's text as PostgreSQL writes it (keyTextSelect) and, for new-or-updated-row, its version. */
export type RowToEvent<Event> = (shape: TableInfo, row: Record<string, unknown>, keyText: readonly string[]) => Event;

/**
 * The cursor columns' text as PostgreSQL writes it (each type's output function, as COPY writes it:
 * format's %s, no cast a user could have made), selected under a name no column has; take() reads it
 * off a row and removes it: the cursor's text (`order`'s) and the primary key's, the event id's
 * (keyTextId), which is not made from the parsed key.
 */
function textSelect(info: TableInfo, order: readonly string[]) {
  const column = freeName(info, 'pg_actions_key_text');
  const keyAt = info.primaryKey.map((k) => order.indexOf(k));
  return {
    sql: `ARRAY[${order.map((c) => `pg_catalog.format('%s', t.${quoteIdentifier(c)})`).join(', ')}] AS ${quoteIdentifier(column)}`,
    take(row: Record<string, unknown>): { orderText: readonly string[]; keyText: readonly string[] } {
      const orderText = row[column] as string[];
      delete row[column];
      return { orderText, keyText: keyAt.map((at) => orderText[at]!) };
    },
  };
}

/** The event of a row: its id "<hash of trigger, table and version>:<the key's text as a JSON array>" (keyTextId, as table-sync's). */
export function tableEvent<Op extends string>(trigger: string, op: Op, info: TableInfo, row: Record<string, unknown>, keyText: readonly string[], version: unknown[]): TableRowEvent<Op> {
  return { id: keyTextId(eventId(trigger, info.schema, info.name, ...version), keyText), op, schema: info.schema, table: info.name, key: rowKey(info, row), new: row };
}

/** The latest rows as events, and a warning when the ordering column has no index to read through. */
export async function sampleTable<Event extends TableRowEvent>(
  args: TriggerArguments<TableCursorConfig>,
  toEvent: RowToEvent<Event>,
): Promise<SampleResult<Event>> {
  const { info, table, order } = await shapeOf(args.connection, args.config);
  const texts = textSelect(info, order);
  const columns = order.map((c) => `t.${quoteIdentifier(c)}`);
  const [{ rows }, { rows: indexed }] = await Promise.all([
    execute(args.connection, {
      text: `SELECT t.*, ${texts.sql} FROM ${table} AS t WHERE ${columns[0]} IS NOT NULL ORDER BY ${columns.map((c) => c + ' DESC').join(', ')} LIMIT ${SAMPLE_SIZE}`,
      readOnly: true,
      fixedFormats: true,
    }),
    execute(args.connection, {
      text: `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
              WHERE i.indrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass::pg_catalog.oid AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name AND i.indisvalid) AS indexed`,
      values: [table, args.config.column],
      readOnly: true,
    }),
  ]);
  const warnings = indexed[0]?.indexed
    ? []
    : [`${info.schema}.${info.name} has no index starting with ${args.config.column}: every poll reads the whole table. Create one: CREATE INDEX ON ${table} (${quoteIdentifier(args.config.column)});`];
  return { events: rows.map((row) => toEvent(info, row, texts.take(row).keyText)), warnings, notes: [] };
}
