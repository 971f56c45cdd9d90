/**
 * subscribeTrigger (table-changes-cdc, triggers/replication/stream.ts): a batch inside a transaction that the handler
 * finished is not progress. It keeps the position before the transaction, so neither the slot nor the state moves,
 * and a transaction that fails at a later batch each time is retried with a growing wait (200 ms, 400 ms, … 10 s),
 * never reset by the batches before the failing one.
 */
import { closeAll } from '../../connection/index.js';
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerSubscription } from '../../triggers/index.js';
import { parseLsn } from '../../triggers/replication/lsn.js';
import { cleanUpInOrder } from '../harness/clean-up.js';
import type { ReplicationServer } from '../harness/replication-server.js';
import { sharedOrOwnReplicationServer } from '../harness/shared-replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
let server: ReplicationServer;
let starting: Promise<ReplicationServer> | undefined;
let subscription: TriggerSubscription | undefined;
beforeAll(async () => {
  starting = sharedOrOwnReplicationServer({ wal_sender_timeout: '2s' }, 'ackbo');
  server = await starting;
}, 180_000);
afterAll(() => cleanUpInOrder(() => subscription?.close(), closeAll, async () => (await starting?.catch(() => undefined))?.stop()), 60_000);

test('a transaction that fails at its second batch every time: the first batch moves nothing, and the waits between attempts keep doubling', async () => {
  const database = `ackbo_${Date.now().toString(36)}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string) => server.sql(text, [], database);
  await sql('CREATE TABLE items (id int PRIMARY KEY)');
  const request = { connection: server.config({ database }), config: { tables: ['items'], heartbeatSeconds: 0, batchSize: 2 } };
  await activateTrigger(KEY, request);
  const { state } = await pollTrigger(KEY, request);
  const start = parseLsn((state.position as { lsn: string }).lsn);
  const confirmed = async () => parseLsn((await sql("SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE database = current_database()"))[0]!.l as string);
  const firstBatches: string[][] = [];
  const failedAt: number[] = [];
  const positions: bigint[] = [];
  subscription = await subscribeTrigger(
    KEY,
    { ...request, state, onState: (s) => void positions.push(parseLsn((s.position as { lsn: string }).lsn)), onError: () => undefined },
    (events) => {
      const ids = events.map((e) => String(e.id));
      if (ids[0]!.endsWith(':0')) return void firstBatches.push(ids);
      failedAt.push(Date.now());
      throw new Error('the flow fails at the second batch');
    },
  );
  await sql('INSERT INTO items SELECT i FROM generate_series(1, 4) i');
  // Attempts 1 to 6: waits of at least 200, 400, 800, 1,600 and 3,200 ms between them.
  await waitFor(() => failedAt.length >= 6, 'six attempts', 60_000);
  const waits = failedAt.slice(1).map((at, i) => at - failedAt[i]!);
  expect(waits[2]).toBeGreaterThanOrEqual(800);
  expect(waits[3]).toBeGreaterThanOrEqual(1600);
  expect(waits[4]).toBeGreaterThanOrEqual(3200);
  // Each attempt handed the same first batch, and that never counted as progress.
  expect(firstBatches.length).toBeGreaterThanOrEqual(6);
  for (const batch of firstBatches) expect(batch).toEqual(firstBatches[0]);
  expect(positions.length).toBeGreaterThanOrEqual(6);
  for (const position of positions) expect(position).toBe(start);
  expect(parseLsn((subscription.state.position as { lsn: string }).lsn)).toBe(start);
  expect(await confirmed()).toBeLessThanOrEqual(start);
}, 90_000);
