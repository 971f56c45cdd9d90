/**
 * REVIEW7 R140, table-changes-cdc: activation's CREATE PUBLICATION waits for a SHARE UPDATE
 * EXCLUSIVE lock on each table. Bounded on the server (lock_timeout): LOCK_NOT_AVAILABLE naming the
 * table, nothing created, nothing left in the table's lock queue. And an activation whose slot
 * could not be created (a transaction holding an xid outlived the step) leaves no publication.
 */
import type pg from 'pg';
import { activateTrigger, deactivateTrigger } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { failureOf } from './helpers.js';

const server = useReplicationServer();
const DATABASE = 'cdc_activation_locks';
const STEP_TIMEOUT_MS = 3000;
const sql = (text: string) => server.sql(text, undefined, DATABASE);
const request = () => ({ connection: { ...server.config({ database: DATABASE }), statementTimeoutMs: STEP_TIMEOUT_MS }, config: { tables: ['orders'], heartbeatSeconds: 0 } });
const created = async () => ({
  publications: (await sql("SELECT pubname FROM pg_publication WHERE pubname LIKE 'pg\\_actions\\_%'")).length,
  slots: (await sql("SELECT slot_name FROM pg_replication_slots WHERE database = current_database()")).length,
});
let holder: pg.Client | undefined;

beforeAll(async () => {
  await server.sql(`CREATE DATABASE ${DATABASE}`);
  await sql('CREATE TABLE orders (id int PRIMARY KEY)');
}, 60_000);

afterEach(async () => {
  await holder?.query('ROLLBACK').catch(() => undefined);
  await holder?.end();
  holder = undefined;
});

async function openSession(): Promise<pg.Client> {
  const { default: pgModule } = await import('pg');
  holder = new pgModule.Client({ ...server.config({ database: DATABASE }), ssl: false } as pg.ClientConfig);
  holder.on('error', () => {});
  await holder.connect();
  return holder;
}

test('CREATE PUBLICATION behind a lock on the table: LOCK_NOT_AVAILABLE naming it within the step, nothing created or queued', async () => {
  const session = await openSession();
  await session.query('BEGIN');
  await session.query('LOCK TABLE orders IN SHARE UPDATE EXCLUSIVE MODE'); // what a VACUUM or an ALTER TABLE … SET holds
  const started = Date.now();
  const error = await failureOf(activateTrigger('table-changes-cdc', request()));
  const took = Date.now() - started;
  expect(error.code).toBe('LOCK_NOT_AVAILABLE');
  expect(await sql("SELECT pid FROM pg_locks WHERE NOT granted AND relation = 'orders'::regclass")).toEqual([]);
  expect(took).toBeLessThan(STEP_TIMEOUT_MS + 1000);
  expect(error.message).toMatch(/table-changes-cdc activation: waited \d+ ms for a lock on the table "orders"/);
  expect(error.fixes.join(' ')).toMatch(/activate table-changes-cdc again/);
  expect(await created()).toEqual({ publications: 0, slots: 0 });
  await session.query('ROLLBACK');
  await activateTrigger('table-changes-cdc', request());
  expect(await created()).toEqual({ publications: 1, slots: 1 });
  await deactivateTrigger('table-changes-cdc', request());
}, 60_000);

test('a slot that cannot be created within the step (a transaction holding an xid): the publication the activation made is removed', async () => {
  const session = await openSession();
  await session.query('BEGIN');
  await session.query('SELECT txid_current()'); // the slot's creation waits for it to end
  const error = await failureOf(activateTrigger('table-changes-cdc', request()));
  expect(error.code).toBe('QUERY_TIMEOUT');
  expect(await created()).toEqual({ publications: 0, slots: 0 });
}, 60_000);
