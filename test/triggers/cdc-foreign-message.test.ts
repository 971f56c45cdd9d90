/**
 * REVIEW7 R135: pollTrigger peeks with pgoutput's `messages` on (PostgreSQL 14+) to see its own
 * heartbeat, which passes every logical message of the database. Any role may write one of any size
 * (pg_logical_emit_message needs no privilege): a 6 MB one failed every poll with RESULT_TOO_LARGE
 * for good, the slot pinning WAL. Another application's message comes back emptied now, its LSN
 * still moving the position.
 *
 * REVIEW8 R144: messages were emptied unless their prefix was pg-actions' heartbeat's, a public
 * constant: the same 6 MB under that prefix stopped every poll again. Every message is emptied now.
 * R154: each emptied message still took a row of the peek's limit (and its result's room): 500,000
 * empty ones (0.6 s to write, no privilege) held a later change back for 119 polls. A run of
 * messages comes back as its last one, and a poll whose peeks bring no change reads on further.
 * R151: subscribeTrigger's parser gathered each message whole: a 300 MB one from a role with no
 * privilege added 573 MB to the host. A large message is emptied as its bytes arrive now.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerRequest, type TriggerState } from '../../triggers/index.js';
import { HEARTBEAT_PREFIX } from '../../triggers/replication/heartbeat.js';
import { useReplicationServer } from '../harness/replication-server.js';

const KEY = 'table-changes-cdc';
const server = useReplicationServer();
const nobody = `nobody_${randomBytes(4).toString('hex')}`;

beforeAll(() => server.sql(`CREATE ROLE ${nobody} LOGIN PASSWORD 'nobody-pass'`), 60_000);

async function asNobody(text: string, database = 'messages'): Promise<void> {
  const client = new pg.Client({ ...server.config({ database }), user: nobody, password: 'nobody-pass', ssl: false } as pg.ClientConfig);
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

test('a 6 MB logical message from a role with no privilege, and 2,000 small ones: both changes around them arrive, the position passes them', async () => {
  await server.sql('CREATE DATABASE messages');
  const sql = (text: string) => server.sql(text, [], 'messages');
  await sql('CREATE TABLE t (id int PRIMARY KEY)');
  const request = { connection: server.config({ database: 'messages' }), config: { tables: ['t'], heartbeatSeconds: 0, batchSize: 10 } };
  await activateTrigger(KEY, request);
  let state: TriggerState = (await pollTrigger(KEY, request)).state;
  await sql('INSERT INTO t VALUES (1)');
  await asNobody("SELECT pg_logical_emit_message(false, 'someone-else', repeat('x', 6000000)); SELECT pg_logical_emit_message(true, 'someone-else', repeat('y', 6000000))");
  await asNobody("SELECT pg_logical_emit_message(false, 'chatty', 'm' || i) FROM generate_series(1, 2000) i");
  await sql('INSERT INTO t VALUES (2)');
  const ids: unknown[] = [];
  for (let polls = 0; polls < 400 && ids.length < 2; polls++) {
    const result = await pollTrigger(KEY, { ...request, state });
    state = result.state;
    ids.push(...result.events.map((event) => (event as unknown as { key: { id: number } }).key.id));
  }
  expect(ids).toEqual([1, 2]);
  // The slot's confirmed position passes the messages once the host has stored the state.
  await pollTrigger(KEY, { ...request, state });
  const [{ passed }] = (await sql('SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), confirmed_flush_lsn) < 100000 AS passed FROM pg_replication_slots WHERE database = current_database()')) as [{ passed: boolean }];
  expect(passed).toBe(true);
}, 240_000);

async function pollUntil(request: TriggerRequest, state: TriggerState, count: number, maxPolls: number): Promise<{ ids: unknown[]; polls: number }> {
  const ids: unknown[] = [];
  let polls = 0;
  while (polls < maxPolls && ids.length < count) {
    const result = await pollTrigger(KEY, { ...request, state });
    polls++;
    state = result.state;
    ids.push(...result.events.map((event) => (event as unknown as { key: { id: number } }).key.id));
  }
  return { ids, polls };
}

test("a 6 MB message under pg-actions' own heartbeat prefix, from a role with no privilege: both changes around it arrive", async () => {
  await server.sql('CREATE DATABASE own_prefix');
  const sql = (text: string) => server.sql(text, [], 'own_prefix');
  await sql(`CREATE TABLE t (id int PRIMARY KEY); GRANT CONNECT ON DATABASE own_prefix TO ${nobody}`);
  const request = { connection: server.config({ database: 'own_prefix' }), config: { tables: ['t'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const state: TriggerState = (await pollTrigger(KEY, request)).state;
  await sql('INSERT INTO t VALUES (1)');
  await asNobody(`SELECT pg_logical_emit_message(false, '${HEARTBEAT_PREFIX}', repeat('x', 6000000)); SELECT pg_logical_emit_message(true, '${HEARTBEAT_PREFIX}', repeat('y', 6000000))`, 'own_prefix');
  await sql('INSERT INTO t VALUES (2)');
  const { ids } = await pollUntil(request, state, 2, 20);
  expect(ids).toEqual([1, 2]);
}, 240_000);

test('500,000 empty messages before a change, and 200,000 inside its transaction: the change arrives at the first poll', async () => {
  await server.sql('CREATE DATABASE flood');
  const sql = (text: string) => server.sql(text, [], 'flood');
  await sql(`CREATE TABLE t (id int PRIMARY KEY); GRANT CONNECT ON DATABASE flood TO ${nobody}`);
  const request = { connection: server.config({ database: 'flood' }), config: { tables: ['t'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  let state: TriggerState = (await pollTrigger(KEY, request)).state;
  await asNobody("SELECT pg_catalog.count(pg_logical_emit_message(false, 'chatty', '')) FROM generate_series(1, 500000)", 'flood');
  await sql('INSERT INTO t VALUES (1)');
  const first = await pollUntil(request, state, 1, 200);
  expect(first).toEqual({ ids: [1], polls: 1 });
  state = (await pollTrigger(KEY, request)).state;
  await sql("BEGIN; SELECT pg_catalog.count(pg_logical_emit_message(true, 'chatty', 'z')) FROM generate_series(1, 200000); INSERT INTO t VALUES (2); COMMIT");
  expect(await pollUntil(request, state, 1, 200)).toEqual({ ids: [2], polls: 1 });
}, 240_000);

test("subscribeTrigger: a 100 MB message from a role with no privilege, and 30 MB ones inside a change's transaction, are never held whole; the changes arrive", async () => {
  await server.sql('CREATE DATABASE subscribed');
  const sql = (text: string) => server.sql(text, [], 'subscribed');
  await sql(`CREATE TABLE t (id int PRIMARY KEY); GRANT CONNECT ON DATABASE subscribed TO ${nobody}`);
  const request = { connection: server.config({ database: 'subscribed' }), config: { tables: ['t'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const ids: unknown[] = [];
  const errors: unknown[] = [];
  const subscription = await subscribeTrigger(KEY, { ...request, onError: (error) => errors.push(error) }, async (events) => {
    ids.push(...events.map((event) => (event as unknown as { key: { id: number } }).key.id));
  });
  let peak = 0;
  global.gc?.();
  const base = process.memoryUsage().rss;
  const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  try {
    await asNobody("SELECT pg_logical_emit_message(false, 'other-app', repeat('x', 100 * 1024 * 1024))", 'subscribed');
    await sql("BEGIN; INSERT INTO t VALUES (1); SELECT pg_logical_emit_message(true, 'other-app', repeat('y', 30 * 1024 * 1024)) FROM generate_series(1, 2); INSERT INTO t VALUES (2); COMMIT");
    await sql('INSERT INTO t VALUES (3)');
    const deadline = Date.now() + 120_000;
    while (ids.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  } finally {
    clearInterval(sample);
    await subscription.close();
  }
  expect(errors).toEqual([]);
  expect(ids).toEqual([1, 2, 3]);
  // Before the filter: +184 MB for the 100 MB message alone (the parser's doubling buffer, then a copy).
  expect((peak - base) / 2 ** 20).toBeLessThan(80);
}, 240_000);
