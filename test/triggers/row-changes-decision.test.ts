/**
 * REVIEW11 R173: a table with a column of another role's type (written as its text, R170) paid for a
 * walk of its columns' types on every captured statement, and PL/pgSQL planned that walk afresh each
 * time: 2,000 one-row INSERTs took 4.1 times the backend CPU of a table of built-in types
 * (bench/row-changes-types.ts). Activation now decides once what each column is written as, and a
 * statement only checks that the table's columns are still those it decided for (names, types,
 * VIRTUAL expressions); when they are not, it decides afresh, so R170's guarantee holds through ALTER
 * TABLE: no cast of a role that is not a superuser ever runs.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const typeOwner = `rc_decide_${randomBytes(4).toString('hex')}`;
const db = useTestDatabase('rc_decision', {
  beforeDrop: async () => {
    await db.sql(`DROP OWNED BY ${typeOwner} CASCADE; DROP ROLE IF EXISTS ${typeOwner}`);
  },
});
const request = () => ({ connection: db.config, config: { tables: ['public.orders', 'public.plain', 'public.handed'] } });
type Change = { op: string; table: string; new: Record<string, unknown> | null };
const ran = async () => (await db.sql<{ who: string }>('SELECT who FROM types.ran')).map((row) => row.who);

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${typeOwner}; CREATE SCHEMA types AUTHORIZATION ${typeOwner}; SET ROLE ${typeOwner};
    CREATE TYPE types.mood AS ENUM ('ok', 'sad'); CREATE TABLE types.ran (who text);
    GRANT USAGE ON SCHEMA types TO PUBLIC; GRANT INSERT ON types.ran TO PUBLIC;
    CREATE FUNCTION types.mood_json(types.mood) RETURNS json LANGUAGE plpgsql AS $f$
      BEGIN INSERT INTO types.ran VALUES (current_user); RETURN to_json($1::text); END $f$;
    CREATE CAST (types.mood AS json) WITH FUNCTION types.mood_json(types.mood);
    RESET ROLE;
    CREATE TABLE orders (id int PRIMARY KEY, m types.mood, note text);
    CREATE TABLE plain (id int PRIMARY KEY, note text);
    CREATE TYPE shared_mood AS ENUM ('ok', 'sad'); -- a superuser's (the suite's admin): its cast would be used
    CREATE TABLE handed (id int PRIMARY KEY, s shared_mood)`);
  await activateTrigger('row-changes', request());
}, 60_000);
afterAll(async () => {
  await deactivateTrigger('row-changes', request()).catch(() => undefined);
}, 60_000);

const changes = async (work: string) => {
  const { state } = await pollTrigger('row-changes', request());
  await db.sql(work);
  return ((await pollTrigger('row-changes', { ...request(), state })).events as unknown as Change[]).map((e) => [e.table, e.new]);
};

test('a captured INSERT into a table with another role\'s enum column reads no pg_type row (the types were walked at activation)', async () => {
  const client = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
  await client.connect();
  try {
    for (let i = 1; i <= 3; i++) await client.query(`INSERT INTO orders VALUES ($1, 'ok', 'warm')`, [i]); // the session's caches
    // Scans of pg_type so far in this session (the server flushes them only now and then), by a statement planned once.
    const scans = async () => Number((await client.query({ name: 'scans', text: `SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS n
      FROM pg_stat_xact_sys_tables WHERE relname = 'pg_type'` })).rows[0].n);
    await client.query('BEGIN');
    await scans();
    const before = await scans();
    await client.query(`INSERT INTO orders VALUES (10, 'sad', 'x')`);
    const after = await scans();
    await client.query('COMMIT');
    expect(after - before).toBe(0);
  } finally {
    await client.end();
  }
  expect(await ran()).toEqual([]);
}, 60_000);

test('after ALTER TABLE (a column added, retyped, renamed) the capture decides again: another role\'s enum is written as its label, its cast never runs', async () => {
  const events = await changes(`ALTER TABLE plain ADD COLUMN m types.mood; INSERT INTO plain VALUES (1, 'a', 'ok');
    ALTER TABLE orders ALTER COLUMN note TYPE types.mood USING 'ok'; INSERT INTO orders VALUES (20, 'sad', 'sad');
    ALTER TABLE orders RENAME COLUMN m TO mood; INSERT INTO orders VALUES (21, 'ok', 'ok')`);
  expect(events).toEqual([
    ['plain', { id: 1, note: 'a', m: 'ok' }],
    ['orders', { id: 20, m: 'sad', note: 'sad' }],
    ['orders', { id: 21, mood: 'ok', note: 'ok' }],
  ]);
  expect(await ran()).toEqual([]);
}, 60_000);

test('activating again decides again: after it, a table\'s statements are as cheap as before its ALTER', async () => {
  await activateTrigger('row-changes', request());
  const events = await changes(`INSERT INTO plain VALUES (2, 'b', 'sad'); INSERT INTO orders VALUES (30, 'ok', 'sad')`);
  expect(events).toEqual([
    ['plain', { id: 2, note: 'b', m: 'sad' }],
    ['orders', { id: 30, mood: 'ok', note: 'sad' }],
  ]);
  const { tables } = (await db.sql<{ tables: string }>(`SELECT oid::regclass::text AS tables FROM pg_class WHERE relname ~ '^rc_[0-9a-f]{16}_tables$'`))[0]!;
  const kept = await db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${tables} WHERE signature IS NOT NULL`);
  expect(kept).toEqual([{ n: 2 }]);
  expect(await ran()).toEqual([]);
}, 60_000);

test('a superuser\'s type handed to another role after activation: that role\'s cast never runs (such columns are decided per statement)', async () => {
  await db.sql(`ALTER TYPE shared_mood OWNER TO ${typeOwner}; SET ROLE ${typeOwner};
    CREATE FUNCTION types.shared_json(shared_mood) RETURNS json LANGUAGE plpgsql AS $f$
      BEGIN INSERT INTO types.ran VALUES (current_user); RETURN to_json('cast: ' || $1::text); END $f$;
    CREATE CAST (shared_mood AS json) WITH FUNCTION types.shared_json(shared_mood);
    RESET ROLE`);
  const events = await changes(`INSERT INTO handed VALUES (1, 'sad')`);
  expect(events).toEqual([['handed', { id: 1, s: 'sad' }]]);
  expect(await ran()).toEqual([]);
}, 60_000);
