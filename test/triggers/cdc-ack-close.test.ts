/**
 * subscribeTrigger (table-changes-cdc, triggers/replication/stream.ts): close() called while the subscription is still
 * opening its replication connection (right after subscribeTrigger returned) resolves, and leaves no walsender on the
 * slot: the connection opened after close() began is closed, not streamed from. close() called by the handler: nothing
 * read meanwhile is handed after that batch (another transaction, or the rest of a streamed one), so the state stays at
 * the last batch handed before it.
 */
import { closeAll } from '../../connection/index.js';
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerState } from '../../triggers/index.js';
import { cleanUpInOrder } from '../harness/clean-up.js';
import { smallDecodingMemory, type ReplicationServer } from '../harness/replication-server.js';
import { sharedOrOwnReplicationServer } from '../harness/shared-replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
let server: ReplicationServer;
let starting: Promise<ReplicationServer> | undefined;
beforeAll(async () => {
  starting = sharedOrOwnReplicationServer({ wal_sender_timeout: '2s' }, 'ackcl');
  server = await starting;
}, 180_000);
afterAll(() => cleanUpInOrder(closeAll, async () => (await starting?.catch(() => undefined))?.stop()), 60_000);

test('close() while the replication connection is being opened resolves, and no walsender stays on the slot', async () => {
  const database = `ackcl_${Date.now().toString(36)}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string) => server.sql(text, [], database);
  await sql('CREATE TABLE items (id int PRIMARY KEY)');
  const request = { connection: server.config({ database }), config: { tables: ['items'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const { state } = await pollTrigger(KEY, request);
  const errors: unknown[] = [];
  const subscription = await subscribeTrigger(KEY, { ...request, state, onError: (e) => void errors.push(e) }, () => undefined);
  let closed = false;
  const closing = subscription.close().then(() => (closed = true));
  await waitFor(() => closed, 'close() to resolve', 20_000);
  await closing;
  // Nothing streams from the slot afterwards (a stream opened after close() began would keep it active).
  const active = async () => (await sql('SELECT active FROM pg_replication_slots WHERE database = current_database()'))[0]!.active as boolean;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  expect(await active()).toBe(false);
  expect(errors).toEqual([]);
}, 60_000);

/** A database with the trigger activated and a state before `prepare` wrote its transactions. */
async function setup(prepare: (sql: (text: string) => Promise<unknown>) => Promise<unknown>, batchSize: number) {
  const database = `ackcl_${Date.now().toString(36)}_${batchSize}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string) => server.sql(text, [], database);
  await sql('CREATE TABLE items (id int PRIMARY KEY, name text)');
  const request = { connection: server.config({ database }), config: { tables: ['items'], heartbeatSeconds: 0, batchSize } };
  await activateTrigger(KEY, request);
  const { state } = await pollTrigger(KEY, request);
  await prepare(sql);
  return { request, state };
}

/** Subscribes with a handler that calls close() (not awaited) at the end of its first batch; returns what it was handed. */
async function closeFromFirstBatch(request: Awaited<ReturnType<typeof setup>>['request'], state: TriggerState) {
  const batches: string[][] = [];
  const positions: string[] = [];
  let closing: Promise<void> | undefined;
  const subscription = await subscribeTrigger(KEY, { ...request, state, onState: (s) => void positions.push((s.position as { lsn: string }).lsn) }, async (events) => {
    batches.push(events.map((e) => String(e.id)));
    if (batches.length > 1) return;
    await new Promise((resolve) => setTimeout(resolve, 500)); // what follows is read and queued meanwhile
    closing = subscription.close();
  });
  await waitFor(() => closing !== undefined, 'the first batch and its close()');
  await closing;
  await new Promise((resolve) => setTimeout(resolve, 500));
  return { batches, positions, state: subscription.state };
}

test('close() called by the handler: nothing queued after its batch is handed, and the state stays at that batch', async () => {
  const { request, state } = await setup((sql) => sql('BEGIN; INSERT INTO items VALUES (1); COMMIT; BEGIN; INSERT INTO items VALUES (2); COMMIT;'), 10);
  const c = await closeFromFirstBatch(request, state);
  expect(c.batches.map((b) => b.length)).toEqual([1]);
  expect(c.positions).toHaveLength(1);
  expect((c.state.position as { lsn: string }).lsn).toBe(c.positions[0]);
}, 60_000);

test('close() called by the handler inside a transaction streamed by the server: its other batches are not handed', async () => {
  await smallDecodingMemory(server);
  const { request, state } = await setup((sql) => sql("INSERT INTO items SELECT i, repeat('x', 100) FROM generate_series(1, 1000) i"), 100);
  const c = await closeFromFirstBatch(request, state);
  expect(c.batches.map((b) => b.length)).toEqual([100]);
  // Inside the transaction: the position stays where it was.
  expect(c.positions).toEqual([(state.position as { lsn: string }).lsn]);
}, 60_000);
