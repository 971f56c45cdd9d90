/**
 * REVIEW12 R187, pinned as documented: the capture triggers fire with PostgreSQL's default firing
 * (ENABLE: origin and local sessions), so writes made with session_replication_role = replica (a
 * session that sets it, and every change a logical-replication subscription applies) produce no
 * event. The guarantees say so; this test fails when that changes, so the docs are changed with it.
 */
import { activateTrigger, listActivations, removeActivation } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { poll, session } from './helpers.js';

const db = useTestDatabase('rcreplica');

beforeEach(async () => {
  for (const activation of await listActivations(db.config)) await removeActivation(db.config, activation.fingerprint);
  await db.sql('DROP TABLE IF EXISTS plain_t, parted_t CASCADE');
  await db.sql('CREATE TABLE plain_t (id int PRIMARY KEY)');
  await db.sql('CREATE TABLE parted_t (id int PRIMARY KEY) PARTITION BY RANGE (id)');
  await db.sql('CREATE TABLE parted_t1 PARTITION OF parted_t FOR VALUES FROM (0) TO (100)');
}, 60_000);

const request = (config: object, state?: unknown) => ({ connection: db.config, config, state });

test('writes with session_replication_role = replica are not captured (statement- and row-level capture alike); the same session\'s next origin write is', async () => {
  const config = { tables: ['plain_t', 'parted_t'] };
  await activateTrigger('row-changes', request(config));
  const firing = await db.sql<{ tgenabled: string }>(`SELECT DISTINCT tgenabled FROM pg_trigger WHERE tgname ~ '^pg_actions_rc_'`);
  expect(firing).toEqual([{ tgenabled: 'O' }]); // origin and local only
  const start = await poll('row-changes', request(config));
  const writer = await session(db);
  try {
    await writer.query('SET session_replication_role = replica');
    await writer.query('INSERT INTO plain_t VALUES (1)');
    await writer.query('INSERT INTO parted_t VALUES (1)');
    await writer.query('RESET session_replication_role');
    await writer.query('INSERT INTO plain_t VALUES (2)');
    await writer.query('INSERT INTO parted_t VALUES (2)');
  } finally {
    await writer.end();
  }
  const { events } = await poll('row-changes', request(config, start.state));
  expect(events.map((e) => [e.op, e.table, e.key])).toEqual([['INSERT', 'plain_t', { id: 2 }], ['INSERT', 'parted_t', { id: 2 }]]);
});
