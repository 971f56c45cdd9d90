/**
 * REVIEW9 R159: an activation made by an earlier version (no rc_F_put before d061cbf, no rc_F_json
 * before R161's fix) was listed `complete: false`, whose advice was to remove it, which drops the
 * changes not yet read. Now it is `complete: true, outdated: true`; activating it again brings it up
 * to date and keeps its position and events; PUBLIC's USAGE on pgactions (which the previous layout's
 * writers need, serialising as themselves) goes only once no such activation is left. One made after
 * R161's fix but before REVIEW11 R169's serialises as the cluster's shared pgactions_capture: it keeps
 * working and being read, is listed outdated, and activating again moves it to the database's own role.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, deactivateTrigger, listActivations, pollTrigger } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const writer = `rc_upgrade_writer_${randomBytes(4).toString('hex')}`;
const db = useTestDatabase('rc_upgrade', { beforeDrop: () => db.sql(`DROP OWNED BY ${writer}; DROP ROLE IF EXISTS ${writer}`).then(() => undefined) });
const request = (table: string) => ({ connection: db.config, config: { tables: [table] } });
const fingerprints: Record<string, string> = {};
const states: Record<string, unknown> = {};

async function write(table: string, notes: string[]): Promise<void> {
  const client = new pg.Client({ ...db.config, ssl: false, user: writer, password: 'upgrade-pass' } as pg.ClientConfig);
  await client.connect();
  try {
    for (const note of notes) await client.query(`INSERT INTO ${table} (note) VALUES ($1)`, [note]);
  } finally {
    await client.end();
  }
}
const listed = async () => Object.fromEntries((await listActivations(db.config)).map((a) => [Object.keys(fingerprints).find((t) => fingerprints[t] === a.fingerprint), { complete: a.complete, outdated: a.outdated }]));
const publicUsage = async () => (await db.sql<{ u: boolean }>(`SELECT has_schema_privilege('public', 'pgactions', 'USAGE') AS u`))[0]!.u;
const secdef = async (fingerprint: string) => (await db.sql(`SELECT prosecdef FROM pg_proc WHERE pronamespace = 'pgactions'::regnamespace AND proname ~ $1 ORDER BY proname`, [`^rc_${fingerprint}_capture`])).map((r) => r.prosecdef);

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${writer} LOGIN PASSWORD 'upgrade-pass'`);
  for (const table of ['invoker', 'definer', 'shared']) {
    await db.sql(`CREATE TABLE ${table} (id serial PRIMARY KEY, note text); GRANT INSERT ON ${table} TO ${writer}; GRANT USAGE ON SEQUENCE ${table}_id_seq TO ${writer}`);
    const before = new Set((await listActivations(db.config)).map((a) => a.fingerprint));
    await activateTrigger('row-changes', request(table));
    fingerprints[table] = (await listActivations(db.config)).find((a) => !before.has(a.fingerprint))!.fingerprint;
    states[table] = (await pollTrigger('row-changes', request(table))).state;
  }
  const rc = (table: string, part: string) => `pgactions.rc_${fingerprints[table]}_${part}`;
  // As d061cbf made it: the capture serialises as the writer (SECURITY INVOKER) and hands the rows to rc_F_put, PUBLIC's.
  await db.sql(`DROP FUNCTION ${rc('invoker', 'json')}(anyelement);
    CREATE OR REPLACE FUNCTION ${rc('invoker', 'capture_set')}() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
    BEGIN
      PERFORM ${rc('invoker', 'put')}(TG_RELID, TG_OP, ARRAY(SELECT to_jsonb(c.*) FROM pg_actions_new AS c), ARRAY(SELECT NULL::jsonb FROM pg_actions_new AS c));
      RETURN NULL;
    END $fn$;
    ALTER FUNCTION ${rc('invoker', 'capture')}() SECURITY INVOKER;
    GRANT EXECUTE ON FUNCTION ${rc('invoker', 'put')}(oid, text, jsonb[], jsonb[]) TO PUBLIC; GRANT USAGE ON SCHEMA pgactions TO PUBLIC`);
  // As 59d3fa8 made it: no rc_F_put, the capture (the activator's, SECURITY DEFINER) writes the outbox itself.
  await db.sql(`DROP FUNCTION ${rc('definer', 'json')}(anyelement); DROP FUNCTION ${rc('definer', 'put')}(oid, text, jsonb[], jsonb[]);
    CREATE OR REPLACE FUNCTION ${rc('definer', 'capture_set')}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    BEGIN
      INSERT INTO ${rc('definer', 'outbox')} (op, schema_name, table_name, key, new, old)
        SELECT TG_OP, 'public', 'definer', jsonb_build_object('id', c.id), to_jsonb(c.*), NULL FROM pg_actions_new AS c;
      RETURN NULL;
    END $fn$`);
  // As REVIEW9 R161's fix made it (before REVIEW11 R169): rc_F_json is the cluster's one role's, pgactions_capture.
  await db.sql(`DO $$ BEGIN CREATE ROLE pgactions_capture NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
    CREATE OR REPLACE FUNCTION ${rc('shared', 'json')}(r anyelement) RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    BEGIN
      IF CURRENT_USER <> 'pgactions_capture'::name THEN RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'serialises rows only as the role pgactions_capture'; END IF;
      RETURN to_jsonb(r);
    END $fn$;
    ALTER FUNCTION ${rc('shared', 'json')}(anyelement) OWNER TO pgactions_capture`);
}, 60_000);
afterAll(async () => {
  for (const table of Object.keys(fingerprints)) await deactivateTrigger('row-changes', request(table)).catch(() => undefined);
});

test('activations of the two previous layouts, with changes not yet read, are listed complete and outdated (not incomplete)', async () => {
  await write('invoker', ['i1', 'i2']);
  await write('definer', ['d1', 'd2']);
  await write('shared', ['s1']);
  expect(await listed()).toEqual({ invoker: { complete: true, outdated: true }, definer: { complete: true, outdated: true }, shared: { complete: true, outdated: true } });
  // Read before activating again: the old shared role's rc_F_json in pgactions is not taken for another role's object (REVIEW10 R162).
  const { events } = await pollTrigger('row-changes', { ...request('shared'), state: states.shared });
  expect(events.map((event) => (event as unknown as { new: { note: string } }).new.note)).toEqual(['s1']);
}, 60_000);

test('activating them again brings them up to date, keeps position and events; PUBLIC loses USAGE on pgactions once no activation serialises as the writer', async () => {
  await activateTrigger('row-changes', request('definer'));
  expect(await listed()).toEqual({ invoker: { complete: true, outdated: true }, definer: { complete: true, outdated: false }, shared: { complete: true, outdated: true } });
  expect(await publicUsage()).toBe(true); // the invoker layout's writers still call rc_F_put as themselves
  await write('invoker', ['i3']);
  await activateTrigger('row-changes', request('invoker'));
  await activateTrigger('row-changes', request('shared'));
  expect(await listed()).toEqual({ invoker: { complete: true, outdated: false }, definer: { complete: true, outdated: false }, shared: { complete: true, outdated: false } });
  expect(await db.sql(`SELECT DISTINCT pg_get_userbyid(proowner) AS owner FROM pg_proc WHERE proname ~ '^rc_[0-9a-f]{16}_json$'`))
    .toEqual([{ owner: `pgactions_capture_${(await db.sql<{ oid: string }>(`SELECT oid::text AS oid FROM pg_database WHERE datname = current_database()`))[0]!.oid}` }]);
  expect(await publicUsage()).toBe(false);
  expect(await secdef(fingerprints.invoker!)).toEqual([true, true]);
  await write('invoker', ['i4']);
  await write('definer', ['d3']);
  await write('shared', ['s2']);
  for (const [table, notes] of [['invoker', ['i1', 'i2', 'i3', 'i4']], ['definer', ['d1', 'd2', 'd3']], ['shared', ['s1', 's2']]] as const) {
    const { events } = await pollTrigger('row-changes', { ...request(table), state: states[table] });
    expect(events.map((event) => (event as unknown as { new: { note: string } }).new.note)).toEqual(notes);
  }
}, 60_000);
