/**
 * REVIEW12 R181: a type handed to a superuser (ALTER TYPE … OWNER TO) keeps the cast to json its
 * former owner made, and she keeps the cast's function, whose body she can replace at any moment
 * (the same holds for a cast a superuser made WITH FUNCTION of another role's function). The capture
 * must not call that cast: not as the capture role in the writer's session (it could SET search_path
 * there: REVIEW10 R170), and above all not as the activator, which the EXECUTE path (a table that also
 * has a column of a non-superuser's type) did: the cast made its author a superuser. And what the
 * capture does call there (a superuser's cast) runs as the capture role, never as the activator.
 * (Proposed by the reviewer; adapted: the walk's domains and arrays, the row capture, the superuser's cast.)
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { asRole } from '../harness/as-role.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { captureRoleOf } from './capture-role-setup.js';

const suffix = randomBytes(4).toString('hex');
const alice = `rc_handover_${suffix}`;
const db = useTestDatabase('rc_type_handover', {
  beforeDrop: async () => {
    await db.sql(`ALTER ROLE ${alice} NOSUPERUSER; DROP OWNED BY ${alice} CASCADE`);
    await db.sql(`DROP ROLE IF EXISTS ${alice}`);
  },
});
const config = { tables: ['public.plain', 'public.mixed', 'public.reached', 'public.granted', 'public.parted', 'public.toned'] };
const request = () => ({ connection: db.config, config });
const asAlice = <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => asRole(db.config, alice, 'handover-pass', work);

/** Who ran alice's casts (mood's, feel's), and who ran the superuser's (tone's). */
const ran = async () => (await db.sql<{ who: string }>('SELECT DISTINCT who FROM public.ran ORDER BY who')).map((row) => row.who);
const ranTone = async () => (await db.sql<{ who: string }>('SELECT DISTINCT who FROM public.ran_tone ORDER BY who')).map((row) => row.who);
const isSuperuser = async () => (await db.sql('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [alice]))[0]!.rolsuper as boolean;

/** The writer (the suite's superuser) writes in a session of its own; its search_path after. */
async function write(statements: string): Promise<string> {
  const writer = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
  await writer.connect();
  try {
    await writer.query(statements);
    return (await writer.query('SHOW search_path')).rows[0].search_path as string;
  } finally {
    await writer.end();
  }
}
async function captured(statements: string): Promise<{ path: string; events: [string, unknown][] }> {
  const { state } = await pollTrigger('row-changes', request());
  const path = await write(statements);
  const { events } = await pollTrigger('row-changes', { ...request(), state });
  return { path, events: events.map((event) => { const e = event as unknown as { table: string; new: unknown }; return [e.table, e.new]; }) };
}

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${alice} LOGIN PASSWORD 'handover-pass'; CREATE SCHEMA types AUTHORIZATION ${alice};
    CREATE TABLE public.ran (who text); CREATE TABLE public.ran_tone (who text); GRANT INSERT ON public.ran, public.ran_tone TO PUBLIC;
    CREATE TYPE types.feel AS ENUM ('warm')`);
  await asAlice((c) => c.query(`CREATE TYPE types.mood AS ENUM ('ok', 'sad'); CREATE TYPE types.other AS ENUM ('x');
    CREATE DOMAIN types.mood_d AS types.mood;
    CREATE FUNCTION types.mood_json(types.mood) RETURNS json LANGUAGE sql AS $f$ SELECT pg_catalog.to_json($1::text) $f$;
    CREATE CAST (types.mood AS json) WITH FUNCTION types.mood_json(types.mood);
    CREATE FUNCTION types.feel_json(types.feel) RETURNS json LANGUAGE sql AS $f$ SELECT pg_catalog.to_json($1::text) $f$;
    GRANT USAGE ON SCHEMA types TO PUBLIC`));
  // A DBA takes the type over (e.g. so that row-changes writes it by to_jsonb); the cast and its function stay alice's.
  await db.sql(`ALTER TYPE types.mood OWNER TO CURRENT_USER`);
  // A superuser's type whose cast a superuser made with alice's function: her function all the same.
  await db.sql(`CREATE CAST (types.feel AS json) WITH FUNCTION types.feel_json(types.feel)`);
  // A superuser's type, cast and function: called, as the capture role (it records who ran it).
  await db.sql(`CREATE TYPE types.tone AS ENUM ('low');
    CREATE FUNCTION types.tone_json(types.tone) RETURNS json LANGUAGE plpgsql AS $f$
    BEGIN INSERT INTO public.ran_tone VALUES (current_user); RETURN pg_catalog.to_json('tone ' OPERATOR(pg_catalog.||) $1::text); END $f$;
    CREATE CAST (types.tone AS json) WITH FUNCTION types.tone_json(types.tone)`);
  await db.sql(`CREATE TABLE plain (id int PRIMARY KEY, m types.mood); CREATE TABLE mixed (id int PRIMARY KEY, m types.mood, o types.other);
    CREATE TABLE reached (id int PRIMARY KEY, d types.mood_d, a types.mood[]); CREATE TABLE granted (id int PRIMARY KEY, f types.feel);
    CREATE TABLE parted (id int PRIMARY KEY, m types.mood) PARTITION BY LIST (id); CREATE TABLE parted_1 PARTITION OF parted FOR VALUES IN (1);
    CREATE TABLE toned (id int PRIMARY KEY, t types.tone, o types.other)`);
  await activateTrigger('row-changes', request());
  const evil = (type: string) => `CREATE OR REPLACE FUNCTION types.${type}_json(types.${type}) RETURNS json LANGUAGE plpgsql AS $f$
    BEGIN
      INSERT INTO public.ran VALUES (current_user);
      IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN EXECUTE 'ALTER ROLE ${alice} SUPERUSER'; END IF;
      PERFORM pg_catalog.set_config('search_path', 'types, pg_catalog', false);
      RETURN pg_catalog.to_json($1::text);
    END $f$`;
  await asAlice((c) => c.query(`${evil('mood')}; ${evil('feel')}`));
}, 60_000);
afterAll(async () => {
  await deactivateTrigger('row-changes', request()).catch(() => undefined);
});

test('control: outside the capture the handed-over type still has alice\'s cast, whose function is still hers', async () => {
  expect(await db.sql(`SELECT pg_get_userbyid(t.typowner) = current_user AS taken, pg_get_userbyid(p.proowner) AS function_owner
    FROM pg_cast AS k JOIN pg_type AS t ON t.oid = k.castsource JOIN pg_proc AS p ON p.oid = k.castfunc
    WHERE k.castsource = 'types.mood'::regtype AND k.casttarget = 'json'::regtype`)).toEqual([{ taken: true, function_owner: alice }]);
});

test('R181: the whole-row capture (a table with only the handed-over type) does not call its cast; the writer\'s search_path is untouched', async () => {
  const { path, events } = await captured(`INSERT INTO plain VALUES (1, 'ok')`);
  expect(await ran()).toEqual([]);
  expect(path).toBe('"$user", public');
  expect(events).toEqual([['plain', { id: 1, m: 'ok' }]]);
}, 60_000);

test('R181: the EXECUTE path (the table also has a non-superuser\'s type) does not call the cast as the activator: its author stays without rights', async () => {
  const { path, events } = await captured(`INSERT INTO public.mixed VALUES (1, 'sad', 'x')`);
  expect(await ran()).toEqual([]);
  expect(await isSuperuser()).toBe(false);
  expect(path).toBe('"$user", public');
  expect(events).toEqual([['mixed', { id: 1, m: 'sad', o: 'x' }]]);
}, 60_000);

test('R181: nor through a domain or an array of it, nor the row capture of a partitioned table, nor a superuser\'s cast made with alice\'s function', async () => {
  const { path, events } = await captured(`INSERT INTO reached VALUES (1, 'ok', '{ok,sad}'); INSERT INTO granted VALUES (1, 'warm');
    INSERT INTO parted VALUES (1, 'ok')`);
  expect(await ran()).toEqual([]);
  expect(await isSuperuser()).toBe(false);
  expect(path).toBe('"$user", public');
  expect(events).toEqual([['reached', { id: 1, d: 'ok', a: ['ok', 'sad'] }], ['granted', { id: 1, f: 'warm' }], ['parted', { id: 1, m: 'ok' }]]);
}, 60_000);

test('R181 (defence in depth): in the EXECUTE path a superuser\'s cast still writes its type, run as the capture role, not as the activator', async () => {
  const { events } = await captured(`INSERT INTO toned VALUES (1, 'low', 'x')`);
  expect(await ranTone()).toEqual([await captureRoleOf(db)]);
  expect(events).toEqual([['toned', { id: 1, t: 'tone low', o: 'x' }]]);
}, 60_000);
