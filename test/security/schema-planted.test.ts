/**
 * REVIEW10 R162: trust in schema pgactions is more than its owner. Handing the schema over (ALTER
 * SCHEMA … OWNER TO, the advice of R156's refusal) keeps its objects' owners and its grants, and
 * activation adopts objects by name (CREATE TABLE IF NOT EXISTS, CREATE OR REPLACE FUNCTION). So a
 * schema granting CREATE to PUBLIC or holding another role's objects is refused at activation and
 * read (naming them), the planted code never runs as the superuser, and the read calls rc_F_read
 * with exact argument types (no overload wins it).
 */
import { activateTrigger, pollTrigger } from '../../triggers/index.js';
import { findTrigger } from '../../triggers/registry.js';
import { fingerprintOf } from '../../triggers/state.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf, poll } from '../triggers/helpers.js';

const planter = `rc_planter_${process.pid}`;
const db = useTestDatabase('rcplant', {
  beforeDrop: () => db.sql(`DROP SCHEMA IF EXISTS pgactions CASCADE; DROP OWNED BY ${planter}; DROP ROLE IF EXISTS ${planter}`).then(() => undefined),
});
const connection = () => db.config;
/** The fingerprint of a row-changes config, as anyone can compute it from the public package. */
function fingerprint(config: Record<string, unknown>): string {
  const trigger = findTrigger('row-changes') as unknown as { identity: string[]; config: { properties: Record<string, { default?: unknown }> } };
  const defaults = Object.fromEntries(Object.entries(trigger.config.properties).flatMap(([k, v]) => ('default' in v ? [[k, v.default]] : [])));
  return fingerprintOf('row-changes', trigger.identity, { ...defaults, ...config });
}
/** Any of the planter's code that runs as a superuser makes it one. */
const PAYLOAD = `IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN EXECUTE 'ALTER ROLE ${planter} SUPERUSER'; END IF;`;
const asPlanter = (text: string) => db.sql(`SET LOCAL ROLE ${planter}; ${text}`);
const promoted = async () => (await db.sql(`SELECT rolsuper FROM pg_roles WHERE rolname = '${planter}'`))[0]!.rolsuper as boolean;

beforeAll(async () => {
  await db.sql(`DROP ROLE IF EXISTS ${planter}; CREATE ROLE ${planter} NOLOGIN; GRANT CREATE ON DATABASE ${db.name} TO ${planter};
    CREATE TABLE orders (id int PRIMARY KEY, note text)`);
  await asPlanter(`CREATE SCHEMA plant;
    CREATE FUNCTION plant.boom() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${PAYLOAD} RETURN NEW; END $f$;
    CREATE FUNCTION plant.boom2() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN ${PAYLOAD} RETURN 'e'; END $f$;
    GRANT USAGE ON SCHEMA plant TO PUBLIC; GRANT EXECUTE ON FUNCTION plant.boom2() TO PUBLIC`);
}, 60_000);

afterEach(async () => {
  await db.sql(`ALTER ROLE ${planter} NOSUPERUSER; DROP SCHEMA IF EXISTS pgactions CASCADE`);
});

test('a schema made by another role, with a planted rc_F_tables and CREATE granted to PUBLIC, handed over to the superuser: activation is refused naming both, the plant never runs', async () => {
  const F = fingerprint({ tables: ['orders'] });
  await asPlanter(`CREATE SCHEMA pgactions;
    CREATE TABLE pgactions.rc_${F}_tables (relid oid PRIMARY KEY, key_columns text[]);
    CREATE TRIGGER plant BEFORE INSERT ON pgactions.rc_${F}_tables FOR EACH ROW EXECUTE FUNCTION plant.boom();
    GRANT CREATE ON SCHEMA pgactions TO PUBLIC`);
  const first = await failureOf(activateTrigger('row-changes', { connection: connection(), config: { tables: ['orders'] } }));
  expect(first.code).toBe('PERMISSION_DENIED');
  expect(first.fixes[0]).toContain('DROP SCHEMA pgactions CASCADE');
  await db.sql('ALTER SCHEMA pgactions OWNER TO CURRENT_USER'); // what R156's refusal advised first
  const refused = await failureOf(activateTrigger('row-changes', { connection: connection(), config: { tables: ['orders'] } }));
  expect(refused.code).toBe('PERMISSION_DENIED');
  expect(refused.message).toContain(`relation rc_${F}_tables owned by ${planter}`);
  expect(refused.message).toContain('the grant of CREATE on the schema to PUBLIC');
  expect(refused.fixes.join(' ')).toContain('DROP SCHEMA pgactions CASCADE');
  expect(await promoted()).toBe(false);
  expect(await db.sql(`SELECT count(*)::int AS n FROM pgactions.rc_${F}_tables`)).toEqual([{ n: 0 }]);
  // The fix the refusal gives: the schema dropped, activation creates its own.
  await db.sql('DROP SCHEMA pgactions CASCADE');
  await activateTrigger('row-changes', { connection: connection(), config: { tables: ['orders'] } });
  expect(await promoted()).toBe(false);
}, 60_000);

test('the superuser\'s schema with CREATE granted to PUBLIC: a cursor planted for a later activation (epoch DEFAULT the planter\'s function) is refused, never filled', async () => {
  await activateTrigger('row-changes', { connection: connection(), config: { tables: ['orders'] } });
  await db.sql('GRANT CREATE ON SCHEMA pgactions TO PUBLIC');
  const F2 = fingerprint({ tables: ['orders'], operations: ['INSERT'] });
  await asPlanter(`CREATE TABLE pgactions.rc_${F2}_cursor (stamped bigint NOT NULL DEFAULT 0, acked bigint NOT NULL DEFAULT 0,
    pruned bigint NOT NULL DEFAULT 0, epoch text NOT NULL DEFAULT plant.boom2())`);
  const refused = await failureOf(activateTrigger('row-changes', { connection: connection(), config: { tables: ['orders'], operations: ['INSERT'] } }));
  expect(refused.code).toBe('PERMISSION_DENIED');
  expect(refused.message).toContain(`relation rc_${F2}_cursor owned by ${planter}`);
  expect(await promoted()).toBe(false);
  // Reads of the installed activation are refused too, before calling anything.
  const read = await failureOf(pollTrigger('row-changes', { connection: connection(), config: { tables: ['orders'] } }));
  expect(read.code).toBe('PERMISSION_DENIED');
  expect(read.message).toContain('row-changes read');
  expect(read.message).toContain('the grant of CREATE on the schema to PUBLIC');
  expect(await promoted()).toBe(false);
}, 60_000);

test('an overload rc_F_read(bigint, text, interval, text) planted through a CREATE grant: the poll is refused and never calls it', async () => {
  const F = fingerprint({ tables: ['orders'] });
  await activateTrigger('row-changes', { connection: connection(), config: { tables: ['orders'] } });
  await db.sql('GRANT CREATE ON SCHEMA pgactions TO PUBLIC');
  await asPlanter(`CREATE FUNCTION pgactions.rc_${F}_read(after bigint, batch text, retention interval, shared text)
    RETURNS TABLE (pos bigint, seq bigint, op text, schema_name text, table_name text, key jsonb, new jsonb, old jsonb, written_at timestamptz, epoch text, gap bigint)
    LANGUAGE plpgsql AS $f$ BEGIN ${PAYLOAD} RETURN; END $f$`);
  const refused = await failureOf(pollTrigger('row-changes', { connection: connection(), config: { tables: ['orders'] } }));
  expect(refused.code).toBe('PERMISSION_DENIED');
  expect(refused.message).toContain(`function rc_${F}_read owned by ${planter}`);
  expect(await promoted()).toBe(false);
}, 60_000);

test('the read calls rc_F_read with exact argument types: an overload that would win untyped arguments (one the schema\'s owner made) is not called', async () => {
  const F = fingerprint({ tables: ['orders'] });
  await activateTrigger('row-changes', { connection: connection(), config: { tables: ['orders'] } });
  await db.sql(`CREATE FUNCTION pgactions.rc_${F}_read(after bigint, batch text, retention interval, shared text)
    RETURNS TABLE (pos bigint, seq bigint, op text, schema_name text, table_name text, key jsonb, new jsonb, old jsonb, written_at timestamptz, epoch text, gap bigint)
    LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'the overload ran'; END $f$`);
  const { state } = await poll('row-changes', { connection: connection(), config: { tables: ['orders'] } });
  await db.sql("INSERT INTO orders VALUES (1, 'a')");
  const { events } = await poll('row-changes', { connection: connection(), config: { tables: ['orders'] }, state });
  expect(events.map((event) => event.key)).toEqual([{ id: 1 }]);
}, 60_000);
