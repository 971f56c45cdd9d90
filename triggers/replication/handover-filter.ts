/**
 * The CDC side of a table-sync handover (sync/handover.ts): until the stream passes the WAL
 * position where the sync ended, a change is dropped when its transaction is visible in the
 * snapshot of the batch that read its row: the copy already holds that change or a newer version.
 * Every other change is newer than the copy's row and is delivered. Per row, changes reach the WAL
 * in the order they became visible (row locks serialize them), so what is delivered is exactly the
 * suffix of the row's history after the version the sync read: no gap, no stale row.
 */
import { execute, PgActionsError } from '../../connection/index.js';
import type { Batch } from '../definition.js';
import { castKey } from '../sync/keyset.js';
import type { CdcHandover, HandoverTable } from '../sync/handover.js';
import type { ChangeEvent } from './changes.js';
import { keyComparisons } from './handover-types.js';
import { parseLsn } from './lsn.js';
import type { CdcPosition } from './stream.js';

export type HandoverPosition = CdcPosition & { handover?: CdcHandover };

/** Drops the changes the sync's rows already hold; the position keeps the handover until it passes `until`. */
export async function filterHandover(connection: unknown, handover: CdcHandover, batch: Batch<ChangeEvent, CdcPosition>): Promise<Batch<ChangeEvent, HandoverPosition>> {
  const until = parseLsn(handover.until);
  const reopened = new Set(handover.reopened);
  const positionAfter = (): HandoverPosition => {
    if (parseLsn(batch.position.lsn) >= until) return batch.position;
    return { ...batch.position, handover: reopened.size > (handover.reopened?.length ?? 0) ? { ...handover, reopened: [...reopened] } : handover };
  };
  const inWindow = (event: ChangeEvent) => parseLsn(event.lsn) < until;
  const byTable = new Map<HandoverTable, ChangeEvent[]>();
  for (const event of batch.events) {
    const table = inWindow(event) ? handover.tables.find((t) => t.schema === event.schema && t.table === event.table) : undefined;
    if (table) byTable.set(table, [...(byTable.get(table) ?? []), event]);
  }
  if (byTable.size === 0) return { events: batch.events, position: positionAfter() };
  const replaced = new Map<ChangeEvent, ChangeEvent | null>();
  for (const [table, events] of byTable) {
    const keyed = events.filter((e) => e.op !== 'TRUNCATE');
    const keys = keyed.flatMap((e) => [keyOf(table, e.new ?? e.old), keyOf(table, e.old ?? e.new)]);
    const at = await batchIndexes(connection, table, keys);
    keyed.forEach((event, i) => replaced.set(event, judge(table, event, at[2 * i]!, at[2 * i + 1]!, reopened)));
    for (const event of events.filter((e) => e.op === 'TRUNCATE')) replaced.set(event, truncate(table, event));
  }
  const events = batch.events.flatMap((event) => {
    const result = replaced.has(event) ? replaced.get(event) : event;
    return result ? [result] : [];
  });
  return { events, position: positionAfter() };
}

/**
 * Whether the copy already holds one row change, by the snapshots of the batches that read its new
 * and old keys. A removal (a DELETE's key, or the old key of an UPDATE that moved the row) is judged
 * by the table's first batch instead: a killed sync may have delivered a batch whose state was never
 * stored, its rows read in an earlier snapshot than the one recorded when the batch was read again,
 * and a row removed in between is absent from the second read. Only a removal visible in the first
 * batch can have been missed by every read; any later one is delivered (the copy may not hold that
 * key: apply deletes as "if present"). But when the key's own batch saw that removal, the copy may
 * hold what came after it (the key inserted again, or a row moved onto it, REVIEW4 R26): every later
 * change of that key is delivered too (`reopened`, kept in the position until the handover ends),
 * so the delivered DELETE is followed by the key's newer history, never left to remove it.
 */
function judge(table: HandoverTable, event: ChangeEvent, newAt: number, oldAt: number, reopened: Set<string>): ChangeEvent | null {
  const moved = event.op === 'UPDATE' && event.old !== undefined && table.key.some((column) => event.old?.[column] !== event.new?.[column]);
  const removes = event.op === 'DELETE' || moved;
  const first = table.batches[0]![1], oldRead = table.batches[oldAt]![1];
  const oldKey = reopenedKey(table, event.old ?? event.new), newKey = reopenedKey(table, event.new ?? event.old);
  if (removes && !visibleIn(event.xid, first) && visibleIn(event.xid, oldRead)) reopened.add(oldKey);
  const inNew = !reopened.has(newKey) && visibleIn(event.xid, table.batches[newAt]![1]);
  const inOld = !reopened.has(oldKey) && visibleIn(event.xid, removes ? first : oldRead);
  return decide(table, event, inNew, inOld);
}

function reopenedKey(table: HandoverTable, row: Record<string, unknown> | undefined): string {
  return JSON.stringify([table.schema, table.table, ...keyOf(table, row)]);
}

/** Keep, drop or split one row change: is it already in the copy's row of its new key, of its old key? */
function decide(table: HandoverTable, event: ChangeEvent, inNew: boolean, inOld: boolean): ChangeEvent | null {
  if (event.op === 'DELETE') return inOld ? null : event;
  if (inNew && inOld) return null; // the copy's rows already hold it (or something newer)
  if (!inNew && !inOld) return event;
  // An UPDATE that moved the row to another primary key, read by batches on both sides of it.
  const { new: after, unchanged: _unchanged, old: before, ...rest } = event;
  if (inNew) return { ...rest, op: 'DELETE', key: Object.fromEntries(table.key.map((column) => [column, before?.[column] ?? null])), old: before };
  return { ...rest, new: after, ...(event.unchanged ? { unchanged: event.unchanged } : {}), oldRow: 'none' };
}

/** A TRUNCATE before the whole copy is in it; after it, it applies; in the middle, no event can say which rows it removed. */
function truncate(table: HandoverTable, event: ChangeEvent): ChangeEvent | null {
  if (visibleIn(event.xid, table.batches[0]![1])) return null;
  if (!visibleIn(event.xid, table.batches[table.batches.length - 1]![1])) return event;
  throw new PgActionsError('SYNC_HANDOVER_BROKEN', {
    message: `${table.schema}.${table.table} was truncated while table-sync was copying it: the copy mixes rows from before and after the TRUNCATE.`,
  });
}

function keyOf(table: HandoverTable, row: Record<string, unknown> | undefined): unknown[] {
  return table.key.map((column) => row?.[column] ?? null);
}

/** For each key, the index of the batch whose range holds it (PostgreSQL compares, in the key's own types and collations). */
async function batchIndexes(connection: unknown, table: HandoverTable, keys: unknown[][]): Promise<number[]> {
  const bounds = table.batches.slice(0, -1).map(([upTo]) => upTo);
  if (bounds.length === 0) return keys.map(() => 0);
  // From the host's state: never spliced as they are. Compared in each column's collation, as the sync ordered them (REVIEW4 R43).
  const columns = await keyComparisons(connection, table);
  const collated = (text: string, collation: string | null) => (collation ? `${text} COLLATE ${collation}` : text);
  const row = (alias: string) => `(${columns.map(({ type, collation }, i) => collated(castKey(`${alias}.v->>${i}`, type), collation)).join(', ')})`;
  const { rows } = await execute(connection, {
    text: `SELECT (SELECT count(*) FROM jsonb_array_elements($2::jsonb) AS b(v) WHERE ${row('b')} < ${row('e')})::int AS at
             FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(v, n) ORDER BY e.n`,
    values: [JSON.stringify(keys), JSON.stringify(bounds)],
    readOnly: true,
  });
  return rows.map((r) => r.at as number);
}

const parsed = new Map<string, { xmin: bigint; xmax: bigint; running: Set<bigint> }>();

/** Is the transaction `xid` (32 bits, as pgoutput sends it) committed in `snapshot` (txid_current_snapshot text)? */
export function visibleIn(xid: number, snapshot: string): boolean {
  let s = parsed.get(snapshot);
  if (!s) {
    const [xmin, xmax, running] = snapshot.split(':');
    s = { xmin: BigInt(xmin!), xmax: BigInt(xmax!), running: new Set((running ?? '').split(',').filter(Boolean).map(BigInt)) };
    if (parsed.size > 10_000) parsed.clear();
    parsed.set(snapshot, s);
  }
  // Widen the 32-bit xid with the epoch of the snapshot's xmax (they are far less than 2^31 apart).
  let full = (s.xmax & ~0xffffffffn) + BigInt(xid >>> 0);
  if (full > s.xmax + 0x80000000n) full -= 0x100000000n;
  else if (full < s.xmax - 0x80000000n) full += 0x100000000n;
  if (full < s.xmin) return true;
  if (full >= s.xmax) return false;
  return !s.running.has(full);
}
