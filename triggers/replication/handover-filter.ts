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
import { parseLsn } from './lsn.js';
import type { CdcPosition } from './stream.js';

export type HandoverPosition = CdcPosition & { handover?: CdcHandover };

/** Drops the changes the sync's rows already hold; the position keeps the handover until it passes `until`. */
export async function filterHandover(connection: unknown, handover: CdcHandover, batch: Batch<ChangeEvent, CdcPosition>): Promise<Batch<ChangeEvent, HandoverPosition>> {
  const until = parseLsn(handover.until);
  const position: HandoverPosition = parseLsn(batch.position.lsn) < until ? { ...batch.position, handover } : batch.position;
  const inWindow = (event: ChangeEvent) => parseLsn(event.lsn) < until;
  const byTable = new Map<HandoverTable, ChangeEvent[]>();
  for (const event of batch.events) {
    const table = inWindow(event) ? handover.tables.find((t) => t.schema === event.schema && t.table === event.table) : undefined;
    if (table) byTable.set(table, [...(byTable.get(table) ?? []), event]);
  }
  if (byTable.size === 0) return { events: batch.events, position };
  const replaced = new Map<ChangeEvent, ChangeEvent | null>();
  for (const [table, events] of byTable) {
    const keyed = events.filter((e) => e.op !== 'TRUNCATE');
    const keys = keyed.flatMap((e) => [keyOf(table, e.new ?? e.old), keyOf(table, e.old ?? e.new)]);
    const at = await batchIndexes(connection, table, keys);
    keyed.forEach((event, i) => replaced.set(event, decide(table, event, table.batches[at[2 * i]!]![1], removalSnapshot(table, event, at[2 * i + 1]!))));
    for (const event of events.filter((e) => e.op === 'TRUNCATE')) replaced.set(event, truncate(table, event));
  }
  const events = batch.events.flatMap((event) => {
    const result = replaced.has(event) ? replaced.get(event) : event;
    return result ? [result] : [];
  });
  return { events, position };
}

/**
 * The snapshot that says whether the copy can still hold the key a change removes (a DELETE's key,
 * or the old key of an UPDATE that moved the row). A killed sync may have delivered a batch whose
 * state was never stored: its rows were read in an earlier snapshot than the one recorded when
 * the batch was read again, and a row removed in between is absent from the second read. Only a
 * removal visible in the table's first batch can have been missed by every read; any later one is
 * delivered (the copy may not hold that key: apply deletes as "if present").
 */
function removalSnapshot(table: HandoverTable, event: ChangeEvent, oldKeyBatch: number): string {
  const moved = event.op === 'UPDATE' && event.old !== undefined && table.key.some((column) => event.old?.[column] !== event.new?.[column]);
  return event.op === 'DELETE' || moved ? table.batches[0]![1] : table.batches[oldKeyBatch]![1];
}

/** Keep, drop or split one row change by the snapshots of the batches that read its new and old keys. */
function decide(table: HandoverTable, event: ChangeEvent, newSnapshot: string, oldSnapshot: string): ChangeEvent | null {
  if (event.op === 'DELETE') return visibleIn(event.xid, oldSnapshot) ? null : event;
  const inNew = visibleIn(event.xid, newSnapshot);
  const inOld = visibleIn(event.xid, oldSnapshot);
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
  const row = (alias: string) => `(${table.types.map((type, i) => castKey(`${alias}.v->>${i}`, type)).join(', ')})`;
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
