/**
 * REVIEW7 R140: installing or removing a trigger's objects waits for strong locks (CREATE TRIGGER
 * behind an open writer of the table, DROP TRIGGER behind an open reader). Bounded only by the
 * client, the abandoned request stayed queued on the server at the head of the table's lock queue,
 * and every later writer (or reader) of the table waited behind it; the step failed with
 * DATABASE_ERROR "Promise timed out". Now the server gives up (lock_timeout, shorter than the
 * step's deadline): LOCK_NOT_AVAILABLE naming the table and the fix, and nothing left queued.
 */
import type pg from 'pg';
import { activateTrigger, deactivateTrigger, listActivations, removeActivation } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf, session } from './helpers.js';

const db = useTestDatabase('actlocks');
const STEP_TIMEOUT_MS = 3000;
const request = () => ({ connection: { ...db.config, statementTimeoutMs: STEP_TIMEOUT_MS }, config: { tables: ['orders'] } });
let holder: pg.Client | undefined;
let writer: pg.Client | undefined;

beforeEach(async () => {
  for (const activation of await listActivations(db.config)) await removeActivation(db.config, activation.fingerprint);
  await db.sql('DROP TABLE IF EXISTS orders');
  await db.sql('CREATE TABLE orders (id int PRIMARY KEY)');
  holder = await session(db);
  writer = await session(db);
});

afterEach(async () => {
  await holder?.query('ROLLBACK').catch(() => undefined);
  await Promise.all([holder?.end(), writer?.end()]);
});

/** Requests waiting for a lock on orders (pg-actions' abandoned DDL would be one). */
async function queued(): Promise<unknown[]> {
  return db.sql("SELECT l.pid, l.mode FROM pg_locks l WHERE NOT l.granted AND l.relation = 'orders'::regclass");
}

async function expectLockedOut(work: Promise<unknown>, again: RegExp): Promise<void> {
  const started = Date.now();
  const error = await failureOf(work);
  const took = Date.now() - started;
  expect(error.code).toBe('LOCK_NOT_AVAILABLE');
  expect(await queued()).toEqual([]); // the server gave up the request: nothing of pg-actions' is left in the table's lock queue
  expect(took).toBeLessThan(STEP_TIMEOUT_MS + 1000); // the server's lock_timeout, before the step's (and the client's) deadline
  expect(error.message).toMatch(/row-changes (activation|deactivation): waited \d+ ms for a lock on the table "public"\."orders"/);
  expect(error.fixes.join(' ')).toMatch(again);
  expect(error.fixes.join(' ')).toMatch(/Finish or end the open transaction/);
}

test('activate behind an open writer of the table: LOCK_NOT_AVAILABLE within the step, nothing left queued, other writers go on', async () => {
  await holder!.query('BEGIN');
  await holder!.query('INSERT INTO orders VALUES (1)'); // an application transaction left open: ROW EXCLUSIVE
  await expectLockedOut(activateTrigger('row-changes', request()), /activate row-changes again/);
  await writer!.query("SET statement_timeout = '2s'");
  await writer!.query('INSERT INTO orders VALUES (2)'); // not queued behind an abandoned CREATE TRIGGER
  expect(await listActivations(db.config)).toEqual([]); // all or nothing
  await holder!.query('ROLLBACK');
  await activateTrigger('row-changes', request()); // once the transaction ended
  expect((await listActivations(db.config)).map((a) => a.complete)).toEqual([true]);
}, 60_000);

test('deactivate behind an open reader of the table: LOCK_NOT_AVAILABLE within the step, nothing left queued, other readers go on', async () => {
  await activateTrigger('row-changes', request());
  await holder!.query('BEGIN');
  await holder!.query('SELECT count(*) FROM orders'); // a report's transaction left open: ACCESS SHARE
  await expectLockedOut(deactivateTrigger('row-changes', request()), /deactivate row-changes again/);
  await writer!.query("SET statement_timeout = '2s'");
  await writer!.query('SELECT count(*) FROM orders'); // not queued behind an abandoned DROP TRIGGER
  await writer!.query('INSERT INTO orders VALUES (3)');
  expect((await listActivations(db.config)).map((a) => a.complete)).toEqual([true]); // still whole
  await holder!.query('ROLLBACK');
  await deactivateTrigger('row-changes', request());
  expect(await listActivations(db.config)).toEqual([]);
}, 60_000);

test("pg-actions' activation lock held by another activation: LOCK_NOT_AVAILABLE naming it, within the step", async () => {
  await activateTrigger('row-changes', request()); // the pgactions schema exists
  await holder!.query('BEGIN');
  await holder!.query("COMMENT ON SCHEMA pgactions IS 'x'"); // what another activation or deactivation holds while it runs
  const started = Date.now();
  const error = await failureOf(activateTrigger('schema-changes', { connection: { ...db.config, statementTimeoutMs: STEP_TIMEOUT_MS }, config: { schemas: ['public'] } }));
  const took = Date.now() - started;
  expect(error.code).toBe('LOCK_NOT_AVAILABLE');
  expect(took).toBeLessThan(STEP_TIMEOUT_MS + 1000);
  expect(error.message).toMatch(/schema-changes activation: waited \d+ ms for a lock on pg-actions' activation lock/);
  expect(error.fixes.join(' ')).toMatch(/locktype OPERATOR\(pg_catalog\.=\) 'object'/);
  const [holders] = await db.sql<{ pids: number[] }>(`SELECT array_agg(pid) AS pids FROM (${/Find who holds it: (.*);$/.exec(error.fixes.join('\n'))![1]}) h`);
  const holderPid = (holder as unknown as { processID: number }).processID;
  expect(holders!.pids).toEqual([holderPid]); // the fix's query finds the holder
  expect(error.message).toContain(`It is held by pid ${holderPid} (role ${db.config.user}`); // and the message names it
  await holder!.query('ROLLBACK');
}, 60_000);
