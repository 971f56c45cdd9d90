/**
 * REVIEW9 R161: to_jsonb calls a cast to json made by the owner of a column's *type*, who need not
 * own the watched table (a shared types schema, an extension installed by an admin role). When the
 * capture serialised as the writer, a superuser's INSERT ran that cast as the superuser (the type's
 * owner made itself SUPERUSER). Now rows are serialised as pgactions_capture, which has no rights:
 * the cast never runs as a writer nor as the activator, the change is still captured, and the
 * serialising function refuses to run as any other role even if made SECURITY INVOKER.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const suffix = randomBytes(4).toString('hex');
const typeOwner = `rc_typeown_${suffix}`;
const writer = `rc_typewriter_${suffix}`;
const db = useTestDatabase('rc_type_cast', {
  beforeDrop: async () => {
    await db.sql(`ALTER ROLE ${typeOwner} NOSUPERUSER; DROP OWNED BY ${typeOwner}, ${writer} CASCADE`);
    await db.sql(`DROP ROLE IF EXISTS ${typeOwner}; DROP ROLE IF EXISTS ${writer}`);
  },
});
const config = { tables: ['public.orders', 'public.parted'] };
const request = () => ({ connection: db.config, config });

async function as<T>(user: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...db.config, ssl: false, user, password: 'type-pass' } as pg.ClientConfig);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const isSuperuser = async () => (await db.sql('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [typeOwner]))[0]!.rolsuper as boolean;
const ran = async () => (await db.sql<{ who: string }>('SELECT DISTINCT who FROM types.ran ORDER BY who')).map((row) => row.who);

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${typeOwner} LOGIN PASSWORD 'type-pass'; CREATE ROLE ${writer} LOGIN PASSWORD 'type-pass';
    CREATE SCHEMA types AUTHORIZATION ${typeOwner}`);
  // A shared type, as a platform team offers it; its owner owns nothing else.
  await as(typeOwner, (c) => c.query(`CREATE TYPE types.mood AS ENUM ('ok', 'sad');
    CREATE TABLE types.ran (who text);
    GRANT USAGE ON SCHEMA types TO PUBLIC; GRANT INSERT ON types.ran TO PUBLIC;`));
  // The application's tables, the suite's admin's (a superuser's).
  await db.sql(`CREATE TABLE orders (id serial PRIMARY KEY, m types.mood DEFAULT 'ok', ms types.mood[] DEFAULT '{sad}');
    CREATE TABLE parted (id int PRIMARY KEY, m types.mood DEFAULT 'ok') PARTITION BY RANGE (id);
    CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (1000);
    GRANT INSERT ON orders, parted TO ${writer}; GRANT USAGE ON SEQUENCE orders_id_seq TO ${writer}`);
  await as(typeOwner, (c) => c.query(`CREATE FUNCTION types.mood_json(types.mood) RETURNS json LANGUAGE plpgsql AS $f$
    BEGIN
      INSERT INTO types.ran VALUES (current_user);
      IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN EXECUTE 'ALTER ROLE ${typeOwner} SUPERUSER'; END IF;
      RETURN to_json($1::text);
    END $f$;
    CREATE CAST (types.mood AS json) WITH FUNCTION types.mood_json(types.mood)`));
  await activateTrigger('row-changes', request());
}, 60_000);
afterAll(async () => {
  await deactivateTrigger('row-changes', request()).catch(() => undefined);
});

test('control: without a watched table nothing calls the cast on a write', async () => {
  await db.sql(`CREATE TABLE unwatched (m types.mood DEFAULT 'ok'); INSERT INTO unwatched DEFAULT VALUES`);
  expect(await ran()).toEqual([]);
}, 60_000);

test('a superuser\'s and a writer\'s INSERTs (statement and row capture) run the type owner\'s cast only as pgactions_capture; the changes are captured', async () => {
  const { state } = await pollTrigger('row-changes', request());
  await db.sql(`INSERT INTO orders DEFAULT VALUES; INSERT INTO parted (id) VALUES (1)`);
  await as(writer, (c) => c.query(`INSERT INTO orders DEFAULT VALUES; INSERT INTO parted (id) VALUES (2)`));
  expect(await isSuperuser()).toBe(false);
  expect(await ran()).toEqual(['pgactions_capture']);
  const { events } = await pollTrigger('row-changes', { ...request(), state });
  expect(events.map((event) => { const e = event as unknown as { table: string; new: unknown }; return [e.table, e.new]; })).toEqual([
    ['orders', { id: 1, m: 'ok', ms: ['sad'] }], ['parted', { id: 1, m: 'ok' }], ['orders', { id: 2, m: 'ok', ms: ['sad'] }], ['parted', { id: 2, m: 'ok' }],
  ]);
}, 60_000);

test('the cast, running as pgactions_capture, can neither name pgactions nor call rc_F_put; made SECURITY INVOKER, the serialising function refuses to run', async () => {
  const [{ fingerprint }] = (await db.sql<{ fingerprint: string }>(`SELECT substring(proname from 'rc_([0-9a-f]{16})_json') AS fingerprint FROM pg_proc WHERE proname ~ '^rc_[0-9a-f]{16}_json$'`)) as [{ fingerprint: string }];
  expect(await db.sql(`SELECT has_schema_privilege('pgactions_capture', 'pgactions', 'USAGE') AS usage, has_function_privilege('pgactions_capture', 'pgactions.rc_${fingerprint}_put(oid, text, jsonb[], jsonb[])', 'EXECUTE') AS put,
    has_function_privilege('public', 'pgactions.rc_${fingerprint}_json(anyelement)', 'EXECUTE') AS json_public`)).toEqual([{ usage: false, put: false, json_public: false }]);
  // A cast that tries to make the serialising function run as its caller: refused for want of USAGE, which fails the write.
  await as(typeOwner, (c) => c.query(`CREATE OR REPLACE FUNCTION types.mood_json(types.mood) RETURNS json LANGUAGE plpgsql AS $f$
    BEGIN EXECUTE 'ALTER FUNCTION pgactions.rc_${fingerprint}_json(anyelement) SECURITY INVOKER'; RETURN to_json($1::text); END $f$`));
  await expect(db.sql(`INSERT INTO orders DEFAULT VALUES`)).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('permission denied for schema pgactions') });
  await as(typeOwner, (c) => c.query(`CREATE OR REPLACE FUNCTION types.mood_json(types.mood) RETURNS json LANGUAGE plpgsql AS $f$
    BEGIN INSERT INTO types.ran VALUES (current_user); RETURN to_json($1::text); END $f$`));
  // Had it managed (here a superuser does it), the function refuses to serialise as anyone else: the write fails, the cast never runs.
  await db.sql(`TRUNCATE types.ran; ALTER FUNCTION pgactions.rc_${fingerprint}_json(anyelement) SECURITY INVOKER`);
  try {
    await expect(db.sql(`INSERT INTO orders DEFAULT VALUES`)).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('serialises rows only as the role pgactions_capture') });
    await expect(as(writer, (c) => c.query(`INSERT INTO parted (id) VALUES (3)`))).rejects.toMatchObject({ code: '42501' });
    expect(await ran()).toEqual([]);
  } finally {
    await db.sql(`ALTER FUNCTION pgactions.rc_${fingerprint}_json(anyelement) SECURITY DEFINER`);
  }
  await db.sql(`INSERT INTO orders DEFAULT VALUES`);
  expect(await ran()).toEqual(['pgactions_capture']);
  expect(await isSuperuser()).toBe(false);
}, 60_000);
