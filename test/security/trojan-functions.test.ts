/**
 * pg-actions' own SQL runs with the flow's role, often an admin. PostgreSQL resolves an unqualified
 * function along the search_path and prefers an exact signature anywhere on it over a built-in
 * reached through a polymorphic parameter (unnest(anyarray), array_position(anycompatiblearray, …))
 * or through an unknown-typed (untyped) argument, which it reads as text first
 * (pg_advisory_xact_lock($1, 0) → (text, integer)). So a look-alike in public, made by any role
 * allowed to CREATE there (everyone before PostgreSQL 15), ran with the flow's privileges (review
 * REVIEW6 R112; trojan-operators.test.ts has the operator look-alikes of R47). Every function and
 * operator in pg-actions' own SQL is now schema-qualified (own-sql-qualified.test.ts checks the
 * texts): no trojan runs.
 */
import { closeAll } from '../../connection/index.js';
import pg from 'pg';
import { runAction } from '../../actions/index.js';
import { activateTrigger, deactivateTrigger, diagnoseReplication, pollTrigger, subscribeTrigger, type TriggerEvent } from '../../triggers/index.js';
import { startReplicationServer, type ReplicationServer } from '../harness/replication-server.js';

const ROLE = 'trojan_maker';
let server: ReplicationServer;

/** Each look-alike fails the statement that calls it, naming itself and the role it ran as. */
const TROJANS: { signature: string; returns: string }[] = [
  { signature: 'unnest(oid[])', returns: 'SETOF oid' }, // type resolution of Query Rows, Insert Row, CDC (an enum or domain column)
  { signature: 'unnest(text[])', returns: 'SETOF text' }, // new-row's horizon, schema-changes' install
  { signature: 'array_position(smallint[], smallint)', returns: 'integer' }, // row-changes' key columns, describeTable
  { signature: 'pg_advisory_xact_lock(text, integer)', returns: 'void' }, // row-changes / schema-changes install and remove
  { signature: 'pg_try_advisory_lock(text, text)', returns: 'boolean' }, // row-changes' subscription lease
  { signature: 'pg_create_logical_replication_slot(text, text)', returns: 'record' }, // table-changes-cdc activate
  { signature: 'pg_replication_slot_advance(text, pg_lsn)', returns: 'record' }, // table-changes-cdc poll
  { signature: 'pg_drop_replication_slot(text)', returns: 'void' }, // table-changes-cdc deactivate
  { signature: 'pg_logical_emit_message(boolean, text, text)', returns: 'pg_lsn' }, // table-changes-cdc heartbeat
  { signature: 'has_database_privilege(name, text)', returns: 'boolean' }, // diagnoseReplication
  { signature: 'make_interval(mins text)', returns: 'interval' }, // row-changes / schema-changes outbox read
];

beforeAll(async () => {
  server = await startReplicationServer();
  await server.sql('CREATE DATABASE trojans');
  const sql = (text: string) => server.sql(text, [], 'trojans');
  await sql(`CREATE ROLE ${ROLE} LOGIN PASSWORD 'trojan-pass'`);
  await sql(`GRANT CREATE ON SCHEMA public TO ${ROLE}`); // PostgreSQL 15+ no longer grants it to everyone by default
  await sql("CREATE TYPE mood AS ENUM ('sad', 'happy'); CREATE TABLE items (id int PRIMARY KEY, mood mood, moods mood[])");
  await sql("INSERT INTO items VALUES (1, 'happy', '{sad}'); CREATE TABLE audit (id int PRIMARY KEY, mood mood)");
  const attacker = new pg.Client({ ...server.config({ database: 'trojans' }), user: ROLE, password: 'trojan-pass', ssl: false } as pg.ClientConfig);
  await attacker.connect();
  try {
    for (const { signature, returns } of TROJANS) {
      await attacker.query(`CREATE FUNCTION public.${signature} RETURNS ${returns} LANGUAGE plpgsql AS $f$
        BEGIN RAISE EXCEPTION 'trojan ${signature} ran as %', current_user; END $f$`);
    }
    // The operator pg_catalog lacks for name ~ name: an untyped pattern compared with a name column.
    await attacker.query(`CREATE FUNCTION public.trojan_name_regex(name, name) RETURNS boolean LANGUAGE plpgsql AS $f$
      BEGIN RAISE EXCEPTION 'trojan ~(name, name) ran as %', current_user; END $f$`);
    await attacker.query('CREATE OPERATOR public.~ (LEFTARG = name, RIGHTARG = name, FUNCTION = public.trojan_name_regex)');
  } finally {
    await attacker.end();
  }
}, 60_000);
afterAll(async () => {
  await closeAll();
  await server?.stop();
});

test('the traps work: an unqualified call with the arguments pg-actions passed picks the look-alike', async () => {
  const client = new pg.Client({ ...server.config({ database: 'trojans' }), ssl: false } as pg.ClientConfig);
  await client.connect();
  try {
    await expect(client.query('SELECT unnest($1::oid[])', [[16]])).rejects.toThrow(/trojan unnest\(oid\[\]\) ran as/);
    await expect(client.query('SELECT pg_advisory_xact_lock($1, 0)', [1])).rejects.toThrow(/trojan pg_advisory_xact_lock\(text, integer\) ran as/);
    await expect(client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", ['x'])).rejects.toThrow(/trojan pg_create_logical_replication_slot/);
    await expect(client.query('SELECT $2::name ~ $1', ['x', 'y'])).rejects.toThrow(/trojan ~\(name, name\)/);
  } finally {
    await client.end();
  }
});

test('no look-alike function in public runs: Query Rows and Insert Row of an enum, diagnoseReplication, new-row, row-changes (subscribed too), schema-changes and table-changes-cdc activate, poll, deactivate (review R112)', async () => {
  const connection = server.config({ database: 'trojans' });
  const sql = (text: string) => server.sql(text, [], 'trojans');
  // Each step on its own, so that every trojan that runs is named (not only the first).
  const ran: string[] = [];
  const step = async (name: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      if (!/trojan/i.test((error as Error).message)) throw error;
      ran.push(`${name}: ${(error as Error).message}`);
    }
  };
  await step('Query Rows', async () => {
    expect(await runAction('query-rows', { connection, input: { query: 'SELECT mood, moods FROM items' } })).toMatchObject({ rows: [{ mood: 'happy', moods: ['sad'] }] });
  });
  await step('Insert Row', async () => void (await runAction('insert-row', { connection, input: { table: 'items', columns: { id: 2, mood: 'sad', moods: [] } } })));
  await step('diagnoseReplication', async () => void (await diagnoseReplication(connection, { tables: ['items'] })));
  await step('new-row', async () => {
    expect((await pollTrigger('new-row', { connection, config: { table: 'items', column: 'id', from: 'beginning' } })).events.length).toBeGreaterThan(0);
  });

  for (const key of ['row-changes', 'schema-changes', 'table-changes-cdc'] as const) {
    const config = key === 'schema-changes' ? {} : { tables: ['audit'] };
    await step(key, async () => {
      await activateTrigger(key, { connection, config });
      const first = await pollTrigger(key, { connection, config });
      await sql(`INSERT INTO audit VALUES (${key.length}, 'happy'); CREATE TABLE t_${key.length} (id int)`);
      const second = await pollTrigger(key, { connection, config, state: first.state });
      expect(second.events.length).toBeGreaterThan(0);
      const third = await pollTrigger(key, { connection, config, state: second.state }); // CDC: advances the slot
      if (key === 'row-changes') {
        const events: TriggerEvent[] = [];
        const subscription = await subscribeTrigger(key, { connection, config, state: third.state }, async (batch) => void events.push(...batch));
        await sql('DELETE FROM audit');
        for (let i = 0; i < 400 && events.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
        await subscription.close();
        expect(events.length).toBeGreaterThan(0);
      }
    });
    await step(`${key} deactivate`, async () => void (await deactivateTrigger(key, { connection, config })));
  }
  expect(ran).toEqual([]);
  expect(await sql('SELECT count(*)::int AS n FROM pg_replication_slots')).toEqual([{ n: 0 }]);
}, 120_000);
