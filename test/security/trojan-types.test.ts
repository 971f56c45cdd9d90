/**
 * pg_catalog is searched first only while the search_path does not list it. A role or database
 * default `search_path = public, pg_catalog` (an admin's choice; pg-actions refuses `options=` in a
 * connection string, so only such a default sets it) makes an unqualified type name (`::text`,
 * `::oid`, `"char"`, a column declared `jsonb`) find a look-alike DOMAIN in public, made by any role
 * allowed to CREATE there; a cast to a domain, or a row written into a column of it, runs its CHECK
 * with the role of whoever runs the statement: the flow's (review REVIEW7 R134). Every type name in
 * pg-actions' own SQL is schema-qualified now (own-sql-qualified.test.ts lints the texts): no
 * look-alike's CHECK runs. Here each CHECK records current_user instead of failing (in a read-only
 * transaction, where it cannot, it fails naming itself), so every step that reached one is named.
 */
import pg from 'pg';
import { closeAll, describeTable, listColumns, listSchemas, listTables } from '../../connection/index.js';
import { runAction } from '../../actions/index.js';
import { activateTrigger, deactivateTrigger, diagnoseReplication, handoverState, listActivations, pollTrigger, removeActivation, sampleEvents, subscribeTrigger, type TriggerEvent } from '../../triggers/index.js';
import { makeChange } from '../../playground/sample-change.js';
import { startReplicationServer, type ReplicationServer } from '../harness/replication-server.js';

const DATABASE = 'trojan_types';
const ROLE = 'type_trojan_maker';
/** The look-alikes: built-in types pg-actions' own SQL named without their schema before R134. */
const LOOK_ALIKES = ['text', 'oid', 'float8', 'int8', '"char"', 'jsonb', 'timestamptz', 'name', 'regclass'];
let server: ReplicationServer;
const sql = (text: string, values?: unknown[]) => server.sql(text, values, DATABASE);
const ran = async () => (await sql('SELECT who::pg_catalog.text AS who, what FROM public.trojan_log ORDER BY at')).map((r) => `${r.what} as ${r.who}`);

beforeAll(async () => {
  server = await startReplicationServer();
  await server.sql(`CREATE DATABASE ${DATABASE}`);
  await server.sql(`CREATE ROLE ${ROLE} LOGIN PASSWORD 'type-trojan-pass'`);
  await sql(`GRANT CREATE ON SCHEMA public TO ${ROLE}`); // PostgreSQL 15+ no longer grants it to everyone by default
  // The user's tables, made before the look-alikes exist (their columns are pg_catalog's types).
  await sql('CREATE TABLE items (id int PRIMARY KEY, name text, price float8, updated_at timestamptz DEFAULT now())');
  await sql("INSERT INTO items VALUES (1, 'a', 1.5), (2, 'b', 2.5); CREATE TABLE audit (id int PRIMARY KEY, note text)");
  const attacker = new pg.Client({ ...server.config({ database: DATABASE }), user: ROLE, password: 'type-trojan-pass', ssl: false } as pg.ClientConfig);
  await attacker.connect();
  try {
    await attacker.query(`CREATE TABLE public.trojan_log (at pg_catalog.timestamptz DEFAULT pg_catalog.clock_timestamp(), who pg_catalog.name, what pg_catalog.text);
      GRANT INSERT ON public.trojan_log TO PUBLIC;
      CREATE FUNCTION public.trojan_ran(what pg_catalog.text) RETURNS pg_catalog.bool LANGUAGE plpgsql AS $f$
        BEGIN INSERT INTO public.trojan_log (who, what) VALUES (current_user, what); RETURN true;
        EXCEPTION WHEN read_only_sql_transaction THEN RAISE EXCEPTION 'trojan % ran as % (in a read-only transaction)', what, current_user; END $f$`);
    for (const type of LOOK_ALIKES) {
      await attacker.query(`CREATE DOMAIN public.${type} AS pg_catalog.${type} CHECK (public.trojan_ran('CHECK of public.${type.replaceAll('"', '')}'))`);
    }
  } finally {
    await attacker.end();
  }
  await sql(`ALTER DATABASE ${DATABASE} SET search_path = public, pg_catalog`); // an admin's default: sessions from now on
}, 60_000);
afterAll(async () => {
  await closeAll();
  await server?.stop();
});

test("the traps work: under the database's search_path an unqualified ::text, ::oid or \"char\" reaches the look-alike and its CHECK runs as the caller", async () => {
  const client = new pg.Client({ ...server.config({ database: DATABASE }), ssl: false } as pg.ClientConfig);
  await client.connect();
  try {
    expect((await client.query('SHOW search_path')).rows).toEqual([{ search_path: 'public, pg_catalog' }]);
    await client.query(`SELECT 'x'::text, $1::oid, 'r'::"char"`, [1]);
    await client.query('SELECT pg_catalog.count(*) FROM items'); // qualified, keyword types: nothing
  } finally {
    await client.end();
  }
  expect((await ran()).sort()).toEqual(['char', 'oid', 'text'].map((type) => `CHECK of public.${type} as ${server.server.user}`));
  await sql('TRUNCATE public.trojan_log');
});

test('no look-alike type runs in pg-actions: Query Rows (templated too), Insert Row, schema-overview, the pickers, diagnosis, make a change, new-row, table-sync (handing over), row-changes (subscribed), schema-changes, table-changes-cdc with its heartbeat table (review R134)', async () => {
  const connection = server.config({ database: DATABASE });
  const steps: string[] = [];
  /** Runs one step; the look-alikes' CHECKs it set off (or how it failed), named by the step: the next steps still run. */
  const step = async (name: string, work: () => Promise<unknown>) => {
    try {
      await work();
    } catch (error) {
      steps.push(`${name} failed: ${(error as Error).message}`); // a trojan's, or a result a look-alike type garbled
    }
    for (const what of await ran()) steps.push(`${name}: ${what}`);
    await sql('TRUNCATE public.trojan_log');
  };

  await step('query-rows', async () => {
    expect(await runAction('query-rows', { connection, input: { query: 'SELECT id, name, price FROM items ORDER BY id' } })).toMatchObject({ rows: [{ id: 1, name: 'a', price: 1.5 }, { id: 2 }] });
  });
  await step('query-rows with templates (the casts pg-actions adds to a statement its author qualified)', async () => {
    const query = 'SELECT name FROM items WHERE id OPERATOR(pg_catalog.=) {{trigger.id}} AND {{trigger.doc}} IS NOT NULL AND {{trigger.at}} IS NOT NULL AND {{trigger.ids}} IS NOT NULL';
    const context = { trigger: { id: 1, doc: { vip: true }, at: new Date(), ids: [1, 2] } };
    expect(await runAction('query-rows', { connection, input: { query }, context })).toMatchObject({ rows: [{ name: 'a' }] });
  });
  await step('insert-row', () => runAction('insert-row', { connection, input: { table: 'items', columns: { id: 3, name: 'c', price: 3.5 } } }));
  await step('schema-overview', async () => {
    expect(JSON.stringify(await runAction('schema-overview', { connection, input: {} }))).toContain('items');
    await runAction('schema-overview', { connection, input: { exact: true, includeViews: true } });
  });
  await step('pickers', async () => {
    expect((await listSchemas(connection)).map((s) => s.name)).toContain('public');
    expect((await listTables(connection, { schema: 'public' })).map((t) => t.name)).toContain('items');
    await listColumns(connection, 'items');
    await describeTable(connection, 'public.items');
  });
  await step('diagnoseReplication', () => diagnoseReplication(connection, { tables: ['items', 'audit'] }));
  await step('make a change', () => makeChange(connection, 'items', 'update'));
  await step('new-row', async () => {
    const config = { table: 'items', column: 'id', from: 'beginning' };
    const first = await pollTrigger('new-row', { connection, config });
    expect(first.events.length).toBeGreaterThan(0);
    await pollTrigger('new-row', { connection, config, state: first.state });
    await sampleEvents('new-row', { connection, config });
  });
  await step('new-or-updated-row', () => pollTrigger('new-or-updated-row', { connection, config: { table: 'items', column: 'updated_at', from: 'beginning' } }));
  await step('table-sync', async () => {
    const first = await pollTrigger('table-sync', { connection, config: { tables: ['items'] } });
    expect(first.events.length).toBeGreaterThan(0);
    await pollTrigger('table-sync', { connection, config: { tables: ['items'] }, state: first.state });
  });

  await step('row-changes', async () => {
    const config = { tables: ['audit'] };
    await activateTrigger('row-changes', { connection, config });
    const first = await pollTrigger('row-changes', { connection, config });
    await sql("INSERT INTO audit VALUES (1, 'captured')"); // the capture writes into the outbox: its columns' types
    const second = await pollTrigger('row-changes', { connection, config, state: first.state });
    expect(second.events.length).toBeGreaterThan(0);
    const events: TriggerEvent[] = [];
    const subscription = await subscribeTrigger('row-changes', { connection, config, state: second.state }, async (batch) => void events.push(...batch));
    try {
      await sql('DELETE FROM audit');
      for (let i = 0; i < 400 && events.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      await subscription.close();
    }
    expect(events.length).toBeGreaterThan(0);
    expect((await listActivations(connection)).length).toBeGreaterThan(0);
    await deactivateTrigger('row-changes', { connection, config });
  });
  await step('schema-changes', async () => {
    await activateTrigger('schema-changes', { connection, config: {} });
    const first = await pollTrigger('schema-changes', { connection, config: {} });
    await sql('CREATE TABLE later (id int)'); // the event trigger writes into the outbox
    expect((await pollTrigger('schema-changes', { connection, config: {}, state: first.state })).events.length).toBeGreaterThan(0);
    await deactivateTrigger('schema-changes', { connection, config: {} });
  });
  await step('table-changes-cdc with table-sync handing over', async () => {
    const config = { tables: ['audit'], heartbeat: 'table', heartbeatSeconds: 1 } as const;
    await sql("INSERT INTO audit VALUES (1, 'before'), (2, 'before')");
    await activateTrigger('table-changes-cdc', { connection, config });
    const syncConfig = { tables: ['audit'], handover: {}, batchSize: 1 };
    let synced = await pollTrigger('table-sync', { connection, config: syncConfig });
    await sql("INSERT INTO audit VALUES (3, 'during')"); // inside the handover's window: its key is compared with the copy's
    for (let i = 0; i < 4; i++) synced = await pollTrigger('table-sync', { connection, config: syncConfig, state: synced.state });
    await sql("INSERT INTO audit VALUES (4, 'after')");
    const handed = await pollTrigger('table-changes-cdc', { connection, config, state: handoverState(synced.state!) });
    expect(handed.events.map((e) => (e as unknown as { key: unknown }).key)).toContainEqual({ id: 4 });
    await pollTrigger('table-changes-cdc', { connection, config, state: handed.state }); // nothing new: a heartbeat
    await deactivateTrigger('table-changes-cdc', { connection, config });
  });
  await step('activations', async () => {
    await activateTrigger('row-changes', { connection, config: { tables: ['items'] } });
    for (const activation of await listActivations(connection)) await removeActivation(connection, activation.fingerprint);
  });

  expect([...new Set(steps)]).toEqual([]);
  expect(await sql('SELECT pg_catalog.count(*)::int AS n FROM pg_catalog.pg_replication_slots')).toEqual([{ n: 0 }]);
}, 180_000);
