/**
 * REVIEW8 R143: R138's refusal of a user-made cast to json was a check-then-use race. The capture
 * looked for the cast in one statement and called to_jsonb(NEW) in the next, as the activator
 * (SECURITY DEFINER); the watched table's owner, toggling CREATE CAST / DROP CAST in another
 * session, became superuser within 50 inserts (plain table: statement capture; partitioned: row
 * capture). Now to_jsonb runs as the database's capture role (pgactions_capture_<oid>), which has no rights (REVIEW9 R161: not
 * as the writer either): whenever the cast runs, it runs as that role, and every insert is captured.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const suffix = randomBytes(4).toString('hex');
const owner = `rc_race_owner_${suffix}`;
const writer = `rc_race_writer_${suffix}`;
const db = useTestDatabase('rc_cast_race', {
  beforeDrop: () => db.sql(`DROP OWNED BY ${owner}, ${writer}; DROP ROLE IF EXISTS ${owner}; DROP ROLE IF EXISTS ${writer}`).then(() => undefined),
});
const config = { tables: ['app.orders', 'app.parted'], batchSize: 1000 };
const INSERTS = 50;

async function session(user: string): Promise<pg.Client> {
  const client = new pg.Client({ ...db.config, ssl: false, user, password: 'race-pass' } as pg.ClientConfig);
  await client.connect();
  return client;
}

const isSuperuser = async () => (await db.sql('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [owner]))[0]!.rolsuper as boolean;

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${owner} LOGIN PASSWORD 'race-pass'; CREATE ROLE ${writer} LOGIN PASSWORD 'race-pass';
    CREATE SCHEMA app AUTHORIZATION ${owner}`);
  const client = await session(owner);
  try {
    // The owner's cast function records who ran it, and tries to make its owner superuser.
    await client.query(`CREATE TYPE app.mood AS ENUM ('ok', 'sad');
      CREATE TABLE app.ran (who text NOT NULL);
      CREATE FUNCTION app.mood_json(app.mood) RETURNS json LANGUAGE plpgsql AS $f$
        BEGIN
          INSERT INTO app.ran VALUES (current_user);
          BEGIN EXECUTE format('ALTER ROLE %I SUPERUSER', '${owner}'); EXCEPTION WHEN insufficient_privilege THEN NULL; END;
          RETURN to_json($1::text);
        END $f$;
      CREATE TABLE app.orders (id int PRIMARY KEY, note text, m app.mood DEFAULT 'ok');
      CREATE TABLE app.parted (id int PRIMARY KEY, note text, m app.mood DEFAULT 'ok') PARTITION BY RANGE (id);
      CREATE TABLE app.parted_low PARTITION OF app.parted FOR VALUES FROM (0) TO (1000);
      CREATE TABLE app.parted_high PARTITION OF app.parted FOR VALUES FROM (1000) TO (100000);
      GRANT USAGE ON SCHEMA app TO ${writer};
      GRANT INSERT ON app.orders, app.parted TO ${writer};
      -- so that the cast may record who ran it, whoever that is
      GRANT USAGE ON SCHEMA app TO PUBLIC; GRANT INSERT ON app.ran TO PUBLIC`);
  } finally {
    await client.end();
  }
  // The activator: the suite's admin role (a superuser), as flows often connect.
  await activateTrigger('row-changes', { connection: db.config, config });
}, 60_000);
afterAll(async () => {
  await deactivateTrigger('row-changes', { connection: db.config, config }).catch(() => undefined);
});

async function eventsAfter(state: unknown): Promise<Array<{ table: string; key: unknown; new: Record<string, unknown> }>> {
  const events = [];
  for (;;) {
    const batch = await pollTrigger('row-changes', { connection: db.config, config, state });
    events.push(...(batch.events as unknown as Array<{ table: string; key: unknown; new: Record<string, unknown> }>));
    if (batch.events.length === 0) return events;
    state = batch.state;
  }
}

/** The owner toggles its cast to json while the writer inserts: the ids inserted, the inserts' errors, the toggles made. */
async function race(table: string, firstId: number): Promise<{ inserted: number[]; errors: string[]; toggles: number }> {
  const [toggler, inserter] = [await session(owner), await session(writer)];
  let toggling = true;
  let toggles = 0;
  const toggle = (async () => {
    while (toggling) {
      await toggler.query('CREATE CAST (app.mood AS json) WITH FUNCTION app.mood_json(app.mood)');
      await toggler.query('DROP CAST (app.mood AS json)');
      toggles++;
    }
  })();
  const inserted: number[] = [];
  const errors: string[] = [];
  const insert = (id: number) => inserter.query(`INSERT INTO ${table} (id, note) VALUES ($1, 'x')`, [id]).then(() => inserted.push(id), (error: Error) => errors.push(error.message));
  try {
    for (let id = firstId; id < firstId + INSERTS && !(await isSuperuser()); id++) await insert(id);
    toggling = false;
    await toggle;
    // With the cast in place for sure: one more insert, so the cast has run at least once.
    await toggler.query('CREATE CAST (app.mood AS json) WITH FUNCTION app.mood_json(app.mood)');
    await insert(firstId + INSERTS);
    await toggler.query('DROP CAST (app.mood AS json)');
  } finally {
    toggling = false;
    await toggle.catch(() => undefined);
    await toggler.end();
    await inserter.end();
  }
  return { inserted, errors, toggles };
}

test.each([
  ['app.orders', 'a plain table (statement-level capture)', 1],
  ['app.parted', 'a partitioned table (row-level capture on each partition)', 980],
])('%s, %s: the owner toggling a cast to json while another role inserts never becomes superuser; the cast never runs; every insert is captured', async (table, _kind, firstId) => {
  await db.sql('TRUNCATE app.ran');
  const { state } = await pollTrigger('row-changes', { connection: db.config, config });
  const { inserted, errors, toggles } = await race(table, firstId);
  expect(await isSuperuser()).toBe(false);
  expect(errors).toEqual([]);
  expect(inserted).toEqual(Array.from({ length: INSERTS + 1 }, (_, i) => firstId + i));
  expect(toggles).toBeGreaterThan(0);
  const ran = await db.sql<{ who: string }>('SELECT DISTINCT who FROM app.ran');
  expect(ran).toEqual([]); // never run: the capture calls no cast of a role that is not a superuser (REVIEW10 R170)
  const events = await eventsAfter(state);
  expect(events.map((event) => [event.table, event.key, event.new.m])).toEqual(inserted.map((id) => [table.slice(4), { id }, 'ok']));
}, 240_000);
