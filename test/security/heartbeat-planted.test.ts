/**
 * The CDC heartbeat and what other roles leave in schema pgactions (REVIEW10 R162, for the beat).
 * A beat is a DO block that UPDATEs pgactions.<slot>_heartbeat when that table exists, which fires
 * the table's triggers. It checked only the schema's owner (R156), while activation and the reads
 * also refuse a schema in which other roles hold objects or may create them (R162). Where the
 * trigger's own table does not exist, a role that could create in pgactions made one under its
 * name with a trigger, and the next idle poll ran that trigger as the poller (a superuser):
 * - the table is never created when the activation's heartbeat was 'message' or 'auto' (on
 *   PostgreSQL 14+, or before 14 beside a publication FOR ALL TABLES), and the heartbeat choice is
 *   not part of the trigger's identity: a later 'table' (or, before 14, the publication dropped)
 *   beats the table by its name;
 * - a role may create there when the schema was handed over by a role that had planted it first
 *   (ALTER SCHEMA … OWNER TO, R156's first advice), or when CREATE on it was granted (to PUBLIC, as
 *   older servers' set-ups did for public).
 * Now the beat's DO block runs R162's check (schema-owner.ts trustCheckPlpgsql, the same PLANTED
 * query as the reads) before naming the table.
 */
import { activateTrigger, deactivateTrigger, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { waitFor } from '../triggers/helpers.js';

const KEY = 'table-changes-cdc';
const server = useReplicationServer();
let n = 0;
/** Any of the planter's code that runs as a superuser makes it one. */
const PAYLOAD = (role: string) => `IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN EXECUTE 'ALTER ROLE ${role} SUPERUSER'; END IF;`;

async function setUp() {
  const database = `hbplant_${++n}`;
  const planter = `hbplant_planter_${n}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string) => server.sql(text, undefined, database);
  await sql(`CREATE ROLE ${planter} NOLOGIN; GRANT CREATE ON DATABASE ${database} TO ${planter}; CREATE TABLE orders (id int PRIMARY KEY, note text)`);
  // Activated with the message heartbeat (PostgreSQL 14+): the slot exists, its heartbeat table does not.
  const request = { connection: server.config({ database }), config: { tables: ['orders'], heartbeat: 'message' as const, heartbeatSeconds: 1 } };
  await activateTrigger(KEY, request);
  const slot = (await sql('SELECT slot_name FROM pg_replication_slots WHERE database = current_database()'))[0]!.slot_name as string;
  const table = `pgactions.${slot}_heartbeat`;
  /** The planter's table under the heartbeat's name: its trigger runs the payload as whoever updates it. */
  const plant = `CREATE TABLE ${table} (id int PRIMARY KEY DEFAULT 1, beat timestamptz NOT NULL DEFAULT now()); INSERT INTO ${table} DEFAULT VALUES;
    CREATE FUNCTION pgactions.hb_boom() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${PAYLOAD(planter)} RETURN NEW; END $f$;
    CREATE TRIGGER boom BEFORE UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION pgactions.hb_boom()`;
  const promoted = async () => (await sql(`SELECT rolsuper FROM pg_roles WHERE rolname = '${planter}'`))[0]!.rolsuper as boolean;
  const beat = async () => ((await sql(`SELECT beat FROM ${table}`))[0]!.beat as Date).getTime();
  /** Idle polls with the table heartbeat (same slot: the heartbeat is not part of the identity); a refused beat never fails a poll. */
  const idlePolls = async (count: number, state?: TriggerState) => {
    for (let i = 0; i < count; i++) ({ state } = await pollTrigger(KEY, { ...request, config: { ...request.config, heartbeat: 'table' }, state }));
    return state;
  };
  return { database, planter, sql, request, table, plant, promoted, beat, idlePolls };
}

afterEach(async () => {
  for (let i = 1; i <= n; i++) await server.sql(`ALTER ROLE hbplant_planter_${i} NOSUPERUSER`).catch(() => undefined);
}, 30_000);

test('a schema the planter made, with its table under the heartbeat\'s name, handed over to the superuser: no beat runs its trigger', async () => {
  const t = await setUp();
  await t.sql(`BEGIN; SET LOCAL ROLE ${t.planter}; CREATE SCHEMA pgactions; ${t.plant}; COMMIT`);
  await t.sql('ALTER SCHEMA pgactions OWNER TO CURRENT_USER'); // the hand-over: the owner is trusted now, the table and its trigger are still the planter's
  const before = await t.beat();
  await t.idlePolls(3);
  expect(await t.promoted()).toBe(false);
  expect(await t.beat()).toBe(before);
  await t.sql('DROP SCHEMA pgactions CASCADE');
  await deactivateTrigger(KEY, t.request);
}, 90_000);

test('the superuser\'s schema granting CREATE to PUBLIC (as older servers did for public): a table planted under the heartbeat\'s name is not updated; once it is gone and the grant revoked, the beats run', async () => {
  const t = await setUp();
  await t.sql('CREATE SCHEMA pgactions; GRANT USAGE, CREATE ON SCHEMA pgactions TO PUBLIC'); // what public had before PostgreSQL 15
  await t.sql(`BEGIN; SET LOCAL ROLE ${t.planter}; ${t.plant}; COMMIT`);
  const before = await t.beat();
  let state = await t.idlePolls(3);
  expect(await t.promoted()).toBe(false);
  expect(await t.beat()).toBe(before);
  // What the refusal asks for: the planter's objects dropped and the grant revoked. pg-actions' own table (activation with 'table') then beats.
  await t.sql(`DROP TABLE ${t.table}; DROP FUNCTION pgactions.hb_boom(); REVOKE CREATE ON SCHEMA pgactions FROM PUBLIC`);
  await activateTrigger(KEY, { ...t.request, config: { ...t.request.config, heartbeat: 'table' } });
  const installed = await t.beat();
  await waitFor(async () => {
    state = await t.idlePolls(1, state);
    return (await t.beat()) > installed;
  }, 'a beat of the heartbeat table pg-actions made');
  await deactivateTrigger(KEY, { ...t.request, config: { ...t.request.config, heartbeat: 'table' } });
}, 90_000);
