/**
 * table-changes-cdc subscription, REVIEW4 R36: while the handler works, the stream keeps bringing
 * position-only messages — heartbeat-prefixed and other non-transactional logical messages (any
 * role may emit them, no privilege needed), before PG 15 the commit of every transaction of the
 * database. They must not queue one chunk each: 200,000 of them used to be drained quadratically
 * (queue.shift()) with the host's event loop blocked for tens of seconds once the handler returned.
 */
import pg from 'pg';
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerState, type TriggerSubscription } from '../../triggers/index.js';
import { ChunkQueue } from '../../triggers/replication/chunk-queue.js';
import type { ChangeEvent } from '../../triggers/replication/changes.js';
import type { CommittedStream } from '../../triggers/replication/streamed.js';
import { HEARTBEAT_PREFIX } from '../../triggers/replication/heartbeat.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
const MESSAGES = 100_000; // of each kind
let subscription: TriggerSubscription | undefined;
let plain: pg.Client | undefined;
const server = useReplicationServer({
  beforeStop: async () => {
    await subscription?.close();
    await plain?.end();
  },
});

test('200,000 position-only messages while the handler works: no event-loop stall after it returns, the next change arrives at once, the slot moves on', async () => {
  await server.sql('CREATE DATABASE positions');
  const sql = (text: string, values?: unknown[]) => server.sql(text, values, 'positions');
  await sql('CREATE TABLE items (id int PRIMARY KEY)');
  await sql("CREATE ROLE nobody LOGIN PASSWORD 'nobody'"); // no grant at all
  const request = { connection: server.config({ database: 'positions' }), config: { tables: ['items'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const { state } = await pollTrigger(KEY, request);

  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const batches: number[][] = [];
  const errors: unknown[] = [];
  subscription = await subscribeTrigger(KEY, { ...request, state: state as TriggerState, onError: (e: unknown) => void errors.push(e) } as never, async (events) => {
    batches.push(events.map((event) => (event.key as { id: number }).id));
    if (batches.length === 1) await gate; // a slow flow on its first batch
  });
  await sql('INSERT INTO items VALUES (1)');
  await waitFor(() => batches.length === 1, 'the first batch');

  const { host, port } = server.config();
  plain = new pg.Client({ host, port, database: 'positions', user: 'nobody', password: 'nobody', ssl: false });
  await plain.connect();
  await plain.query(`SELECT count(pg_logical_emit_message(false, 'spam', '')) FROM generate_series(1, ${MESSAGES})`);
  await plain.query(`SELECT count(pg_logical_emit_message(false, $1, '')) FROM generate_series(1, ${MESSAGES})`, [HEARTBEAT_PREFIX]);
  const end = (await sql('SELECT pg_current_wal_lsn()::text AS lsn'))[0]!.lsn as string;
  // everything sent to (and, nothing paused, read by) the subscription while the handler still waits
  await waitFor(async () => (await sql('SELECT sent_lsn >= $1::pg_lsn AS done FROM pg_stat_replication', [end]))[0]?.done === true, 'the messages sent', 60_000);
  await new Promise((resolve) => setTimeout(resolve, 1000));

  let worst = 0;
  let last = performance.now();
  const probe = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 50);
    last = now;
  }, 50);
  try {
    await sql('INSERT INTO items VALUES (2)');
    release();
    await waitFor(() => batches.flat().includes(2), 'the change after the messages', 120_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
  } finally {
    clearInterval(probe);
  }
  // the fault took 13 s (100,000 messages) to 53 s (200,000) of a blocked event loop here
  expect(worst).toBeLessThan(3000);
  expect(batches.flat()).toEqual([1, 2]);
  expect(errors).toEqual([]);
  // acknowledged past the messages
  await waitFor(async () => (await sql("SELECT confirmed_flush_lsn > $1::pg_lsn AS past FROM pg_replication_slots WHERE database = 'positions'", [end]))[0]?.past === true, 'the ack past the messages');
}, 180_000);

test('the queue folds position-only chunks into the newest ordinary one: one chunk however many, positions only forward, never into a replay', () => {
  const queue = new ChunkQueue();
  const event = {} as ChangeEvent;
  queue.push({ events: [event], position: 10n, bytes: 7 });
  for (let lsn = 11n; lsn < 100_011n; lsn++) queue.push({ events: [], position: lsn, bytes: 0 });
  queue.push({ events: [], position: 5n, bytes: 0 });
  expect(queue.length).toBe(1);
  expect(queue.changes).toBe(1);
  expect(queue.bytes).toBe(7);
  expect(queue.peek()!.position).toBe(100_010n);
  const replay = { stream: { spool: { changes: 3 } } as unknown as CommittedStream, assembler: undefined as never };
  queue.push({ events: [], position: 200_000n, bytes: 0, replay });
  queue.push({ events: [], position: 200_001n, bytes: 0 });
  queue.push({ events: [], position: 200_002n, bytes: 0 });
  expect(queue.length).toBe(3);
  expect(queue.changes).toBe(4);
  expect(queue.take()!.events).toEqual([event]);
  expect(queue.bytes).toBe(0);
  expect(queue.take()!.position).toBe(200_000n);
  expect(queue.take()!.position).toBe(200_002n);
  expect(queue.take()).toBeUndefined();
  // taken from a head index: 100,000 ordinary chunks in and out in linear time, in order
  for (let i = 0; i < 100_000; i++) queue.push({ events: [event], position: BigInt(i), bytes: 1 });
  const out: bigint[] = [];
  for (let chunk = queue.take(); chunk; chunk = queue.take()) out.push(chunk.position);
  expect(out).toHaveLength(100_000);
  expect(out.every((position, i) => position === BigInt(i))).toBe(true);
  expect(queue.length).toBe(0);
  expect(queue.bytes).toBe(0);
});
