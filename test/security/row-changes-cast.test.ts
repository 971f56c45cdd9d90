/**
 * REVIEW7 R138: to_jsonb calls a cast to json made by the owner of a user type. When row-changes'
 * capture functions ran as the role that activated the trigger (SECURITY DEFINER), a role owning
 * only the watched table added an enum column with such a cast, and its function ran with the
 * activator's rights at the next write: ALTER ROLE … SUPERUSER. A refusal of such casts was a
 * check-then-use race (REVIEW8 R143, row-changes-cast-race.test.ts); now the rows are serialised
 * as the database's capture role, which has no rights (REVIEW9 R161), and since REVIEW10 R170 a cast
 * made by a role that is not a superuser is never called: such values are written as their text.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { asRole } from '../harness/as-role.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const owner = `rc_owner_${randomBytes(4).toString('hex')}`;
const db = useTestDatabase('rc_cast', { beforeDrop: () => db.sql(`DROP OWNED BY ${owner}; DROP ROLE IF EXISTS ${owner}`).then(() => undefined) });
const config = { tables: ['app.orders'] };

const asOwner = <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => asRole(db.config, owner, 'owner-pass', work);

const isSuperuser = async () => (await db.sql('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [owner]))[0]!.rolsuper as boolean;

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${owner} LOGIN PASSWORD 'owner-pass'; CREATE SCHEMA app AUTHORIZATION ${owner}`);
  await asOwner((c) => c.query('CREATE TABLE app.orders (id int PRIMARY KEY, note text)'));
  // The activator: the suite's admin role, as flows often connect.
  await activateTrigger('row-changes', { connection: db.config, config });
}, 60_000);
afterAll(async () => {
  await deactivateTrigger('row-changes', { connection: db.config, config }).catch(() => undefined);
});

test('a cast to json made by the table\'s owner for a column\'s type never runs: the values are captured as their labels (REVIEW10 R170)', async () => {
  const start = await pollTrigger('row-changes', { connection: db.config, config });
  await asOwner(async (c) => {
    await c.query(`CREATE TYPE app.mood AS ENUM ('ok', 'sad');
      CREATE FUNCTION app.mood_json(app.mood) RETURNS json LANGUAGE plpgsql AS $f$
        BEGIN EXECUTE format('ALTER ROLE %I SUPERUSER', '${owner}'); RETURN to_json($1::text); END $f$;
      CREATE CAST (app.mood AS json) WITH FUNCTION app.mood_json(app.mood);
      ALTER TABLE app.orders ADD COLUMN m app.mood, ADD COLUMN ms app.mood[]`);
    // The cast itself works, as its owner: ALTER ROLE is refused to a role that is not superuser.
    await expect(c.query("SELECT to_jsonb('ok'::app.mood)")).rejects.toThrow(/permission denied|must be superuser/i); // the text differs across versions
    // The owner writing, through an array and directly: the capture calls no cast of its, so nothing fails.
    await c.query("INSERT INTO app.orders (id, note, ms) VALUES (1, 'x', '{ok}')");
    await c.query("INSERT INTO app.orders VALUES (2, 'y', 'ok')");
  });
  expect(await isSuperuser()).toBe(false);
  const { events } = await pollTrigger('row-changes', { connection: db.config, config, state: start.state });
  expect(events.map((event) => (event as unknown as { new: unknown }).new)).toEqual([
    { id: 1, note: 'x', m: null, ms: ['ok'] }, { id: 2, note: 'y', m: 'ok', ms: null },
  ]);
}, 60_000);

test('without the cast the same rows are captured, exactly', async () => {
  const start = await pollTrigger('row-changes', { connection: db.config, config });
  await asOwner((c) => c.query("DROP CAST (app.mood AS json); INSERT INTO app.orders VALUES (3, 'z', 'sad', '{ok,sad}')"));
  const { events } = await pollTrigger('row-changes', { connection: db.config, config, state: start.state });
  expect(events.map((event) => (event as unknown as { new: unknown }).new)).toEqual([{ id: 3, note: 'z', m: 'sad', ms: ['ok', 'sad'] }]);
  expect(await isSuperuser()).toBe(false);
}, 60_000);

test('an extension\'s cast to json (hstore AS json): rows with such a column are captured', async () => {
  await db.sql('CREATE EXTENSION IF NOT EXISTS hstore; ALTER TABLE app.orders ADD COLUMN h hstore');
  const start = await pollTrigger('row-changes', { connection: db.config, config });
  await asOwner((c) => c.query(`INSERT INTO app.orders (id, note, h) VALUES (4, 'h', 'a=>1')`));
  const { events } = await pollTrigger('row-changes', { connection: db.config, config, state: start.state });
  expect(events.map((event) => (event as unknown as { new: { id: number; h: unknown } }).new).map(({ id, h }) => ({ id, h }))).toEqual([{ id: 4, h: { a: '1' } }]);
}, 60_000);
