/**
 * diagnoseReplication and `pg-actions check-replication`: every failing condition is produced for
 * real on a server (wal_level=replica, a role without REPLICATION, a table without a primary key,
 * slots used up, no WAL sender, a foreign slot, a publication that misses a table), and the fix
 * it prints, run as given, makes the check pass.
 */
import { closeAll } from '../../connection/index.js';
import { diagnoseReplication, type ReplicationDiagnosis } from '../../triggers/index.js';
import { runCli } from '../cli/cli.js';
import { startReplicationServer, type ReplicationServer } from '../harness/replication-server.js';

let logical: ReplicationServer;
let replica: ReplicationServer;

beforeAll(async () => {
  [logical, replica] = await Promise.all([
    startReplicationServer({ max_replication_slots: '2' }),
    startReplicationServer({}, false),
  ]);
  await replica.sql('ALTER SYSTEM SET max_wal_senders = 0');
  await replica.server.restart();
  await logical.sql(`CREATE TABLE orders (id int PRIMARY KEY, note text);
    CREATE TABLE events_log (at timestamptz, what text);
    CREATE TABLE locked (id int PRIMARY KEY); ALTER TABLE locked REPLICA IDENTITY NOTHING;
    CREATE TABLE full_copy (at timestamptz, what text); ALTER TABLE full_copy REPLICA IDENTITY FULL;
    CREATE ROLE plain LOGIN PASSWORD 'plain-pw';
    CREATE ROLE reader LOGIN REPLICATION PASSWORD 'reader-pw'; GRANT SELECT ON orders TO reader;`);
}, 60_000);
afterAll(async () => {
  await closeAll();
  await Promise.all([logical?.stop(), replica?.stop()]);
});

const codes = (diagnosis: ReplicationDiagnosis, level = 'failed') => diagnosis.checks.filter((c) => c.level === level).map((c) => c.code).sort();
const check = (diagnosis: ReplicationDiagnosis, code: string) => diagnosis.checks.find((c) => c.code === code)!;
/** The SQL of a fix: the text up to its first semicolon. */
const fixSql = (fix: string) => fix.replace(/^[^:]*: (?=[A-Z]{3})/, '').slice(0, fix.replace(/^[^:]*: (?=[A-Z]{3})/, '').indexOf(';') + 1);

test('an owner with a primary-key table on a logical server is ready; unbounded WAL retention is a warning', async () => {
  const diagnosis = await diagnoseReplication(logical.config(), { tables: ['orders', 'full_copy'] });
  expect(codes(diagnosis)).toEqual([]);
  expect(diagnosis.ready).toBe(true);
  expect(codes(diagnosis, 'warning')).toEqual(['WAL_RETENTION_UNBOUNDED']);
  expect(diagnosis.setup.join('\n')).toContain('CREATE ROLE cdc_reader LOGIN REPLICATION');
  expect(diagnosis.setup.join('\n')).toContain('CREATE PUBLICATION "pg_actions_cdc" FOR TABLE "public"."orders", "public"."full_copy";');
});

test('wal_level=replica and no WAL sender: failed, with the setting that fixes it; after the fix and a restart it passes', async () => {
  await replica.sql('CREATE TABLE t (id int PRIMARY KEY)');
  const diagnosis = await diagnoseReplication(replica.config(), { tables: ['t'] });
  expect(diagnosis.ready).toBe(false);
  expect(codes(diagnosis)).toEqual(['NO_FREE_WAL_SENDER', 'WAL_LEVEL_NOT_LOGICAL']);
  const walLevel = check(diagnosis, 'WAL_LEVEL_NOT_LOGICAL');
  expect(walLevel.message).toContain('"replica"');
  expect(walLevel.fixes.join('\n')).toMatch(/rds\.logical_replication = 1[\s\S]*cloudsql\.logical_decoding = on/);
  await replica.sql(fixSql(walLevel.fixes[0]!));
  await replica.sql(fixSql(check(diagnosis, 'NO_FREE_WAL_SENDER').fixes[0]!));
  await closeAll();
  await replica.server.restart();
  const fixed = await diagnoseReplication(replica.config(), { tables: ['t'] });
  expect(codes(fixed)).toEqual([]);
}, 60_000);

test('a role without REPLICATION, without SELECT and not owning the table: each failure with its GRANT', async () => {
  const diagnosis = await diagnoseReplication(logical.config({ user: 'plain', password: 'plain-pw' }), { tables: ['orders'] });
  expect(codes(diagnosis)).toEqual(['CANNOT_CREATE_PUBLICATION', 'NO_REPLICATION_PRIVILEGE', 'NO_SELECT_PRIVILEGE']);
  for (const code of ['NO_REPLICATION_PRIVILEGE', 'NO_SELECT_PRIVILEGE']) await logical.sql(fixSql(check(diagnosis, code).fixes[0]!));
  expect(check(diagnosis, 'NO_REPLICATION_PRIVILEGE').fixes[0]).toBe('ALTER ROLE "plain" WITH REPLICATION;');
  expect(check(diagnosis, 'CANNOT_CREATE_PUBLICATION').fixes[0]).toContain('CREATE PUBLICATION "pg_actions_cdc" FOR TABLE "public"."orders";');
  const after = await diagnoseReplication(logical.config({ user: 'plain', password: 'plain-pw' }), { tables: ['orders'] });
  expect(codes(after)).toEqual(['CANNOT_CREATE_PUBLICATION']);
});

test('tables without a primary key or with identity NOTHING would make UPDATE/DELETE fail: failed, fixed by the printed SQL', async () => {
  const diagnosis = await diagnoseReplication(logical.config(), { tables: ['events_log', 'public.locked', 'missing_table'] });
  expect(codes(diagnosis)).toEqual(['TABLE_NOT_FOUND', 'TABLE_WITHOUT_REPLICA_IDENTITY', 'TABLE_WITHOUT_REPLICA_IDENTITY']);
  const [noKey, nothing] = diagnosis.checks.filter((c) => c.code === 'TABLE_WITHOUT_REPLICA_IDENTITY');
  expect(noKey!.message).toContain('"public"."events_log" cannot be published: it has no primary key');
  expect(nothing!.message).toContain('its replica identity is NOTHING');
  // Proof the condition is real: published as is, an UPDATE fails on the server.
  await logical.sql('CREATE PUBLICATION proof FOR TABLE events_log; INSERT INTO events_log VALUES (now(), \'x\')');
  await expect(logical.sql("UPDATE events_log SET what = 'y'")).rejects.toThrow(/replica identity/);
  await logical.sql(noKey!.fixes[1]!.replace(/^[^:]*: /, ''));
  await logical.sql(nothing!.fixes[1]!.replace(/^[^:]*: /, ''));
  await logical.sql("UPDATE events_log SET what = 'y'; DROP PUBLICATION proof");
  expect(codes(await diagnoseReplication(logical.config(), { tables: ['events_log', 'locked'] }))).toEqual([]);
});

test('slots used up, a slot of another kind, a publication missing a table: failed with the fix', async () => {
  await logical.sql("SELECT pg_create_physical_replication_slot('physical_one'); SELECT pg_create_logical_replication_slot('other_plugin', 'test_decoding')");
  await logical.sql('CREATE PUBLICATION partial FOR TABLE full_copy');
  const diagnosis = await diagnoseReplication(logical.config(), { tables: ['orders'], publication: 'partial' });
  expect(codes(diagnosis)).toEqual(['NO_FREE_REPLICATION_SLOT', 'PUBLICATION_MISSING_TABLES']);
  expect(check(diagnosis, 'PUBLICATION_MISSING_TABLES').fixes[0]).toContain('ALTER PUBLICATION "partial" ADD TABLE "public"."orders";');
  await logical.sql(fixSql(check(diagnosis, 'PUBLICATION_MISSING_TABLES').fixes[0]!));
  const withSlot = await diagnoseReplication(logical.config(), { tables: ['orders'], publication: 'partial', slot: 'other_plugin' });
  expect(codes(withSlot)).toEqual(['SLOT_NOT_USABLE']);
  expect(check(withSlot, 'SLOT_NOT_USABLE').message).toContain('plugin test_decoding');
  expect(codes(await diagnoseReplication(logical.config(), { tables: ['orders'], publication: 'absent' }))).toEqual(['NO_FREE_REPLICATION_SLOT', 'PUBLICATION_NOT_FOUND']);
  await logical.sql("SELECT pg_drop_replication_slot('physical_one'); SELECT pg_drop_replication_slot('other_plugin')");
});

test('pg-actions check-replication: exit 1 with the failures and fixes, exit 0 and JSON when ready', async () => {
  const url = (server: ReplicationServer) => `postgres://${server.server.user}@127.0.0.1:${server.server.port}/postgres`;
  const ready = await runCli(['check-replication', '--connection', url(logical), '--tables', 'orders', '--json'], { env: { PGPASSWORD: logical.server.password } });
  expect(ready.code).toBe(0);
  expect(JSON.parse(ready.stdout)).toMatchObject({ ready: true, user: 'postgres', checks: [{ code: 'WAL_RETENTION_UNBOUNDED', level: 'warning' }] });
  const broken = await runCli(['check-replication', '--connection', url(logical), '--tables', 'orders,events_nope'], { env: { PGPASSWORD: logical.server.password } });
  expect(broken.code).toBe(1);
  expect(broken.stdout).toContain('Not ready for change data capture: 1 problem');
  expect(broken.stdout).toContain('FAILED  TABLE_NOT_FOUND');
  expect(broken.stdout).toContain('Least-privilege set-up:');
  expect(broken.stdout + broken.stderr).not.toContain(logical.server.password);
  const usage = await runCli(['check-replication', '--connection', url(logical)]);
  expect(usage.code).toBe(2);
});

test('a pg-actions slot nobody reads (a crashed activation, a trigger removed without deactivating) is found, with the DROP that removes it', async () => {
  await logical.sql("SELECT pg_create_logical_replication_slot('pg_actions_0123456789abcdef', 'pgoutput')");
  try {
    const diagnosis = await diagnoseReplication(logical.config(), { tables: ['orders'] });
    expect(codes(diagnosis, 'warning')).toEqual(['LEFTOVER_SLOT', 'WAL_RETENTION_UNBOUNDED']);
    // the slot of the trigger being checked is not a leftover
    expect(codes(await diagnoseReplication(logical.config(), { tables: ['orders'], slot: 'pg_actions_0123456789abcdef' }), 'warning')).toEqual(['WAL_RETENTION_UNBOUNDED']);
    const fix = check(diagnosis, 'LEFTOVER_SLOT').fixes[0]!;
    expect(fix).toContain("SELECT pg_catalog.pg_drop_replication_slot('pg_actions_0123456789abcdef');");
    await logical.sql(fix.slice(fix.indexOf('SELECT')));
    expect(codes(await diagnoseReplication(logical.config(), { tables: ['orders'] }), 'warning')).toEqual(['WAL_RETENTION_UNBOUNDED']);
  } finally {
    await logical.sql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'pg_actions_0123456789abcdef'");
  }
});

test("the CDC heartbeat table's needs (REVIEW3 R17): heartbeat 'table' fails where a FOR ALL TABLES publication would ship it or the role cannot create it, each with its fix; 'auto' on 14+ needs no table", async () => {
  await logical.sql('CREATE DATABASE heartbeat_needs');
  const sql = (text: string) => logical.sql(text, [], 'heartbeat_needs');
  try {
    await sql(`CREATE TABLE items (id int PRIMARY KEY); CREATE ROLE hb_reader LOGIN REPLICATION PASSWORD 'hb-pw'; GRANT SELECT ON items TO hb_reader;
               CREATE PUBLICATION items_pub FOR TABLE items`);
    const version = Number((await sql('SHOW server_version_num'))[0]!.server_version_num);
    const owner = logical.config({ database: 'heartbeat_needs' });
    const reader = logical.config({ database: 'heartbeat_needs', user: 'hb_reader', password: 'hb-pw' });
    const options = { tables: ['items'], publication: 'items_pub', slot: 'pg_actions_00000000000000ab' };
    const heartbeatCheck = (diagnosis: ReplicationDiagnosis) => diagnosis.checks.filter((c) => c.code === 'HEARTBEAT_TABLE_UNAVAILABLE');

    // The role cannot create the table (no CREATE on the database): 'table' fails, with the GRANT that fixes it.
    const noCreate = await diagnoseReplication(reader, { ...options, heartbeat: 'table' });
    expect(noCreate.ready).toBe(false);
    expect(codes(noCreate)).toEqual(['HEARTBEAT_TABLE_UNAVAILABLE']);
    expect(check(noCreate, 'HEARTBEAT_TABLE_UNAVAILABLE').message).toContain('pgactions.pg_actions_00000000000000ab_heartbeat');
    const grant = check(noCreate, 'HEARTBEAT_TABLE_UNAVAILABLE').fixes[0]!;
    expect(grant).toContain('GRANT CREATE ON DATABASE "heartbeat_needs" TO "hb_reader";');
    // 'auto': on 14+ a logical message, no table; before 14 the trigger goes without the table, a warning.
    const auto = await diagnoseReplication(reader, options);
    expect(codes(auto)).toEqual([]);
    expect(heartbeatCheck(auto).map((c) => c.level)).toEqual(version < 140000 ? ['warning'] : []);
    await sql(fixSql(grant));
    expect(heartbeatCheck(await diagnoseReplication(reader, { ...options, heartbeat: 'table' }))).toEqual([]);

    // A publication FOR ALL TABLES would ship the table to its subscribers: 'table' fails naming it, for the owner too.
    await sql('CREATE PUBLICATION everything FOR ALL TABLES');
    const published = await diagnoseReplication(owner, { ...options, heartbeat: 'table' });
    expect(codes(published)).toEqual(['HEARTBEAT_TABLE_UNAVAILABLE']);
    expect(check(published, 'HEARTBEAT_TABLE_UNAVAILABLE').message).toContain('publication "everything" publishes every table');
    expect(check(published, 'HEARTBEAT_TABLE_UNAVAILABLE').fixes.join('\n')).toContain('DROP PUBLICATION "everything";');
    expect(heartbeatCheck(await diagnoseReplication(owner, { ...options, heartbeat: 'message' }))).toHaveLength(version < 140000 ? 1 : 0);

    const url = `postgres://${logical.server.user}@127.0.0.1:${logical.server.port}/heartbeat_needs`;
    const cli = await runCli(['check-replication', '--connection', url, '--tables', 'items', '--publication', 'items_pub', '--heartbeat', 'table'], { env: { PGPASSWORD: logical.server.password } });
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain('FAILED  HEARTBEAT_TABLE_UNAVAILABLE');
    expect((await runCli(['check-replication', '--connection', url, '--tables', 'items', '--heartbeat', 'sometimes'])).code).toBe(2);
  } finally {
    await closeAll();
    // (DROP DATABASE … WITH (FORCE) needs PostgreSQL 13; the matrix runs this file on 12 too.)
    await logical.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'heartbeat_needs'");
    await logical.sql('DROP DATABASE IF EXISTS heartbeat_needs');
    await logical.sql('DROP ROLE IF EXISTS hb_reader');
  }
}, 60_000);
