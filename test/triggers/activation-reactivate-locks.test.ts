/**
 * REVIEW9 R158: PUBLIC's USAGE on pgactions let a role with no grant `PREPARE … AS SELECT 1 FROM
 * pgactions.<table>` and hold that table's lock for as long as it liked; activating again ran
 * ALTER TABLE and REPLICA IDENTITY on the cursor (ACCESS EXCLUSIVE) and CREATE INDEX IF NOT EXISTS
 * on the outbox (SHARE, taken even when the index exists) every time, so it failed after the lock
 * wait while every writer of the watched tables queued behind it. Now PUBLIC has no USAGE there,
 * activating again takes no lock on pg-actions' tables it does not change, and deactivation's
 * LOCK_NOT_AVAILABLE names the tables and how to find who holds them.
 */
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { activateTrigger, deactivateTrigger, listActivations, pollTrigger } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf, session } from './helpers.js';

const nobody = `rc_nobody_${randomBytes(4).toString('hex')}`;
const db = useTestDatabase('reactlocks', { beforeDrop: () => db.sql(`DROP OWNED BY ${nobody}; DROP ROLE IF EXISTS ${nobody}`).then(() => undefined) });
const STEP_TIMEOUT_MS = 3000;
const request = () => ({ connection: { ...db.config, statementTimeoutMs: STEP_TIMEOUT_MS }, config: { tables: ['orders'] } });
let names: { outbox: string; cursor: string; tables: string };
let holder: pg.Client;

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${nobody} LOGIN PASSWORD 'nobody-pass'; CREATE TABLE orders (id serial PRIMARY KEY, note text);
    GRANT INSERT ON orders TO ${nobody}; GRANT USAGE ON SEQUENCE orders_id_seq TO ${nobody}`);
  await activateTrigger('row-changes', request());
  const [activation] = await listActivations(db.config);
  const name = (part: string) => `pgactions.rc_${activation!.fingerprint}_${part}`;
  names = { outbox: name('outbox'), cursor: name('cursor'), tables: name('tables') };
}, 60_000);
beforeEach(async () => {
  holder = await session(db);
});
afterEach(async () => {
  await holder.query('ROLLBACK').catch(() => undefined);
  await holder.end();
});
afterAll(async () => {
  await deactivateTrigger('row-changes', request()).catch(() => undefined);
});

test('a role with no grant cannot name pg-actions\' tables, so it cannot lock them (PREPARE): permission denied for schema pgactions', async () => {
  const client = new pg.Client({ ...db.config, ssl: false, user: nobody, password: 'nobody-pass' } as pg.ClientConfig);
  await client.connect();
  try {
    await client.query('BEGIN');
    await expect(client.query(`PREPARE p AS SELECT 1 FROM ${names.cursor}`)).rejects.toMatchObject({ code: '42501', message: 'permission denied for schema pgactions' });
    await client.query('ROLLBACK');
    await client.query(`INSERT INTO orders (note) VALUES ('its write is captured')`);
  } finally {
    await client.end();
  }
}, 60_000);

test('activating again while another session reads pg-actions\' tables and writes the outbox (idle in transaction): succeeds, the position kept', async () => {
  const { state } = await pollTrigger('row-changes', request());
  await holder.query('BEGIN');
  await holder.query(`SELECT 1 FROM ${names.cursor}, ${names.tables} LIMIT 0`); // ACCESS SHARE, as a PREPARE over them holds
  await holder.query(`LOCK TABLE ${names.outbox} IN ROW EXCLUSIVE MODE`); // as a writer's capture holds until its commit
  await activateTrigger('row-changes', request());
  await holder.query('ROLLBACK');
  await db.sql(`INSERT INTO orders (note) VALUES ('after')`);
  const { events } = await pollTrigger('row-changes', { ...request(), state });
  expect(events.map((event) => (event as unknown as { new: { note: string } }).new.note)).toEqual(['after']);
}, 60_000);

test('deactivating while another session reads pg-actions\' tables: LOCK_NOT_AVAILABLE naming them, the fix\'s query finds the holder; then it goes', async () => {
  await holder.query('BEGIN');
  await holder.query(`SELECT 1 FROM ${names.cursor} LIMIT 0`);
  const error = await failureOf(deactivateTrigger('row-changes', request()));
  expect(error.code).toBe('LOCK_NOT_AVAILABLE');
  expect(error.message).toMatch(/row-changes deactivation: waited \d+ ms for a lock on the tables pgactions\.rc_[0-9a-f]{16}_outbox, pgactions\.rc_[0-9a-f]{16}_cursor, pgactions\.rc_[0-9a-f]{16}_tables/);
  const [holders] = await db.sql<{ pids: number[] }>(`SELECT array_agg(pid) AS pids FROM (${/Find who holds it: (.*);$/m.exec(error.fixes.join('\n'))![1]}) h`);
  expect(holders!.pids).toEqual([(holder as unknown as { processID: number }).processID]);
  expect((await listActivations(db.config)).map((a) => a.complete)).toEqual([true]); // all or nothing
  await holder.query('ROLLBACK');
  await deactivateTrigger('row-changes', request());
  expect(await listActivations(db.config)).toEqual([]);
}, 60_000);
