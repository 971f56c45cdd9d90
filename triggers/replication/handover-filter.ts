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
import { keyObject, keyRecord } from '../key-input.js';
import type { CdcHandover, HandoverTable } from '../sync/handover.js';
import { invalidState } from '../state.js';
import { keyTextOf, type ChangeEvent } from './changes.js';
import { keyComparisons } from './handover-types.js';
import { parseLsn } from './lsn.js';
import type { CdcPosition } from './stream.js';

export type HandoverPosition = CdcPosition & { handover?: CdcHandover };

/** Drops the changes the sync's rows already hold; the position keeps the handover until it passes `until`. */
export async function filterHandover(connection: unknown, handover: CdcHandover, batch: Batch<ChangeEvent, CdcPosition>): Promise<Batch<ChangeEvent, HandoverPosition>> {
  const until = parseLsn(handover.until);
  const reopenedKeys = [...(handover.reopenedKeys ?? [])];
  if (!reopenedKeys.every((entry) => Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'string')) {
    throw invalidState('state.position.handover.reopenedKeys holds an entry that is not [schema, table, key] (the state was edited)', ['state.position.handover must be the one a previous poll returned']);
  }
  const legacy = new Set(handover.reopened);
  const positionAfter = (): HandoverPosition => {
    if (parseLsn(batch.position.lsn) >= until) return batch.position;
    return { ...batch.position, handover: reopenedKeys.length > (handover.reopenedKeys?.length ?? 0) ? { ...handover, reopenedKeys } : handover };
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
    // The keys as the server wrote them: parsed values do not always cast back to the key (REVIEW5 R101-R103).
    const texts = keyed.map((e) => keyTextOf(e, table.key) ?? missingText());
    const mine = reopenedKeys.filter(([schema, name]) => schema === table.schema && name === table.table).map(([, , key]) => key);
    const placed = await placeKeys(connection, table, texts.flatMap((text) => [text.new, text.old]), mine);
    const reopened: Reopened = {
      classes: new Set(placed.reopened),
      legacy,
      add: (key) => void reopenedKeys.push([table.schema, table.table, key]),
    };
    keyed.forEach((event, i) => replaced.set(event, judge(table, event, texts[i]!, placed.keys[2 * i]!, placed.keys[2 * i + 1]!, reopened)));
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
function judge(table: HandoverTable, event: ChangeEvent, text: KeyText, newAt: Placed, oldAt: Placed, reopened: Reopened): ChangeEvent | null {
  // Compared as the server's text (parsed arrays, jsonb and bytea values are never === one another), and
  // by the key type's equality: a citext key updated from "e" to "E" stays the same key, in the same batch.
  const moved = event.op === 'UPDATE' && event.old !== undefined && text.old.some((value, i) => value !== text.new[i]) && newAt.equal !== oldAt.equal;
  const removes = event.op === 'DELETE' || moved;
  const first = table.batches[0]![1], oldRead = table.batches[oldAt.batch]![1];
  const isReopened = (at: Placed, row: Record<string, unknown> | undefined) => reopened.classes.has(at.equal) || (reopened.legacy.size > 0 && reopened.legacy.has(legacyKey(table, row)));
  if (removes && !visibleIn(event.xid, first) && visibleIn(event.xid, oldRead) && !reopened.classes.has(oldAt.equal)) {
    reopened.classes.add(oldAt.equal);
    reopened.add(text.old as string[]);
  }
  const inNew = !isReopened(newAt, event.new ?? event.old) && visibleIn(event.xid, table.batches[newAt.batch]![1]);
  const inOld = !isReopened(oldAt, event.old ?? event.new) && visibleIn(event.xid, removes ? first : oldRead);
  return decide(table, event, inNew, inOld);
}

/** The keys reopened so far, as classes of equal keys in this batch's placement; `legacy`: an older state's. */
interface Reopened {
  classes: Set<number>;
  legacy: Set<string>;
  add(key: string[]): void;
}

function legacyKey(table: HandoverTable, row: Record<string, unknown> | undefined): string {
  return JSON.stringify([table.schema, table.table, ...table.key.map((column) => row?.[column] ?? null)]);
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

type KeyText = NonNullable<ReturnType<typeof keyTextOf>>;

function missingText(): never {
  throw new Error('table-changes-cdc: a change reached the handover without its key text (the stream was read without keyText)');
}

/** Where a key falls: the index of the batch whose range holds it, and its class of equal keys (the same number: the same key). */
interface Placed {
  batch: number;
  equal: number;
}

/**
 * For each key (the server's text of its columns), the index of the batch whose range holds it: how
 * many batch bounds sort before it. PostgreSQL sorts the keys and the bounds together with ORDER BY,
 * each column cast to its type and in the column's collation (REVIEW4 R43): the ordering of the
 * type's default btree operator class, the one the sync's `ORDER BY key` cut the batches with, found
 * from the type and never through the search_path (an operator of citext installed in a schema off
 * it, REVIEW5 R108), so no operator of a user's schema is involved. Keys that sort as ties are the
 * same key for the primary key (citext 'A' and 'a'): they share a class, and so do the reopened
 * keys (`reopened`, one class each). Bounds of states made before they were kept as text are cast
 * from the parsed values, as they always were.
 */
async function placeKeys(connection: unknown, table: HandoverTable, keys: (string | null)[][], reopened: unknown[]): Promise<{ keys: Placed[]; reopened: number[] }> {
  const bounds = table.batches.slice(0, -1).map(([upTo]) => upTo);
  // One batch: nothing to place, and no key can be reopened (its batch is the first); each key a class of its own.
  if (bounds.length === 0 && reopened.length === 0) return { keys: keys.map((_, i) => ({ batch: 0, equal: -1 - i })), reopened: [] };
  const width = table.key.length;
  const texts = bounds.filter((bound) => !Array.isArray(bound)).map((bound) => (bound as { text?: unknown } | null)?.text);
  const parsed = bounds.filter((bound) => Array.isArray(bound));
  const isText = (text: unknown) => Array.isArray(text) && text.length === width && text.every((value) => typeof value === 'string');
  if (!texts.every(isText) || !reopened.every(isText) || !parsed.every((bound) => bound.length === width)) {
    throw invalidState('state.position.handover holds a batch bound or reopened key that does not fit the table\'s key (the state was edited)', ['state.position.handover must be the one a previous poll returned']);
  }
  // An older state's parsed array (or composite) value never read back as its key: refused as it always was (jsonb_to_record would read a bytea[]'s base64 as bytes).
  if (parsed.some((bound) => bound.some((value) => value !== null && typeof value === 'object'))) {
    throw invalidState(`state.position.handover holds a batch bound that is not a key of ${table.schema}.${table.table}: it was made by a table-sync that recorded an array key's parsed value, which never casts back; sync again`, ['state.position.handover must be the one a previous poll returned']);
  }
  // From the host's state: never spliced as they are (types and collations are the server's names for them).
  // Read as the key's ultimate base type, never a domain: a domain's CHECK, chosen by its owner, would run as the flow's role (REVIEW7 R139);
  // and through the type's input function (jsonb_to_record), never a cast from text its owner may make at any moment (REVIEW8 R143).
  const columns = await keyComparisons(connection, table);
  const types = columns.map(({ type }) => type);
  const exact = keyRecord('x', types);
  // The parsed values of an older state, as they were read before (bytea events carry base64).
  const older = keyRecord('x', types, true);
  const select = (kind: number, alias: string, parameter: number, record: { definition: string; values: string[] }) =>
    `SELECT ${kind}, ${alias}.n, ${record.values.join(', ')} FROM pg_catalog.jsonb_array_elements($${parameter}::pg_catalog.jsonb) WITH ORDINALITY AS ${alias}(v, n)
       CROSS JOIN LATERAL pg_catalog.jsonb_to_record(${alias}.v) AS x(${record.definition})`;
  const order = columns.map(({ collation }, i) => `w.c${i}${collation ? ` COLLATE ${collation}` : ''}`).join(', ');
  const names = columns.map((_, i) => `c${i}`).join(', ');
  const is = (kind: number) => `w.kind OPERATOR(pg_catalog.=) ${kind}`;
  try {
    const { rows } = await execute(connection, {
      // Kinds: 0 a key, 1 a bound, 2 an older state's bound, 3 a reopened key. Ties: a key equal to a
      // bound sorts before it (kind 0 first), so it counts only the bounds below it.
      text: `SELECT s.kind, s.at, s.equal FROM (
               SELECT w.kind, w.n,
                      (pg_catalog.count(*) FILTER (WHERE ${is(1)} OR ${is(2)}) OVER (ORDER BY ${order}, w.kind ROWS UNBOUNDED PRECEDING))::pg_catalog.int4 AS at,
                      (pg_catalog.dense_rank() OVER (ORDER BY ${order}))::pg_catalog.int4 AS equal
                 FROM (${select(0, 'e', 1, exact)}
                       UNION ALL ${select(1, 'b', 2, exact)}
                       UNION ALL ${select(2, 'o', 3, older)}
                       UNION ALL ${select(3, 'r', 4, exact)}) AS w(kind, n, ${names})
             ) AS s WHERE s.kind OPERATOR(pg_catalog.=) 0 OR s.kind OPERATOR(pg_catalog.=) 3 ORDER BY s.kind, s.n`,
      values: [keys, texts, parsed, reopened].map((list) => JSON.stringify((list as unknown[][]).map(keyObject))),
      readOnly: true,
    });
    return {
      keys: rows.filter((r) => r.kind === 0).map((r) => ({ batch: r.at as number, equal: r.equal as number })),
      reopened: rows.filter((r) => r.kind === 3).map((r) => r.equal as number),
    };
  } catch (error) {
    // A bound that is not a value of its column's type: edited, or an older state's parsed value that never cast back (an array).
    if (error instanceof PgActionsError && /^22/.test(error.sqlstate ?? '')) {
      throw invalidState(`state.position.handover holds a batch bound or reopened key that is not a key of ${table.schema}.${table.table} (${error.message}): the state was edited, or made by a table-sync that recorded an array key's parsed value, which never casts back; sync again`, ['state.position.handover must be the one a previous poll returned']);
    }
    throw error;
  }
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
