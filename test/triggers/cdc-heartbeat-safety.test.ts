/**
 * The heartbeat table never reaches anyone else and never breaks a trigger (REVIEW3 R13, R17): it is
 * not created where a publication FOR ALL TABLES would ship it to subscribers that lack it, nor by a
 * role that cannot create it ('auto' goes without it, an explicit 'table' is refused before the slot
 * exists); a failed activation leaves no slot; no trigger delivers any heartbeat table's changes;
 * a failing beat never fails a poll.
 */
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { failureOf } from './helpers.js';

const KEY = 'table-changes-cdc';
const server = useReplicationServer();
let n = 0;

async function database() {
  const name = `hbs_${++n}`;
  await server.sql(`CREATE DATABASE ${name}`);
  const sql = (text: string, values?: unknown[]) => server.sql(text, values, name);
  await sql('CREATE TABLE items (id int PRIMARY KEY, name text)');
  const leftovers = async () => ({
    slots: (await sql('SELECT slot_name FROM pg_replication_slots WHERE database = current_database()')).length,
    publications: (await sql("SELECT pubname FROM pg_publication WHERE pubname LIKE 'pg_actions_%'")).length,
    heartbeatTables: (await sql("SELECT tablename FROM pg_tables WHERE schemaname = 'pgactions'")).length,
  });
  return { name, sql, leftovers };
}

test("a publication FOR ALL TABLES: heartbeat 'table' is refused naming it, before anything is created; 'auto' goes without the table", async () => {
  const db = await database();
  await db.sql('CREATE PUBLICATION everything FOR ALL TABLES');
  const connection = server.config({ database: db.name });
  const error = await failureOf(activateTrigger(KEY, { connection, config: { tables: ['items'], heartbeat: 'table' } }));
  expect(error.code).toBe('HEARTBEAT_TABLE_UNAVAILABLE');
  expect(error.message).toContain('publication "everything"');
  expect(await db.leftovers()).toEqual({ slots: 0, publications: 0, heartbeatTables: 0 });

  const auto = { connection, config: { tables: ['items'], heartbeatSeconds: 1 } };
  await activateTrigger(KEY, auto);
  expect((await db.leftovers()).heartbeatTables).toBe(0); // on every version: never published to "everything"'s subscribers
  await db.sql("INSERT INTO items VALUES (1, 'a')");
  const first = await pollTrigger(KEY, auto);
  expect(first.events.map((e) => (e as unknown as { new: unknown }).new)).toEqual([{ id: 1, name: 'a' }]);
  expect((await pollTrigger(KEY, { ...auto, state: first.state })).events).toEqual([]); // idle poll, beat or none: no error
  await deactivateTrigger(KEY, auto);
  expect(await db.leftovers()).toEqual({ slots: 0, publications: 0, heartbeatTables: 0 });
});

test("another heartbeat table's changes are never events, and a beat skips its table once a FOR ALL TABLES publication exists", async () => {
  const db = await database();
  await db.sql('CREATE TABLE other (id int PRIMARY KEY)');
  const connection = server.config({ database: db.name });
  const a = { connection, config: { tables: ['items'], heartbeat: 'table' as const, heartbeatSeconds: 1 } };
  await activateTrigger(KEY, a);
  const heartbeat = (await db.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'pgactions'"))[0]!.tablename as string;
  await db.sql('CREATE PUBLICATION everything FOR ALL TABLES'); // made by the user after A's activation
  const b = { connection, config: { tables: ['other'], publication: 'everything' } };
  await activateTrigger(KEY, b);
  const beatAt = async () => ((await db.sql(`SELECT beat FROM pgactions.${heartbeat}`))[0]!.beat as Date).getTime();
  const before = await beatAt();
  await pollTrigger(KEY, a); // idle: would beat, but "everything" would now ship the UPDATE
  expect(await beatAt()).toBe(before);
  await db.sql(`UPDATE pgactions.${heartbeat} SET beat = now()`); // A's table changes anyway (say, before the publication existed)
  await db.sql('INSERT INTO other VALUES (7)');
  const events = (await pollTrigger(KEY, b)).events as unknown as { table: string }[];
  expect(events.map((e) => e.table)).toEqual(['other']);
  await deactivateTrigger(KEY, b);
  await deactivateTrigger(KEY, a);
});

test("least privilege (no CREATE on the database): 'auto' activates and polls; 'table' is refused naming the privilege, with no slot left", async () => {
  const db = await database();
  const role = `hb_reader_${n}`;
  await db.sql(`CREATE ROLE ${role} LOGIN REPLICATION PASSWORD 'pw'; GRANT SELECT ON items TO ${role}; CREATE PUBLICATION pub_${n} FOR TABLE items`);
  await db.sql(`REVOKE CREATE ON DATABASE ${db.name} FROM PUBLIC`);
  const connection = server.config({ database: db.name, user: role, password: 'pw' });
  const table = { connection, config: { tables: ['items'], publication: `pub_${n}`, heartbeat: 'table' as const } };
  const error = await failureOf(activateTrigger(KEY, table));
  expect(error.code).toBe('HEARTBEAT_TABLE_UNAVAILABLE');
  expect(error.fixes.join(' ')).toContain('GRANT CREATE ON DATABASE');
  expect(await db.leftovers()).toEqual({ slots: 0, publications: 0, heartbeatTables: 0 });

  const auto = { connection, config: { tables: ['items'], publication: `pub_${n}`, heartbeatSeconds: 1 } };
  await activateTrigger(KEY, auto);
  const idle = await pollTrigger(KEY, auto);
  expect(idle.events).toEqual([]);
  await db.sql("INSERT INTO items VALUES (2, 'b')");
  expect((await pollTrigger(KEY, { ...auto, state: idle.state })).events).toHaveLength(1);
  await deactivateTrigger(KEY, auto);
  expect((await db.leftovers()).slots).toBe(0);
  if (server.versionNum < 140000) expect((await db.leftovers()).heartbeatTables).toBe(0);
});

test('least privilege where schema pgactions belongs to another role (a row-changes activation made it): activation and deactivation work (REVIEW4 R41)', async () => {
  const db = await database();
  const role = `hb_cdc_${n}`;
  await db.sql(`CREATE ROLE ${role} LOGIN REPLICATION PASSWORD 'pw'; GRANT SELECT ON items TO ${role}; CREATE PUBLICATION pub_${n} FOR TABLE items`);
  await db.sql(`REVOKE CREATE ON DATABASE ${db.name} FROM PUBLIC`);
  const request = { connection: server.config({ database: db.name, user: role, password: 'pw' }), config: { tables: ['items'], publication: `pub_${n}` } };
  await activateTrigger(KEY, request); // before the schema exists
  await db.sql('CREATE SCHEMA pgactions; CREATE TABLE pgactions.outbox_of_someone (id int)'); // the admin's, no USAGE for the role
  await deactivateTrigger(KEY, request);
  expect((await db.leftovers()).slots).toBe(0);
  await activateTrigger(KEY, request); // the schema exists now
  await db.sql("INSERT INTO items VALUES (3, 'c')");
  expect((await pollTrigger(KEY, request)).events).toHaveLength(1);
  await deactivateTrigger(KEY, request);
  expect((await db.leftovers()).slots).toBe(0);
  expect(await db.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'pgactions'")).toEqual([{ tablename: 'outbox_of_someone' }]);
});

test('a heartbeat install step that fails drops the slot and publication activation just created', async () => {
  const db = await database();
  const owner = `hb_owner_${n}`;
  const request = { connection: server.config({ database: db.name }), config: { tables: ['items'], heartbeat: 'table' as const } };
  await activateTrigger(KEY, request); // learn the table's name, then leave a foreign one in its place
  const heartbeat = (await db.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'pgactions'"))[0]!.tablename as string;
  await deactivateTrigger(KEY, request);
  await db.sql(`CREATE ROLE ${owner}; CREATE SCHEMA pgactions; CREATE TABLE pgactions.${heartbeat} (id int PRIMARY KEY DEFAULT 1, beat timestamptz NOT NULL DEFAULT now());
                ALTER TABLE pgactions.${heartbeat} OWNER TO ${owner}; GRANT ALL ON SCHEMA pgactions TO ${owner}`);
  const role = `hb_admin_${n}`;
  await db.sql(`CREATE ROLE ${role} LOGIN REPLICATION PASSWORD 'pw'; GRANT CREATE ON DATABASE ${db.name} TO ${role}; ALTER TABLE items OWNER TO ${role}; GRANT USAGE, CREATE ON SCHEMA pgactions TO ${role}`);
  const error = await failureOf(activateTrigger(KEY, { ...request, connection: server.config({ database: db.name, user: role, password: 'pw' }) }));
  expect(error.code).toBe('PERMISSION_DENIED'); // COMMENT ON a table the role does not own
  expect((await db.leftovers()).slots).toBe(0);
  expect((await db.leftovers()).publications).toBe(0);
});

test('a beat that fails (the heartbeat table refuses its UPDATE) does not fail the poll', async () => {
  const db = await database();
  const request = { connection: server.config({ database: db.name }), config: { tables: ['items'], heartbeat: 'table' as const, heartbeatSeconds: 1 } };
  await activateTrigger(KEY, request);
  const heartbeat = (await db.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'pgactions'"))[0]!.tablename as string;
  await db.sql(`CREATE FUNCTION pgactions.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no beats'; END $$;
                CREATE TRIGGER refuse BEFORE UPDATE ON pgactions.${heartbeat} FOR EACH ROW EXECUTE PROCEDURE pgactions.refuse()`);
  await expect(db.sql(`UPDATE pgactions.${heartbeat} SET beat = now()`)).rejects.toThrow('no beats');
  expect((await pollTrigger(KEY, request)).events).toEqual([]);
  await db.sql('DROP FUNCTION pgactions.refuse() CASCADE');
  await deactivateTrigger(KEY, request);
});
