/**
 * The Trigger panel's "make a change" button: one INSERT, UPDATE or DELETE on a watched table,
 * so a flow author sees an event arrive without opening a database client. Values are made up
 * from each column's type and bound; names are quoted by connection/identifiers; the newest row
 * (by primary key) is the one updated or deleted.
 */
import { randomUUID } from 'node:crypto';
import { describeTable, execute, PgActionsError, quoteIdentifier, quoteQualifiedName, type ColumnInfo, type TableInfo } from '../connection/index.js';
import { invalidInput } from './http-errors.js';

export const CHANGE_OPS = ['insert', 'update', 'delete'] as const;
export type ChangeOp = (typeof CHANGE_OPS)[number];

export interface SampleChange {
  op: ChangeOp;
  table: string;
  /** The row as stored after the change (before it, for a delete); null when no row was there. */
  row: Record<string, unknown> | null;
}

/** Column names an application keeps at "last changed" (also the trigger's own column, when given). */
const TOUCHED = /^(updated|modified|changed)(_?at|_?on)?$/i;

export async function makeChange(connection: unknown, table: string, op: ChangeOp, touchColumn?: string): Promise<SampleChange> {
  const info = await describeTable(connection, table, 'table');
  if (!info) throw new PgActionsError('UNDEFINED_TABLE', { message: `table ${JSON.stringify(table)} does not exist or is not visible to this user`, problems: ['table does not exist'] });
  const target = quoteQualifiedName(table, 'table');
  // Distinct from one click to the next, small enough for integer and numeric(10,2) columns.
  const seq = Date.now() % 10_000_000;
  if (op === 'insert') {
    const columns = info.columns.filter((c) => c.requiredOnInsert);
    const names = columns.map((c) => quoteIdentifier(c.name));
    const values = columns.map((c) => sampleValue(c, seq));
    const text = names.length
      ? `INSERT INTO ${target} (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING *`
      : `INSERT INTO ${target} DEFAULT VALUES RETURNING *`;
    const { rows } = await execute(connection, { text, values, expectCommands: ['INSERT'], actionName: 'Make a change' });
    return { op, table, row: rows[0] ?? null };
  }
  const key = keyOf(info);
  // The newest row by its physical address: ORDER BY sorts with the key type's default opclass, while
  // `key = (…)` would look `=` up on the search_path, where an enum or domain key finds a look-alike
  // made in public (REVIEW7 R127). tableoid with ctid: a partitioned table's partitions share ctids.
  const newest = `ROW(tableoid, ctid) OPERATOR(pg_catalog.=) (SELECT tableoid, ctid FROM ${target} ORDER BY ${key.map((k) => `${k} DESC`).join(', ')} LIMIT 1)`;
  if (op === 'delete') {
    const { rows } = await execute(connection, { text: `DELETE FROM ${target} WHERE ${newest} RETURNING *`, expectCommands: ['DELETE'], actionName: 'Make a change' });
    return { op, table, row: rows[0] ?? null };
  }
  const { assignments, values } = updateOf(info, seq, touchColumn);
  const { rows } = await execute(connection, {
    text: `UPDATE ${target} SET ${assignments.join(', ')} WHERE ${newest} RETURNING *`,
    values,
    expectCommands: ['UPDATE'],
    actionName: 'Make a change',
  });
  return { op, table, row: rows[0] ?? null };
}

function keyOf(info: TableInfo): string[] {
  if (info.primaryKey.length === 0) {
    throw invalidInput(`table ${info.schema}.${info.name} has no primary key, so "make a change" cannot pick a row to update or delete: insert one instead, or change a row in another tab`);
  }
  return info.primaryKey.map((name) => quoteIdentifier(name));
}

/** A visible change to the first plain text column, plus "now" in any last-changed timestamp. */
function updateOf(info: TableInfo, seq: number, touchColumn: string | undefined): { assignments: string[]; values: unknown[] } {
  const writable = info.columns.filter((c) => !c.inPrimaryKey && !c.isGenerated && !c.isIdentity);
  const chosen: Array<[ColumnInfo, unknown]> = [];
  const text = writable.find((c) => c.category === 'S' && !c.isArray);
  if (text) chosen.push([text, `changed ${seq}`]);
  for (const c of writable) {
    if (c.category === 'D' && (c.name === touchColumn || TOUCHED.test(c.name))) chosen.push([c, 'now']);
  }
  if (chosen.length === 0) {
    // Nothing obvious to change: write a column onto itself, which still fires the row triggers.
    const any = writable[0] ?? info.columns.find((c) => !c.isGenerated)!;
    return { assignments: [`${quoteIdentifier(any.name)} = ${quoteIdentifier(any.name)}`], values: [] };
  }
  return { assignments: chosen.map(([c], i) => `${quoteIdentifier(c.name)} = $${i + 1}`), values: chosen.map(([, value]) => value) };
}

/** A value the column's type accepts, sent as text for the server to convert. */
function sampleValue(column: ColumnInfo, seq: number): unknown {
  if (column.isArray) return [];
  if (column.isJson) return JSON.stringify({ playground: seq });
  if (column.type === 'uuid') return randomUUID();
  if (column.type === 'smallint') return seq % 30_000;
  switch (column.category) {
    case 'N': return seq;
    case 'B': return true;
    case 'D': return 'now';
    case 'S': return /mail/i.test(column.name) ? `playground+${seq}@example.com` : `Playground ${seq}`;
    default:
      throw invalidInput(`"make a change" cannot make up a value for column ${column.name} (${column.type}), which needs one: change a row in another tab, or give the column a default`);
  }
}

/** For the listen trigger: a NOTIFY on its channel, with a small JSON payload (both bound). */
export async function sendNotification(connection: unknown, channel: string): Promise<{ op: 'notify'; channel: string; payload: unknown }> {
  const payload = { from: 'playground', at: new Date().toISOString() };
  await execute(connection, { text: 'SELECT pg_catalog.pg_notify($1::pg_catalog.text, $2::pg_catalog.text)', values: [channel, JSON.stringify(payload)] });
  return { op: 'notify', channel, payload };
}
