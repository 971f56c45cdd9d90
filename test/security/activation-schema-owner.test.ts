/**
 * REVIEW9 R156: pg-actions calls into schema pgactions by name (rc_F_put from every writer, rc_F_read
 * from every read, the CDC heartbeat table, schema-changes' outbox), and a schema's owner may drop
 * any object in it and put its own in its place. So the schema must be this role's or a superuser's:
 * a role with CREATE on the database that made pgactions first is refused at activation (naming it),
 * and one the schema was handed to later (ALTER SCHEMA … OWNER TO) is refused at every read,
 * subscription, capture, event trigger and heartbeat before anything of its own could run: its
 * replacement functions and tables never make it a superuser.
 */
import pg from 'pg';
import { activateTrigger, deactivateTrigger, pollTrigger, subscribeTrigger } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { failureOf, waitFor } from '../triggers/helpers.js';

const server = useReplicationServer();
let n = 0;
/** Any code of the attacker's that runs as a superuser makes it one. */
const PAYLOAD = (role: string) => `IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN EXECUTE 'ALTER ROLE ${role} SUPERUSER'; END IF;`;

async function setUp() {
  const name = `schown_${++n}`;
  const attacker = `schown_attacker_${n}`;
  await server.sql(`CREATE DATABASE ${name}`);
  const sql = (text: string) => server.sql(text, undefined, name);
  await sql(`CREATE ROLE ${attacker} LOGIN PASSWORD 'att-pw'; GRANT CREATE ON DATABASE ${name} TO ${attacker}; GRANT CREATE ON SCHEMA public TO ${attacker};
    CREATE TABLE orders (id int PRIMARY KEY, note text)`);
  const client = new pg.Client({ ...server.config({ database: name, user: attacker, password: 'att-pw' }), ssl: false } as pg.ClientConfig);
  client.on('error', () => undefined); // ended with the server when a test fails
  await client.connect();
  const superuser = async () => (await sql(`SELECT rolsuper FROM pg_roles WHERE rolname = '${attacker}'`))[0]!.rolsuper as boolean;
  const ours = async () => (await sql("SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = 'pgactions'"))[0]!.n as number;
  return { name, attacker, sql, attacker_: client, superuser, ours, connection: server.config({ database: name }) };
}

test('a pgactions schema another role made first: activation of row-changes, schema-changes and table-changes-cdc (heartbeat table) by a superuser is refused naming it', async () => {
  const t = await setUp();
  await t.attacker_.query('CREATE SCHEMA pgactions');
  const requests: [string, object][] = [
    ['row-changes', { tables: ['orders'] }],
    ['schema-changes', { schemas: ['public'] }],
    ['table-changes-cdc', { tables: ['orders'], heartbeat: 'table' }],
  ];
  for (const [key, config] of requests) {
    const error = await failureOf(activateTrigger(key, { connection: t.connection, config }));
    expect(error.code).toBe('PERMISSION_DENIED');
    expect(error.message).toMatch(new RegExp(`owned by role "?${t.attacker}"?,`));
    expect(error.fixes.join(' ')).toContain('ALTER SCHEMA pgactions OWNER TO');
    expect(error.fixes.join(' ')).toContain('DROP SCHEMA pgactions');
  }
  expect(await t.ours()).toBe(0); // nothing was created in it
  expect(await t.sql('SELECT slot_name FROM pg_replication_slots')).toEqual([]);
  // The fix the message gives: the schema becomes the activating role's, then activation works.
  await t.sql(`ALTER SCHEMA pgactions OWNER TO CURRENT_USER`);
  await activateTrigger('row-changes', { connection: t.connection, config: { tables: ['orders'] } });
  await deactivateTrigger('row-changes', { connection: t.connection, config: { tables: ['orders'] } });
  await t.attacker_.end();
}, 60_000);

test('row-changes whose schema was handed to another role later: poll, subscribe and every captured write are refused, its replacements of rc_F_read and rc_F_put never run as the superuser', async () => {
  const t = await setUp();
  const request = { connection: t.connection, config: { tables: ['orders'] } };
  await activateTrigger('row-changes', request);
  const { state } = await pollTrigger('row-changes', request);
  const functions = await t.sql("SELECT p.oid::regprocedure::text AS f FROM pg_proc p WHERE pronamespace = 'pgactions'::regnamespace");
  const [put, read] = ['_put', '_read'].map((part) => functions.map((row) => row.f as string).find((f) => f.includes(part))!) as [string, string];
  await t.sql(`ALTER SCHEMA pgactions OWNER TO ${t.attacker}`); // by a superuser, by mistake
  await t.attacker_.query(`DROP FUNCTION ${put}; CREATE FUNCTION ${put.replace(/\(.*/, '')}(source oid, op text, news jsonb[], olds jsonb[]) RETURNS void LANGUAGE plpgsql AS $f$ BEGIN ${PAYLOAD(t.attacker)} END $f$;
    GRANT EXECUTE ON FUNCTION ${put} TO PUBLIC;
    DROP FUNCTION ${read}; CREATE FUNCTION ${read.replace(/\(.*/, '')}(after bigint, batch integer, retention interval, shared boolean)
      RETURNS TABLE (pos bigint, seq bigint, op text, schema_name text, table_name text, key jsonb, new jsonb, old jsonb, written_at timestamptz, epoch text, gap bigint)
      LANGUAGE plpgsql AS $f$ BEGIN ${PAYLOAD(t.attacker)} RETURN; END $f$`);

  const polled = await failureOf(pollTrigger('row-changes', { ...request, state }));
  expect(polled.code).toBe('PERMISSION_DENIED');
  expect(polled.message).toMatch(new RegExp(`owned by role "?${t.attacker}"?,`));
  expect(await t.superuser()).toBe(false);

  const started = await failureOf(subscribeTrigger('row-changes', request, () => undefined)); // no state: refused while finding the position
  expect(started.code).toBe('PERMISSION_DENIED');
  const errors: { code?: string }[] = [];
  const subscription = await subscribeTrigger('row-changes', { ...request, state, onError: (error) => errors.push(error as { code?: string }) }, () => undefined);
  await waitFor(() => errors.some((error) => error.code === 'PERMISSION_DENIED'), 'the subscription reports the untrusted owner');
  await subscription.close();
  expect(await t.superuser()).toBe(false);

  await expect(t.sql("INSERT INTO orders VALUES (1, 'a write by the superuser')")).rejects.toThrow(new RegExp(`schema pgactions is owned by role "?${t.attacker}"?,`));
  expect(await t.sql('SELECT * FROM orders')).toEqual([]); // refused, not written without its event
  expect(await t.superuser()).toBe(false);

  const deactivation = await failureOf(deactivateTrigger('row-changes', request));
  expect(deactivation.code).toBe('PERMISSION_DENIED');
  await t.sql('ALTER SCHEMA pgactions OWNER TO CURRENT_USER');
  await deactivateTrigger('row-changes', request);
  await t.attacker_.end();
}, 60_000);

test("schema-changes whose schema was handed to another role later: every DDL is refused by the event trigger before it names the owner's objects, and polls are refused", async () => {
  const t = await setUp();
  const request = { connection: t.connection, config: { schemas: ['public'] } };
  expect(await activateTrigger('schema-changes', request)).toMatchObject({ mode: expect.stringContaining('event') });
  const { state } = await pollTrigger('schema-changes', request);
  const outbox = (await t.sql("SELECT relname FROM pg_class WHERE relnamespace = 'pgactions'::regnamespace AND relname LIKE 'sc_%_outbox'"))[0]!.relname as string;
  const handOver = `ALTER SCHEMA pgactions OWNER TO ${t.attacker}`;
  await expect(t.sql(handOver)).rejects.toThrow(new RegExp(`schema pgactions is owned by role "?${t.attacker}"?,`)); // the event trigger sees it first
  await t.sql(`BEGIN; SET LOCAL session_replication_role = replica; ${handOver}; COMMIT`); // with event triggers off
  const refused = new RegExp(`schema pgactions is owned by role "?${t.attacker}"?,`);
  // Every DDL fires the event trigger, which refuses before naming anything in the schema: the owner cannot even swap the outbox.
  await expect(t.attacker_.query(`DROP TABLE pgactions.${outbox} CASCADE`)).rejects.toThrow(refused);
  await expect(t.attacker_.query(`CREATE FUNCTION pgactions.t() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${PAYLOAD(t.attacker)} RETURN NEW; END $f$`)).rejects.toThrow(refused);
  await expect(t.attacker_.query('CREATE TABLE public.anything (id int)')).rejects.toThrow(refused);
  expect(await t.superuser()).toBe(false);
  expect((await failureOf(pollTrigger('schema-changes', { ...request, state }))).code).toBe('PERMISSION_DENIED');
  await t.sql('ALTER SCHEMA pgactions OWNER TO CURRENT_USER'); // the fix works from inside: at ddl_command_end the owner is already trusted
  await deactivateTrigger('schema-changes', request);
  await t.attacker_.end();
}, 60_000);

test("table-changes-cdc whose schema was handed to another role later: no beat updates the owner's heartbeat table", async () => {
  const t = await setUp();
  const request = { connection: t.connection, config: { tables: ['orders'], heartbeat: 'table' as const, heartbeatSeconds: 1 } };
  await activateTrigger('table-changes-cdc', request);
  let { state } = await pollTrigger('table-changes-cdc', request);
  const heartbeat = (await t.sql("SELECT relname FROM pg_class WHERE relnamespace = 'pgactions'::regnamespace AND relkind = 'r'"))[0]!.relname as string;
  await t.sql(`ALTER SCHEMA pgactions OWNER TO ${t.attacker}`);
  await t.attacker_.query(`DROP TABLE pgactions.${heartbeat}; CREATE TABLE pgactions.${heartbeat} (id int PRIMARY KEY DEFAULT 1, beat timestamptz NOT NULL DEFAULT now());
    INSERT INTO pgactions.${heartbeat} DEFAULT VALUES; GRANT ALL ON pgactions.${heartbeat} TO PUBLIC;
    CREATE FUNCTION pgactions.t() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${PAYLOAD(t.attacker)} RETURN NEW; END $f$;
    CREATE TRIGGER t BEFORE UPDATE ON pgactions.${heartbeat} FOR EACH ROW EXECUTE FUNCTION pgactions.t()`);
  const before = (await t.sql(`SELECT beat FROM pgactions.${heartbeat}`))[0]!.beat as Date;
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1200)); // past heartbeatSeconds: an idle poll beats
    ({ state } = await pollTrigger('table-changes-cdc', { ...request, state })); // a refused beat never fails the poll
  }
  expect((await t.sql(`SELECT beat FROM pgactions.${heartbeat}`))[0]!.beat).toEqual(before);
  expect(await t.superuser()).toBe(false);
  await t.sql('ALTER SCHEMA pgactions OWNER TO CURRENT_USER');
  await deactivateTrigger('table-changes-cdc', request);
  await t.attacker_.end();
}, 60_000);
