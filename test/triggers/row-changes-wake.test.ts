/**
 * row-changes' NOTIFY only wakes subscribers sooner (they read every intervalSeconds anyway), so it must
 * never fail the application's write (outbox-sql.ts wakeSubscribers). A server of its own: a small
 * NOTIFY queue (max_notify_queue_pages, PostgreSQL 17+) that a test can fill, and prepared transactions.
 */
import pg from 'pg';
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';

const server = useReplicationServer({ logical: false, settings: { max_notify_queue_pages: '64', max_prepared_transactions: '4' } });
const request = () => ({ connection: server.config(), config: { tables: ['public.orders'] } });

/** A session as the admin, or as a role with nothing but LOGIN. */
async function session(as?: { user: string; password: string }): Promise<pg.Client> {
  const { host, port, user, password, database } = server.config(as) as { host: string; port: number; user: string; password: string; database: string };
  const client = new pg.Client({ host, port, user, password, database });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

beforeAll(async () => {
  expect(server.versionNum).toBeGreaterThanOrEqual(170000); // max_notify_queue_pages; the embedded server is 18
  await server.sql(`CREATE TABLE orders (id int PRIMARY KEY, note text); CREATE ROLE nobody_r180 LOGIN PASSWORD 'r180-pass'`);
  await activateTrigger('row-changes', request());
}, 60_000);
afterAll(async () => {
  await deactivateTrigger('row-changes', request()).catch(() => undefined);
}, 60_000);

test('a NOTIFY queue filled by another role (a LISTEN session held in an open transaction) does not fail writes to a watched table (REVIEW12 R180)', async () => {
  let { state } = await pollTrigger('row-changes', request());
  const nobody = { user: 'nobody_r180', password: 'r180-pass' };
  const pin = await session(nobody);
  const filler = await session(nobody);
  try {
    // The queue's tail cannot pass a listener that sits in a transaction: nothing is freed.
    await pin.query('LISTEN pinned');
    await pin.query('BEGIN');
    await pin.query('SELECT 1');
    const payload = 'x'.repeat(7_700);
    let full = false;
    for (let i = 0; i < 200 && !full; i++) {
      full = await filler.query(`BEGIN; ${Array.from({ length: 8 }, () => `SELECT pg_notify('pinned', '${payload}');`).join(' ')} COMMIT`).then(
        () => false,
        (error: { message?: string }) => /too many notifications/.test(error.message ?? ''),
      );
      if (full) await filler.query('ROLLBACK').catch(() => undefined);
    }
    expect(full).toBe(true);
    expect(Number((await server.sql('SELECT pg_notification_queue_usage() AS u'))[0]!.u)).toBeGreaterThan(0.5);
    // The application's write passes, and the change is read by the next poll.
    await server.sql(`INSERT INTO orders VALUES (1, 'while the queue is full')`);
    const polled = await pollTrigger('row-changes', { ...request(), state });
    state = polled.state;
    expect(polled.events.map((event) => [event.op, (event.new as { id: number }).id])).toEqual([['INSERT', 1]]);
  } finally {
    await pin.end();
    await filler.end();
  }
}, 120_000);

test('a writer that commits in two phases (PREPARE TRANSACTION) and set pg_actions.notify = off writes a watched table, and the change is captured (REVIEW12 R192)', async () => {
  let { state } = await pollTrigger('row-changes', request());
  const writer = await session();
  try {
    // Without the setting PostgreSQL refuses: the capture's NOTIFY cannot be prepared.
    await writer.query(`BEGIN; INSERT INTO orders VALUES (2, 'notifies')`);
    await expect(writer.query(`PREPARE TRANSACTION 'rc_notify_on'`)).rejects.toThrow(/cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY/);
    await writer.query(`SET pg_actions.notify = off`);
    await writer.query(`BEGIN; INSERT INTO orders VALUES (3, 'prepared')`);
    await writer.query(`PREPARE TRANSACTION 'rc_notify_off'`);
    await writer.query(`COMMIT PREPARED 'rc_notify_off'`);
  } finally {
    await writer.query(`ROLLBACK PREPARED 'rc_notify_off'`).catch(() => undefined);
    await writer.end();
  }
  const polled = await pollTrigger('row-changes', { ...request(), state });
  state = polled.state;
  expect(polled.events.map((event) => [event.op, (event.new as { id: number }).id])).toEqual([['INSERT', 3]]);
}, 60_000);
