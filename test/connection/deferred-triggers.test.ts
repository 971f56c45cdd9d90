/**
 * A deferred (constraint) trigger runs at COMMIT, after the statement (REVIEW3 R12): whatever it does
 * to the session must be seen by the guard and reset like the statement's own changes — a custom
 * setting, LISTEN, a session advisory lock, a temp table shadowing a real one — also when the
 * trigger defers again what it queues, and behind a transaction pooler (the shared server connection).
 */
import { execute } from '../../connection/index.js';
import { failure } from '../harness/failures.js';
import { serverLogin } from '../harness/db.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { describeWithPgBouncer, usePgBouncer } from '../harness/pgbouncer.js';

const db = useTestDatabase('deferred');
beforeAll(async () => {
  await db.sql(`CREATE TABLE audit_orders (id int PRIMARY KEY, tenant text)`);
  await db.sql(`CREATE FUNCTION audit_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
    PERFORM set_config('app.tenant_id', NEW.tenant, false);
    PERFORM pg_advisory_lock(4242);
    EXECUTE 'LISTEN audit_leak';
    EXECUTE 'CREATE TEMP TABLE IF NOT EXISTS audit_orders (id int, tenant text)';
    EXECUTE 'INSERT INTO pg_temp.audit_orders VALUES (-1, ''shadow row'')';
    RETURN NULL; END$$`);
  await db.sql(`CREATE CONSTRAINT TRIGGER audit AFTER INSERT ON audit_orders DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_at_commit()`);
  // A deferred trigger that defers again what it queues: it runs at SET CONSTRAINTS ALL IMMEDIATE, its
  // second trigger only at COMMIT.
  await db.sql(`CREATE TABLE relay (id int, tenant text)`);
  await db.sql(`CREATE TABLE relayed (id int, tenant text)`);
  await db.sql(`CREATE FUNCTION relay_later() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
    SET CONSTRAINTS ALL DEFERRED; INSERT INTO relayed VALUES (NEW.id, NEW.tenant); RETURN NULL; END$$`);
  await db.sql(`CREATE FUNCTION tenant_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
    PERFORM set_config('app.tenant_id', NEW.tenant, false); RETURN NULL; END$$`);
  await db.sql(`CREATE CONSTRAINT TRIGGER relay AFTER INSERT ON relay DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION relay_later()`);
  await db.sql(`CREATE CONSTRAINT TRIGGER relayed AFTER INSERT ON relayed DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tenant_at_commit()`);
  await db.sql(`CREATE TABLE parents (id int PRIMARY KEY)`);
  await db.sql(`CREATE TABLE children (id int, parent int REFERENCES parents DEFERRABLE INITIALLY DEFERRED)`);
  await db.sql(`CREATE SEQUENCE child_runs`);
});

const one = async (text: string, options: object = {}) => (await execute(db.config, { text, ...options })).rows[0]!;
const session = () => one(`SELECT coalesce(nullif(current_setting('app.tenant_id', true), ''), 'none') AS tenant,
  array_length(array(SELECT pg_listening_channels()), 1) AS listening`);
const heldLocks = () => db.sql(`SELECT objid::int FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242`);

test('Execute Query: what a deferred trigger did at COMMIT does not reach the next steps', async () => {
  await expect(one(`INSERT INTO audit_orders VALUES (1, 'acme') RETURNING id`)).resolves.toEqual({ id: 1 });
  expect(await heldLocks()).toEqual([]);
  expect(await session()).toEqual({ tenant: 'none', listening: null });
  expect((await execute(db.config, { text: 'SELECT id, tenant FROM audit_orders', readOnly: true })).rows).toEqual([{ id: 1, tenant: 'acme' }]);
});

test('Insert Rows (tag checked, then committed): the same', async () => {
  await expect(execute(db.config, { text: `INSERT INTO audit_orders VALUES (2, 'globex')`, expectCommands: ['INSERT'] })).resolves.toMatchObject({ rowCount: 1 });
  expect(await heldLocks()).toEqual([]);
  expect(await session()).toEqual({ tenant: 'none', listening: null });
  expect((await execute(db.config, { text: 'SELECT id FROM audit_orders ORDER BY id', readOnly: true })).rows).toEqual([{ id: 1 }, { id: 2 }]);
});

test('a deferred trigger that defers again what it queues', async () => {
  await one(`INSERT INTO relay VALUES (1, 'initech') RETURNING id`);
  expect(await db.sql('SELECT tenant FROM relayed')).toEqual([{ tenant: 'initech' }]); // it did run
  expect(await session()).toMatchObject({ tenant: 'none' });
});

test('a deferred foreign key violation fails the step with its SQLSTATE, nothing written, not run again', async () => {
  const error = await failure(execute(db.config, { text: `INSERT INTO children VALUES (nextval('child_runs'), 99)` }));
  expect(error.code).toBe('FOREIGN_KEY_VIOLATION');
  expect(await db.sql('SELECT * FROM children')).toEqual([]);
  expect(await db.sql('SELECT last_value::int AS runs FROM child_runs')).toEqual([{ runs: 1 }]);
  await one(`INSERT INTO parents VALUES (99)`);
  await expect(one(`INSERT INTO children VALUES (1, 99) RETURNING id`)).resolves.toEqual({ id: 1 });
});

describeWithPgBouncer('behind PgBouncer in transaction pooling: nothing left on the shared server connection', () => {
  const bouncer = usePgBouncer({ server: serverLogin(), mode: 'transaction', poolSize: 1 });

  test('Execute Query with a deferred trigger', async () => {
    const connection = bouncer.config(db.name, { pooler: 'transaction' });
    await execute(connection, { text: `INSERT INTO audit_orders VALUES (10, 'acme')` });
    expect(await heldLocks()).toEqual([]);
    const seen = await execute(connection, { text: `SELECT coalesce(nullif(current_setting('app.tenant_id', true), ''), 'none') AS tenant, array_length(array(SELECT pg_listening_channels()), 1) AS listening, (SELECT count(*)::int FROM audit_orders) AS n`, readOnly: true });
    expect(seen.rows).toEqual([{ tenant: 'none', listening: null, n: 3 }]);
  });
});
