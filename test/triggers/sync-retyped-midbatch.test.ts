/**
 * table-sync reads its key's orders (key-order.ts) with each batch, then the batch in its own
 * transaction; the batch's statement reads the key's types again (keyTypesSql) and keyset.ts reads
 * the batch again when they changed in between (REVIEW7 R124), three times at most. Made
 * deterministic here: another session holds an ALTER COLUMN … TYPE uncommitted, so the batch
 * (which locks the table before its snapshot) waits for it after the orders were read; the ALTER
 * commits once the batch is seen waiting. The mutation run of keyset.ts (2026-11-30, ks-2) found
 * nothing reaching these lines: key-retyped.test's ALTER comes before the orders are read.
 */
import pg from 'pg';
import { pollTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf } from './helpers.js';

let other: pg.Client | undefined;
// The other session ends before the database is dropped (which would end it under its feet).
const db = useTestDatabase('sync_retyped_midbatch', { beforeDrop: () => other?.end() });

beforeAll(async () => {
  // 1 to 12: as text, '10', '11' and '12' sort before '2'.
  await db.sql(`CREATE TABLE once (k int PRIMARY KEY); INSERT INTO once SELECT generate_series(1, 12);
    CREATE TABLE thrice (k int PRIMARY KEY); INSERT INTO thrice SELECT generate_series(1, 12)`);
  const session = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
  await session.connect();
  other = session;
}, 60_000);

const poll = (table: string, state?: TriggerState) => pollTrigger('table-sync', { connection: db.config, config: { tables: [table], batchSize: 2 }, state });
const keys = (events: TriggerEvent[]) => events.map((event) => (event as unknown as { key: { k: unknown } }).key.k);

/** Until a session waits for a lock on `table` (the batch's LOCK behind the uncommitted ALTER). */
async function batchWaiting(table: string): Promise<void> {
  for (const started = Date.now(); Date.now() - started < 60_000; ) {
    const [row] = await db.sql<{ n: string }>(
      `SELECT count(*) AS n FROM pg_locks WHERE NOT granted AND locktype = 'relation' AND relation = $1::regclass AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [table],
    );
    if (Number(row!.n) > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no batch waited for ${table} within 60 s`);
}

test('the key retyped after the batch read its orders: the batch is read again with the new type\'s order', async () => {
  const first = await poll('once');
  expect(keys(first.events)).toEqual([1, 2]);
  await other!.query('BEGIN; ALTER TABLE once ALTER COLUMN k TYPE text USING k::text');
  // A state made before states kept the key's types (keyShape), read as it is: one with them is refused once the key is retyped (sync-retyped-state.test, REVIEW10 R165).
  delete (first.state.position as { keyShape?: string }).keyShape;
  const next = poll('once', first.state);
  await batchWaiting('once');
  await other!.query('COMMIT');
  const { events } = await next;
  // After '2' in text's order: '3', '4'. Compared with int's operators (the orders read before the ALTER)
  // the batch would be the rows past 2 as numbers, sorted as text: '10', '11'.
  const expected = (await db.sql<{ k: string }>(`SELECT k FROM once WHERE k > '2' ORDER BY k LIMIT 2`)).map((row) => row.k);
  expect(expected).toEqual(['3', '4']);
  expect(keys(events)).toEqual(expected);
}, 120_000);

test('the key retyped while each of three batches waited: INVALID_INPUT naming the table, no batch delivered', async () => {
  const types = ['text USING k::text', 'int USING k::int', 'text USING k::text'];
  await other!.query(`BEGIN; ALTER TABLE thrice ALTER COLUMN k TYPE ${types[0]}`);
  const failure = failureOf(poll('thrice'));
  for (let i = 1; i <= types.length; i++) {
    await batchWaiting('thrice');
    await other!.query('COMMIT');
    // Granted as soon as the batch's transaction ends (it queues behind the batch's lock), before the next read's LOCK.
    if (i < types.length) await other!.query(`BEGIN; ALTER TABLE thrice ALTER COLUMN k TYPE ${types[i]}`);
  }
  const error = await failure;
  expect(error.code).toBe('INVALID_INPUT');
  expect(error.message).toBe('config.tables[0]: the primary key\'s type of public.thrice changed while each of three batches was read; poll again once the schema change is over');
  expect(error.problems).toEqual(['config.tables[0]\'s primary key changed type during the sync']);
  // Once the schema stays put, the sync reads the table from its start.
  expect(keys((await poll('thrice')).events)).toEqual(['1', '10']);
}, 180_000);
