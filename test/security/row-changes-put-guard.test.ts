/**
 * row-changes with the least-privilege set-up of docs/triggers/row-changes.md: a role that is not a
 * superuser and does not own the table activates (GRANT TRIGGER, and the one-time grant of the
 * capture role), a writer has INSERT on the table and nothing else. The capture runs as the
 * activator and serialises rows as the database's capture role (REVIEW9 R161, REVIEW11 R169); rc_F_put is the activator's
 * alone (REVIEW9 R157): it must record exactly the changes written, and nobody may put made-up
 * events, not even from a trigger of their own, nor after writing the table. An extension's cast
 * owned by a non-superuser admin (managed PostgreSQL, REVIEW8 R153) does not refuse the
 * application's writes. Activations made before are brought up to date by activating again.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, deactivateTrigger, listActivations, pollTrigger } from '../../triggers/index.js';
import { asRole } from '../harness/as-role.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { captureRoleOf, grantCaptureRole } from './capture-role-setup.js';

const suffix = randomBytes(4).toString('hex');
const [activator, writer, forger, extAdmin] = ['act', 'writer', 'forger', 'extadmin'].map((role) => `rc_guard_${role}_${suffix}`) as [string, string, string, string];
const roles = [activator, writer, forger, extAdmin];
const db = useTestDatabase('rc_put_guard', {
  beforeDrop: async () => {
    await db.sql(`DROP EXTENSION IF EXISTS hstore CASCADE; DROP OWNED BY ${roles.join(', ')} CASCADE`);
    for (const role of roles) await db.sql(`DROP ROLE IF EXISTS ${role}`);
  },
});
const config = { tables: ['app.orders'] };
let request: { connection: object; config: typeof config };
let put = '';
let ordersOid = 0;

const as = <T>(user: string, work: (client: pg.Client) => Promise<T>): Promise<T> => asRole(db.config, user, 'guard-pass', work);

beforeAll(async () => {
  for (const role of roles) await db.sql(`CREATE ROLE ${role} LOGIN PASSWORD 'guard-pass'`);
  // Managed PostgreSQL: nobody is a superuser, an extension's functions belong to the admin that installed it.
  await db.sql(`CREATE EXTENSION hstore;
    ALTER FUNCTION hstore_to_json(hstore) OWNER TO ${extAdmin}; ALTER FUNCTION hstore_to_jsonb(hstore) OWNER TO ${extAdmin};
    CREATE SCHEMA app; CREATE TABLE app.orders (id int PRIMARY KEY, note text, h hstore);
    GRANT USAGE ON SCHEMA app TO ${activator}, ${writer};
    GRANT TRIGGER ON app.orders TO ${activator}; GRANT CREATE ON DATABASE ${db.name} TO ${activator};
    GRANT INSERT ON app.orders TO ${writer};
    CREATE SCHEMA forger AUTHORIZATION ${forger}; CREATE SCHEMA writer AUTHORIZATION ${writer}`);
  request = { connection: { ...db.config, user: activator, password: 'guard-pass' }, config };
  // Without the one-time set-up a role that may not create roles is refused, naming it.
  await expect(activateTrigger('row-changes', request)).rejects.toMatchObject({
    code: 'PERMISSION_DENIED', fixes: [expect.stringContaining(`CREATE ROLE ${await captureRoleOf(db)} NOLOGIN; GRANT ${await captureRoleOf(db)} TO "${activator}"`)],
  });
  expect(await db.sql(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'pgactions'`)).toEqual([{ n: 0 }]);
  await grantCaptureRole(db, activator);
  await activateTrigger('row-changes', request);
  const [activation] = await listActivations(db.config);
  put = `pgactions.rc_${activation!.fingerprint}_put`;
  ordersOid = Number((await db.sql<{ oid: number }>(`SELECT 'app.orders'::regclass::oid::int AS oid`))[0]!.oid);
}, 60_000);
afterAll(async () => {
  // As the admin: DROP TRIGGER needs the table's owner (the TRIGGER privilege is not enough).
  await deactivateTrigger('row-changes', { connection: db.config, config }).catch(() => undefined);
});

const newRows = async (state: unknown) => (await pollTrigger('row-changes', { ...request, state })).events.map((event) => {
  const { op, key, new: row, old } = event as unknown as { op: string; key: unknown; new: unknown; old: unknown };
  return { op, key, new: row, old };
});

// REVIEW12 R181: the cast's function is a non-superuser's, who can replace its body: the capture does not call it, hstore arrives as its text.
test('a writer with INSERT only, and the activator not the owner: the row is captured, an hstore column (its cast\'s function a non-superuser\'s: as its text) included', async () => {
  const { state } = await pollTrigger('row-changes', request);
  await as(writer, (c) => c.query(`INSERT INTO app.orders VALUES (1, 'a', 'k=>v'), (2, 'b', NULL)`));
  expect(await newRows(state)).toEqual([
    { op: 'INSERT', key: { id: 1 }, new: { id: 1, note: 'a', h: '"k"=>"v"' }, old: null },
    { op: 'INSERT', key: { id: 2 }, new: { id: 2, note: 'b', h: null }, old: null },
  ]);
}, 60_000);

const DENIED = { code: '42501', message: expect.stringMatching(/permission denied for (schema pgactions|function rc_)/) };

test('a role without rights on the table cannot put events for it: not by calling rc_F_put, nor from a trigger of its own, nor with the capture function', async () => {
  const { state } = await pollTrigger('row-changes', request);
  const forged = `ARRAY['{"id": 99, "note": "forged"}'::jsonb]`;
  await as(forger, async (c) => {
    await expect(c.query(`SELECT ${put}(${ordersOid}, 'INSERT', ${forged}, NULL)`)).rejects.toMatchObject(DENIED);
    await c.query(`CREATE TABLE forger.bait (target oid);
      CREATE FUNCTION forger.forge() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN PERFORM ${put}(NEW.target, 'INSERT', ${forged}, NULL); RETURN NULL; END $f$;
      CREATE TRIGGER forge AFTER INSERT ON forger.bait FOR EACH ROW EXECUTE FUNCTION forger.forge()`);
    await expect(c.query(`INSERT INTO forger.bait VALUES (${ordersOid})`)).rejects.toMatchObject(DENIED);
    const capture = put.replace(/_put$/, '_capture');
    await expect(c.query(`CREATE TRIGGER steal AFTER INSERT ON forger.bait FOR EACH ROW EXECUTE FUNCTION ${capture}()`)).rejects.toMatchObject({ code: '42501' });
  });
  expect(await newRows(state)).toEqual([]);
}, 60_000);

test('a writer with INSERT only can put nothing, not even in the transaction that wrote the table', async () => {
  const { state } = await pollTrigger('row-changes', request);
  await as(writer, async (c) => {
    await c.query(`CREATE TABLE writer.bait (target oid, op text);
      CREATE FUNCTION writer.forge() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN PERFORM ${put}(NEW.target, NEW.op, ARRAY['{"id": 3}'::jsonb], ARRAY['{"id": 3}'::jsonb]); RETURN NULL; END $f$;
      CREATE TRIGGER forge AFTER INSERT ON writer.bait FOR EACH ROW EXECUTE FUNCTION writer.forge()`);
    await c.query('BEGIN');
    await c.query(`INSERT INTO app.orders VALUES (3, 'c')`);
    await c.query('SAVEPOINT s');
    await expect(c.query(`INSERT INTO writer.bait VALUES (${ordersOid}, 'INSERT')`)).rejects.toMatchObject(DENIED);
    await c.query('ROLLBACK TO SAVEPOINT s');
    await c.query('COMMIT');
  });
  expect((await newRows(state)).map(({ op, key }) => ({ op, key }))).toEqual([{ op: 'INSERT', key: { id: 3 } }]);
}, 60_000);

test('an activation whose capture functions are an older version\'s (serialising as the writer, no rc_F_json) is brought up to date by activating again', async () => {
  const capture = put.replace(/_put$/, '_capture');
  const json = put.replace(/_put$/, '_json');
  await as(activator, (c) => c.query(`ALTER FUNCTION ${capture}() SECURITY INVOKER; ALTER FUNCTION ${capture}_set() SECURITY INVOKER;
    DROP FUNCTION ${json}(anyelement); GRANT EXECUTE ON FUNCTION ${put}(oid, text, jsonb[], jsonb[]) TO PUBLIC; GRANT USAGE ON SCHEMA pgactions TO PUBLIC`));
  expect((await listActivations(db.config)).map(({ complete, outdated }) => ({ complete, outdated }))).toEqual([{ complete: true, outdated: true }]);
  // Re-creating the triggers needs the table's owner; the activator activates again (the schema is its own: a superuser
  // would be refused in it, REVIEW9 R156), owning the table for the moment.
  const tableOwner = (await db.sql<{ o: string }>(`SELECT relowner::regrole::text AS o FROM pg_class WHERE oid = 'app.orders'::regclass`))[0]!.o;
  await db.sql(`ALTER TABLE app.orders OWNER TO ${activator}`);
  await activateTrigger('row-changes', request);
  await db.sql(`ALTER TABLE app.orders OWNER TO ${tableOwner}`);
  expect((await listActivations(db.config)).map(({ complete, outdated }) => ({ complete, outdated }))).toEqual([{ complete: true, outdated: false }]);
  const name = (f: string) => f.slice('pgactions.'.length);
  const role = await captureRoleOf(db);
  expect(await db.sql(`SELECT proname, prosecdef, proowner::regrole::text AS owner, proacl::text[] AS acl FROM pg_proc WHERE pronamespace = 'pgactions'::regnamespace AND proname ~ '_(capture|capture_set|put|json)$' ORDER BY proname`)).toEqual([
    { proname: name(capture), prosecdef: true, owner: activator, acl: [`${activator}=X/${activator}`] },
    { proname: `${name(capture)}_set`, prosecdef: true, owner: activator, acl: [`${activator}=X/${activator}`] },
    { proname: name(json), prosecdef: true, owner: role, acl: [`${role}=X/${role}`, `${activator}=X/${role}`] },
    { proname: name(put), prosecdef: true, owner: activator, acl: [`${activator}=X/${activator}`] },
  ]);
  expect(await db.sql(`SELECT nspacl::text[] AS acl FROM pg_namespace WHERE nspname = 'pgactions'`)).toEqual([{ acl: [`${activator}=UC/${activator}`] }]);
  const { state } = await pollTrigger('row-changes', request);
  await as(writer, (c) => c.query(`INSERT INTO app.orders VALUES (4, 'd')`));
  expect((await newRows(state)).map(({ key }) => key)).toEqual([{ id: 4 }]);
}, 60_000);

test('genuine writes are all captured: in savepoints (one rolled back), through a view the writer may insert into, and with track_counts off (the write lock decides)', async () => {
  await db.sql(`CREATE VIEW app.v AS SELECT id, note FROM app.orders; GRANT USAGE ON SCHEMA app TO ${forger}; GRANT INSERT ON app.v TO ${forger}`);
  const { state } = await pollTrigger('row-changes', request);
  await as(writer, (c) => c.query(`BEGIN; SAVEPOINT a; INSERT INTO app.orders VALUES (5, 'e'); RELEASE a;
    SAVEPOINT b; INSERT INTO app.orders VALUES (6, 'f'); ROLLBACK TO b;
    DO $d$ BEGIN INSERT INTO app.orders VALUES (7, 'g'); PERFORM 1 / 0; EXCEPTION WHEN division_by_zero THEN INSERT INTO app.orders VALUES (8, 'h'); END $d$;
    COMMIT`));
  await as(forger, (c) => c.query(`INSERT INTO app.v VALUES (9, 'i')`)); // no right on app.orders itself
  await db.sql(`ALTER ROLE ${writer} SET track_counts = off`);
  try {
    await as(writer, async (c) => {
      expect((await c.query('SHOW track_counts')).rows).toEqual([{ track_counts: 'off' }]);
      await c.query(`INSERT INTO app.orders VALUES (10, 'j'), (11, 'k')`);
    });
  } finally {
    await db.sql(`ALTER ROLE ${writer} RESET track_counts`);
  }
  expect((await newRows(state)).map(({ key }) => key)).toEqual([5, 8, 9, 10, 11].map((id) => ({ id })));
}, 60_000);

test('a writer with DELETE only (no SELECT): its DELETE\'s rows are captured, old images included', async () => {
  await db.sql(`REVOKE ALL ON app.orders FROM ${writer}; GRANT DELETE ON app.orders TO ${writer}`);
  const before = await db.sql<{ id: number }>('SELECT id FROM app.orders ORDER BY id');
  expect(before.length).toBeGreaterThan(3);
  const { state } = await pollTrigger('row-changes', request);
  await as(writer, (c) => c.query('DELETE FROM app.orders'));
  const events = await newRows(state);
  expect(events.map(({ op, key }) => ({ op, key })).sort((a, b) => (a.key as { id: number }).id - (b.key as { id: number }).id))
    .toEqual(before.map(({ id }) => ({ op: 'DELETE', key: { id } })));
  expect(events.every((event) => event.new === null && (event.old as { id: number }).id === (event.key as { id: number }).id)).toBe(true);
}, 60_000);

test('a role that may only lock the table for writing (TRUNCATE privilege: LOCK TABLE … ROW EXCLUSIVE) cannot put events for it', async () => {
  await db.sql(`GRANT USAGE ON SCHEMA app TO ${forger}; GRANT TRUNCATE ON app.orders TO ${forger}`);
  const { state } = await pollTrigger('row-changes', request);
  await as(forger, async (c) => {
    await c.query('BEGIN');
    await c.query('LOCK TABLE app.orders IN ROW EXCLUSIVE MODE');
    await expect(c.query(`INSERT INTO forger.bait VALUES (${ordersOid})`)).rejects.toMatchObject(DENIED);
    await c.query('ROLLBACK');
  });
  expect(await newRows(state)).toEqual([]);
}, 60_000);
