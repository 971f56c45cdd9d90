/**
 * REVIEW9 R161: to_jsonb calls a cast to json made by the owner of a column's *type*, who need not
 * own the watched table (a shared types schema, an extension installed by an admin role). When the
 * capture serialised as the writer, a superuser's INSERT ran that cast as the superuser (the type's
 * owner made itself SUPERUSER). Now rows are serialised as the database's capture role, which has no rights:
 * the cast never runs as a writer nor as the activator, the change is still captured, and the
 * serialising function refuses to run as any other role even if made SECURITY INVOKER.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { asRole } from '../harness/as-role.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { captureRoleOf } from './capture-role-setup.js';

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

const as = <T>(user: string, work: (client: pg.Client) => Promise<T>): Promise<T> => asRole(db.config, user, 'type-pass', work);

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

test('a superuser\'s and a writer\'s INSERTs (statement and row capture) never run the type owner\'s cast; the changes are captured, the enum as its label (REVIEW10 R170)', async () => {
  const { state } = await pollTrigger('row-changes', request());
  await db.sql(`INSERT INTO orders DEFAULT VALUES; INSERT INTO parted (id) VALUES (1)`);
  await as(writer, (c) => c.query(`INSERT INTO orders DEFAULT VALUES; INSERT INTO parted (id) VALUES (2)`));
  expect(await isSuperuser()).toBe(false);
  expect(await ran()).toEqual([]);
  const { events } = await pollTrigger('row-changes', { ...request(), state });
  expect(events.map((event) => { const e = event as unknown as { table: string; new: unknown }; return [e.table, e.new]; })).toEqual([
    ['orders', { id: 1, m: 'ok', ms: ['sad'] }], ['parted', { id: 1, m: 'ok' }], ['orders', { id: 2, m: 'ok', ms: ['sad'] }], ['parted', { id: 2, m: 'ok' }],
  ]);
}, 60_000);

test('REVIEW10 R170: a cast that SETs search_path never runs, so neither the capture (as the activator) nor the writer\'s session meets look-alike functions', async () => {
  await as(typeOwner, (c) => c.query(`CREATE OR REPLACE FUNCTION types.mood_json(types.mood) RETURNS json LANGUAGE plpgsql AS $f$
    BEGIN INSERT INTO types.ran VALUES (current_user); PERFORM pg_catalog.set_config('search_path', 'types, pg_catalog', false); RETURN to_json($1::text); END $f$;
    CREATE FUNCTION types.array_append(jsonb[], jsonb) RETURNS jsonb[] LANGUAGE plpgsql AS $f$
    BEGIN INSERT INTO types.ran VALUES ('array_append as ' || current_user);
      IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN EXECUTE 'ALTER ROLE ${typeOwner} SUPERUSER'; END IF;
      RETURN pg_catalog.array_append($1, $2); END $f$;
    CREATE FUNCTION types.lower(text) RETURNS text LANGUAGE plpgsql AS $f$
    BEGIN INSERT INTO types.ran VALUES ('lower as ' || current_user); RETURN pg_catalog.lower($1); END $f$`));
  const path = await as(writer, async (c) => {
    await c.query(`INSERT INTO orders (m) VALUES ('sad'), ('ok'); INSERT INTO parted (id, m) VALUES (10, 'sad')`);
    await c.query(`SELECT lower('APP')`);
    return (await c.query('SHOW search_path')).rows[0].search_path as string;
  });
  await db.sql(`INSERT INTO orders (m) VALUES ('sad')`);
  expect(path).toBe('"$user", public');
  expect(await ran()).toEqual([]);
  expect(await isSuperuser()).toBe(false);
}, 60_000);

test('values whose types a non-superuser made arrive as their text: an enum[] as a JSON array of labels, NULLs kept, a composite as its text; built-in columns unchanged', async () => {
  await as(typeOwner, (c) => c.query(`CREATE TYPE types.pair AS (a int, m types.mood); CREATE TYPE types.item AS (name text, j json, n int);
    CREATE DOMAIN types.positive AS int CHECK (VALUE > 0)`));
  await db.sql(`CREATE TABLE shapes (id int PRIMARY KEY, n numeric, ms types.mood[], none types.mood[], empty types.mood[], grid types.mood[], p types.pair, nothing types.mood, j jsonb,
    items types.item[], d types.positive)`);
  const shapes = { connection: db.config, config: { tables: ['public.shapes'] } };
  await activateTrigger('row-changes', shapes);
  try {
    const { state } = await pollTrigger('row-changes', shapes);
    await db.sql(`INSERT INTO shapes VALUES (1, 1.50, '{ok,NULL,sad}', NULL, '{}', '{{ok,sad},{sad,ok}}', ROW(7, 'ok'), NULL, '{"k": [1]}',
      ARRAY[ROW('pear', '[1]', 1)::types.item, NULL, ROW('apple', '{}', 9)::types.item], 5)`);
    const { events } = await pollTrigger('row-changes', { ...shapes, state });
    expect(events.map((event) => (event as unknown as { new: unknown }).new)).toEqual([
      // An array of composites element by element, in order (REVIEW11 R178: unnest spread them into their fields); a domain over int stays a number.
      { id: 1, n: 1.5, ms: ['ok', null, 'sad'], none: null, empty: [], grid: '{{ok,sad},{sad,ok}}', p: '(7,ok)', nothing: null, j: { k: [1] }, items: ['(pear,[1],1)', null, '(apple,{},9)'], d: 5 },
    ]);
    expect(await ran()).toEqual([]);
    // UPDATE and DELETE, through the statement capture (shapes) and the row capture (parted).
    const next = (await pollTrigger('row-changes', { ...shapes, state })).state;
    await db.sql(`UPDATE shapes SET ms = '{sad}', nothing = 'ok'; DELETE FROM shapes`);
    const changed = (await pollTrigger('row-changes', { ...shapes, state: next })).events as unknown as { op: string; new: Record<string, unknown> | null; old: Record<string, unknown> | null }[];
    expect(changed.map((e) => [e.op, e.new?.ms ?? null, e.new?.nothing ?? null, e.old?.ms ?? null, e.old?.p ?? null])).toEqual([
      ['UPDATE', ['sad'], 'ok', ['ok', null, 'sad'], '(7,ok)'],
      ['DELETE', null, null, ['sad'], '(7,ok)'],
    ]);
    const before = (await pollTrigger('row-changes', request())).state;
    await db.sql(`UPDATE parted SET m = 'sad' WHERE id = 1; DELETE FROM parted WHERE id = 1`);
    const parted = (await pollTrigger('row-changes', { ...request(), state: before })).events as unknown as { op: string; new: unknown; old: unknown }[];
    expect(parted.map((e) => [e.op, e.new, e.old])).toEqual([
      ['UPDATE', { id: 1, m: 'sad' }, { id: 1, m: 'ok' }],
      ['DELETE', null, { id: 1, m: 'sad' }],
    ]);
    expect(await ran()).toEqual([]);
  } finally {
    await deactivateTrigger('row-changes', shapes).catch(() => undefined);
  }
}, 60_000);

test('the serialising function (tables of built-in types only), made SECURITY INVOKER (here by a superuser), refuses to run as anyone but the database\'s capture role', async () => {
  const role = await captureRoleOf(db);
  await db.sql(`CREATE TABLE plainrows (id int PRIMARY KEY, note text); GRANT INSERT ON plainrows TO ${writer}`);
  const plain = { connection: db.config, config: { tables: ['public.plainrows'] } };
  await activateTrigger('row-changes', plain);
  const functions = (await db.sql<{ f: string }>(`SELECT oid::regprocedure::text AS f FROM pg_proc WHERE proname ~ '^rc_[0-9a-f]{16}_json$'`)).map((row) => row.f);
  expect(functions.length).toBe(2);
  for (const f of functions) {
    expect(await db.sql(`SELECT has_function_privilege('public', $1, 'EXECUTE') AS json_public`, [f])).toEqual([{ json_public: false }]);
  }
  expect(await db.sql(`SELECT has_schema_privilege('${role}', 'pgactions', 'USAGE') AS usage`)).toEqual([{ usage: false }]);
  try {
    for (const f of functions) await db.sql(`ALTER FUNCTION ${f} SECURITY INVOKER`);
    await expect(db.sql(`INSERT INTO plainrows VALUES (1, 'a')`)).rejects.toMatchObject({ code: '42501', message: expect.stringContaining(`serialises rows only as the role ${role}, not as`) });
    await expect(as(writer, (c) => c.query(`INSERT INTO plainrows VALUES (2, 'b')`))).rejects.toMatchObject({ code: '42501' });
  } finally {
    for (const f of functions) await db.sql(`ALTER FUNCTION ${f} SECURITY DEFINER`);
    await deactivateTrigger('row-changes', plain).catch(() => undefined);
  }
  expect(await ran()).toEqual([]);
  expect(await isSuperuser()).toBe(false);
}, 60_000);
