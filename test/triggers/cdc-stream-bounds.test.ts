/**
 * subscribeTrigger (table-changes-cdc, triggers/replication/stream.ts): reading the replication connection pauses while
 * the handler is behind, measured as the bytes this process read from the walsender's socket while the handler holds a
 * batch (the socket's own counter: kernel buffers are not counted, so what is measured is what the subscription took in).
 * - A transaction streamed by the server (PG14+, larger than logical_decoding_work_mem) weighs its changes until its
 *   batches are handled: with its second batch held, nothing of the transactions committed after it is read.
 * - The byte bound: changes of about 1 MB each pause reading once 64 MB of them wait, long before the change count does
 *   (batchSize 500: 2,000 changes); the batch after the held one holds what had been read, no more.
 */
import { Socket } from 'node:net';
import { closeAll } from '../../connection/index.js';
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerSubscription } from '../../triggers/index.js';
import { cleanUpInOrder } from '../harness/clean-up.js';
import { smallDecodingMemory, type ReplicationServer } from '../harness/replication-server.js';
import { sharedOrOwnReplicationServer } from '../harness/shared-replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
const MB = 1048576;
let server: ReplicationServer;
let starting: Promise<ReplicationServer> | undefined;
const opened: TriggerSubscription[] = [];
const closeOpened = async () => void (await Promise.all(opened.splice(0).map((s) => s.close())));
beforeAll(async () => {
  starting = sharedOrOwnReplicationServer({ wal_sender_timeout: '2s' }, 'cdcbound');
  server = await starting;
  await smallDecodingMemory(server);
}, 180_000);
afterEach(closeOpened, 60_000);
afterAll(() => cleanUpInOrder(closeOpened, closeAll, async () => (await starting?.catch(() => undefined))?.stop()), 60_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let n = 0;
const run = Date.now().toString(36);

/** This process's connections to the server (the replication session's among them) and what each has read so far. */
function readSoFar(port: number): Map<Socket, number> {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return new Map(handles.filter((handle): handle is Socket => handle instanceof Socket && handle.remotePort === port).map((socket) => [socket, socket.bytesRead]));
}

/** What the connection that read the most since `before` was taken (the replication session's) has read since. */
const readSince = (before: Map<Socket, number>) => Math.max(...[...before].map(([socket, count]) => socket.bytesRead - count));

/**
 * Waits until none of the connections of `before` has read anything for 2 s (reading paused, or all there was read),
 * and at least 3 s in all (the server decodes what was just committed), at most 60 s; returns readSince(before).
 */
async function readOnceSettled(before: Map<Socket, number>): Promise<number> {
  const total = () => [...before.keys()].reduce((sum, socket) => sum + socket.bytesRead, 0);
  const started = Date.now();
  let last = total();
  let since = Date.now();
  while (Date.now() - started < 60_000) {
    await sleep(250);
    if (total() !== last) (last = total()), (since = Date.now());
    else if (Date.now() - since >= 2000 && Date.now() - started >= 3000) break;
  }
  return readSince(before);
}

async function setup(batchSize: number) {
  const database = `cdcbound_${run}_${++n}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string, values?: unknown[]) => server.sql(text, values, database);
  await sql('CREATE TABLE items (id int PRIMARY KEY, v text)');
  const request = { connection: server.config({ database }), config: { tables: ['items'], heartbeatSeconds: 0, batchSize } };
  await activateTrigger(KEY, request);
  const { state } = await pollTrigger(KEY, request);
  const slot = (await sql('SELECT slot_name FROM pg_replication_slots WHERE database = current_database()'))[0]!.slot_name as string;
  return { sql, request, state, slot };
}

/** A subscription whose handler holds batch number `held` (1-based) until `release()`; records each batch's ids. */
async function subscribeHolding(db: Awaited<ReturnType<typeof setup>>, held: number) {
  const batches: number[][] = [];
  const errors: unknown[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const subscription = await subscribeTrigger(KEY, { ...db.request, state: db.state, onError: (e) => void errors.push(e) }, async (events) => {
    batches.push(events.map((e) => (e.key as { id: number }).id));
    if (batches.length === held) await gate;
  });
  opened.push(subscription);
  return { batches, errors, release, ids: () => batches.flat() };
}

test("a streamed transaction's unhandled changes keep reading paused: with its second batch held, nothing committed after it is read", async () => {
  if (server.versionNum < 140000) return void console.warn('PostgreSQL before 14 does not stream transactions: nothing to check');
  const db = await setup(500);
  const c = await subscribeHolding(db, 2);
  await db.sql("INSERT INTO items SELECT i, repeat('a', 100) FROM generate_series(1, 10000) i");
  await waitFor(() => c.batches.length === 2, "the streamed transaction's second batch", 60_000);
  expect(Number((await db.sql('SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = $1', [db.slot]))[0]?.stream_txns ?? 0)).toBeGreaterThanOrEqual(1);
  const before = readSoFar(server.config().port!);
  // 3,000 transactions of one row of 1 kB each (about 3.5 MB of pgoutput), committed after it.
  await db.sql("DO $$ BEGIN FOR i IN 10001..13000 LOOP INSERT INTO items VALUES (i, repeat(md5(i::text), 32)); COMMIT; END LOOP; END $$");
  const read = await readOnceSettled(before);
  c.release();
  await waitFor(() => c.ids().length === 13000, 'every row', 120_000);
  expect(c.ids()).toEqual(Array.from({ length: 13000 }, (_, i) => i + 1));
  expect(c.errors).toEqual([]);
  // Paused since the transaction was queued (10,000 changes over the bound of 2,000): at most a socket read's worth more.
  expect(read).toBeLessThan(512 * 1024);
}, 240_000);

test('64 MB of changes waiting pause reading, however few they are: the next batch is what had been read', async () => {
  const db = await setup(500);
  const c = await subscribeHolding(db, 1);
  await db.sql("INSERT INTO items VALUES (0, 'first')");
  await waitFor(() => c.batches.length === 1, 'the first batch');
  const before = readSoFar(server.config().port!);
  // 120 transactions of one row of 1 MB (compressed on disk, about 1 MB each in pgoutput): 120 changes, 120 MB.
  await db.sql("DO $$ BEGIN FOR i IN 1..120 LOOP INSERT INTO items VALUES (i, repeat('x', 1048576)); COMMIT; END LOOP; END $$");
  await waitFor(() => readSince(before) > 60 * MB, 'the first 60 MB read', 120_000);
  const read = await readOnceSettled(before);
  c.release();
  await waitFor(() => c.ids().length === 121, 'every row', 120_000);
  expect(c.ids()).toEqual(Array.from({ length: 121 }, (_, i) => i));
  expect(c.errors).toEqual([]);
  expect(read).toBeGreaterThan(60 * MB);
  expect(read).toBeLessThan(80 * MB);
  // The batch after the held one is what waited: about 64 of the 1 MB rows, not all that the server had sent.
  expect(c.batches[1]!.length).toBeLessThanOrEqual(70);
}, 240_000);
