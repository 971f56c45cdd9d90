/**
 * REVIEW7 R135: pollTrigger peeks with pgoutput's `messages` on (PostgreSQL 14+) to see its own
 * heartbeat, which passes every logical message of the database. Any role may write one of any size
 * (pg_logical_emit_message needs no privilege): a 6 MB one failed every poll with RESULT_TOO_LARGE
 * for good, the slot pinning WAL. Another application's message comes back emptied now, its LSN
 * still moving the position.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';

const KEY = 'table-changes-cdc';
const server = useReplicationServer();
const nobody = `nobody_${randomBytes(4).toString('hex')}`;

async function asNobody(text: string): Promise<void> {
  const client = new pg.Client({ ...server.config({ database: 'messages' }), user: nobody, password: 'nobody-pass', ssl: false } as pg.ClientConfig);
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
  await sql(`CREATE TABLE t (id int PRIMARY KEY); CREATE ROLE ${nobody} LOGIN PASSWORD 'nobody-pass'`);
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
