/**
 * Every SQL text pg-actions writes itself (catalog lookups, trigger set-up and polls, slot
 * management, the statements it wraps around a step) names its functions, operators and types with
 * their schema: `pg_catalog.unnest(…)`, `a OPERATOR(pg_catalog.=) b`, `$1::pg_catalog.text`.
 * PostgreSQL resolves an unqualified name along the search_path and prefers a more exact signature
 * anywhere on it over a built-in reached by a cast, a polymorphic or an unknown-typed argument, so a
 * look-alike in public (any role with CREATE there) would run with the flow's role (review REVIEW6
 * R112, R47 before it). A type is found first in pg_catalog unless the search_path lists pg_catalog
 * after public (a role or database default): then `::text` is a look-alike domain public.text, whose
 * CHECK runs with the flow's role (REVIEW7 R134).
 *
 * The texts are what really crosses the wire (a recording proxy) during a tour of every action and
 * trigger; the user's own statement texts are left out. Each is read with PostgreSQL's own parser
 * (libpg-query) and walked: an unqualified function call, operator, type name (SQL keyword types
 * such as int or boolean are parsed as pg_catalog's), or a construct that looks up `=` by name (IN
 * (…), IS [NOT] DISTINCT FROM, NULLIF, CASE x WHEN, JOIN … USING, BETWEEN, LIKE) fails the test,
 * naming the text.
 */
import { closeAll } from '../../connection/index.js';
import { runAction } from '../../actions/index.js';
import { activateTrigger, deactivateTrigger, handoverState, pollTrigger, subscribeTrigger, type TriggerEvent } from '../../triggers/index.js';
import { diagnoseReplication, listActivations, removeActivation, sampleEvents } from '../../triggers/index.js';
import { makeChange, sendNotification } from '../../playground/sample-change.js';
import { testConnection, listSchemas, listTables, listColumns, describeTable } from '../../connection/index.js';
import { startReplicationServer, type ReplicationServer } from '../harness/replication-server.js';
import { startSqlRecorder, type SqlRecorder } from '../harness/sql-recorder.js';
import { unqualifiedIn } from './sql-lint.js';

let pg: ReplicationServer;
let recorder: SqlRecorder;

beforeAll(async () => {
  pg = await startReplicationServer();
  recorder = await startSqlRecorder({ host: pg.server.host, port: pg.server.port });
}, 60_000);
afterAll(async () => {
  await closeAll();
  await recorder?.close();
  await pg?.stop();
});

/** The user's own statements (the test's): they are the user's to write, not pg-actions'. */
const userTexts = new Set<string>();
const user = (text: string) => (userTexts.add(text), text);

interface Finding {
  what: string;
  text: string;
}

/** Texts left unqualified on purpose, by what they start with: none now (keyset.ts and key-order.ts were the last). */
const PENDING_ELSEWHERE: RegExp[] = [];

/** pg-actions' own texts recorded so far, with what is unqualified in each. */
function findings(): Finding[] {
  const out: Finding[] = [];
  for (const text of new Set(recorder.texts.filter((t) => !t.replication && !userTexts.has(t.text)).map((t) => t.text))) {
    if (PENDING_ELSEWHERE.some((pattern) => pattern.test(text))) continue;
    let found: string[];
    try {
      found = unqualifiedIn(text);
    } catch (error) {
      found = [`does not parse: ${(error as Error).message}`];
    }
    for (const what of new Set(found)) out.push({ what, text });
  }
  return out;
}

test('the lint sees what it must: unqualified calls, operators and = lookups; qualified ones pass', () => {
  expect(unqualifiedIn('SELECT unnest($1::pg_catalog.oid[])')).toEqual(['function unnest()']);
  expect(unqualifiedIn('SELECT 1 WHERE $1 = 2')).toEqual(['operator =']);
  expect(unqualifiedIn('SELECT 1 WHERE 1 IN (1, 2)')[0]).toMatch(/AEXPR_IN/);
  expect(unqualifiedIn('SELECT 1 WHERE 1 IN (SELECT 1)')[0]).toMatch(/ANY_SUBLINK/);
  expect(unqualifiedIn('SELECT a IS DISTINCT FROM b FROM t')[0]).toMatch(/DISTINCT/);
  expect(unqualifiedIn('SELECT CASE a WHEN 1 THEN 2 END FROM t')).toEqual(['CASE x WHEN (looks up =)']);
  expect(unqualifiedIn('SELECT 1 FROM a JOIN b USING (id)')).toEqual(['JOIN … USING (looks up =)']);
  expect(unqualifiedIn('SELECT pg_catalog.unnest($1::pg_catalog.oid[]) WHERE 1 OPERATOR(pg_catalog.=) ANY ($2::int[]) AND x OPERATOR(pg_catalog.=) ANY (SELECT 1)')).toEqual([]);
  expect(unqualifiedIn("SELECT substring('a' FROM 1), CURRENT_USER, coalesce(1, 2), greatest(1, 2), 1 IS NULL")).toEqual([]);
  expect(unqualifiedIn('SELECT 1 FROM t WHERE ROW(a, b) OPERATOR(pg_catalog.>) ROW(1, 2) AND (a, b) > (1, 2)')).toEqual(['operator >']);
  expect(unqualifiedIn("DO $$ BEGIN IF to_regclass('t') IS NULL THEN RETURN; END IF; UPDATE t SET a = pg_catalog.now(); END $$")).toEqual(['function to_regclass()']);
  expect(unqualifiedIn('CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT abs(1) $$')).toEqual(['CREATE FUNCTION without SET search_path = pg_catalog, pg_temp']);
  expect(unqualifiedIn('CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT abs(1) $$')).toEqual([]);
});

test('the lint sees unqualified type names (review R134): casts, columns, parameters, return types, DECLAREs; keyword types are pg_catalog\'s already', () => {
  expect(unqualifiedIn('SELECT $1::text')).toEqual(['type text']);
  expect(unqualifiedIn('SELECT CAST($1 AS oid), text \'a\'')).toEqual(['type oid', 'type text']);
  expect(unqualifiedIn('SELECT \'{r,p}\'::"char"[], $1::float8, $2::jsonb, $3::regclass, $4::name, $5::timestamptz')).toEqual(['type char', 'type float8', 'type jsonb', 'type regclass', 'type name', 'type timestamptz']);
  expect(unqualifiedIn('CREATE TABLE t (a text, b pg_catalog.text, c int, d bigserial)')).toEqual(['type text']);
  expect(unqualifiedIn('CREATE FUNCTION f(a text) RETURNS SETOF oid LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT a::text $$')).toEqual(['type text', 'type oid']);
  expect(unqualifiedIn('DO $$ DECLARE a text; b pg_catalog.text; BEGIN PERFORM b::jsonb; END $$')).toEqual(['type jsonb', 'type text']);
  expect(unqualifiedIn(`SELECT $1::int, $2::integer, $3::bigint, $4::smallint, $5::boolean, $6::real, $7::double precision, $8::numeric, $9::varchar, $10::char(1),
    $11::interval, $12::timestamp with time zone, $13::bit varying, $14::json, $15::pg_catalog.text, $16::pg_catalog."char", $17::pg_catalog.float8[]`)).toEqual([]);
});

test('every function, operator and type in the SQL pg-actions sends itself is schema-qualified: actions, pickers, diagnosis, table-sync (handing over), new-row, row-changes, schema-changes, table-changes-cdc polled and subscribed, its heartbeat table (review R112, R134)', async () => {
  await pg.sql('CREATE DATABASE lint');
  const sql = (text: string) => pg.sql(text, [], 'lint');
  await sql("CREATE TYPE mood AS ENUM ('sad', 'happy'); CREATE DOMAIN positive AS int CHECK (VALUE > 0)");
  await sql('CREATE TABLE items (id int PRIMARY KEY, name text, mood mood, moods mood[], n positive, updated_at timestamptz DEFAULT now())');
  await sql("INSERT INTO items VALUES (1, 'a', 'happy', '{sad,happy}', 1), (2, 'b', 'sad', '{}', 2)");
  await sql('CREATE TABLE audit (id int PRIMARY KEY, note text); CREATE TABLE changes (id int PRIMARY KEY, mood mood, moods mood[], n positive)');
  const connection = { ...pg.config({ database: 'lint' }), host: '127.0.0.1', port: recorder.port };

  // Actions and the connection module's pickers and diagnosis.
  await testConnection(connection);
  await runAction('query-rows', { connection, input: { query: user('SELECT * FROM items ORDER BY id') } });
  await runAction('insert-row', { connection, input: { table: 'items', columns: { id: 3, name: 'c', mood: 'happy', moods: ['sad'], n: 3 } } });
  await runAction('update-rows', { connection, input: { query: user("UPDATE items SET name = 'cc' WHERE id = 3 RETURNING *") } });
  await runAction('delete-rows', { connection, input: { query: user('DELETE FROM items WHERE id = 3 RETURNING *') } });
  await runAction('execute-query', { connection, input: { query: user('SELECT mood, moods, n FROM items') } });
  await runAction('schema-overview', { connection, input: { exact: true, includeViews: true } });
  await runAction('schema-overview', { connection, input: {} });
  await listSchemas(connection);
  await listTables(connection, { schema: 'public' });
  await listColumns(connection, 'items');
  await describeTable(connection, 'public.items');
  await diagnoseReplication(connection, { tables: ['changes'] });

  await runAction('schema-overview', { connection, input: { schema: 'nowhere' } }).catch(() => undefined);

  // The playground's "make a change" and "send a notification" buttons (REVIEW7 R127), and every
  // trigger's sample events (the Trigger panel's "load samples"; those needing an activation below).
  for (const op of ['insert', 'update', 'delete'] as const) await makeChange(connection, 'items', op);
  await sendNotification(connection, 'lint_channel');
  for (const [key, config] of [
    ['table-sync', { tables: ['items'] }],
    ['new-row', { table: 'items', column: 'id' }],
    ['new-or-updated-row', { table: 'items', column: 'updated_at' }],
    ['listen', { channel: 'lint_channel' }],
  ] as const) {
    await sampleEvents(key, { connection, config });
  }

  // Polled triggers.
  for (const key of ['table-sync', 'new-row', 'new-or-updated-row'] as const) {
    const config = key === 'new-or-updated-row' ? { table: 'items', column: 'updated_at', from: 'beginning' } : key === 'new-row' ? { table: 'items', column: 'id', from: 'beginning' } : { tables: ['items'] };
    const first = await pollTrigger(key, { connection, config });
    await pollTrigger(key, { connection, config, state: first.state });
  }
  for (const key of ['row-changes', 'schema-changes', 'table-changes-cdc'] as const) {
    const config = key === 'schema-changes' ? {} : { tables: ['changes'] };
    await activateTrigger(key, { connection, config });
    await sampleEvents(key, { connection, config });
    const first = await pollTrigger(key, { connection, config });
    await sql(`INSERT INTO changes VALUES (${key.length}, 'happy', '{sad}', 1); CREATE TABLE later (id int); ALTER TABLE later ADD note text; DROP TABLE later`);
    const second = await pollTrigger(key, { connection, config, state: first.state });
    expect(second.events.length).toBeGreaterThan(0);
    await pollTrigger(key, { connection, config, state: second.state });
    if (key !== 'schema-changes') {
      const events: TriggerEvent[] = [];
      const subscription = await subscribeTrigger(key, { connection, config, state: second.state }, async (batch) => void events.push(...batch));
      await sql('DELETE FROM changes');
      for (let i = 0; i < 400 && events.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      await subscription.close();
      expect(events.length).toBeGreaterThan(0);
      // The walsender lets go of the slot a moment after the subscription closes.
      for (let i = 0; i < 400 && (await sql('SELECT 1 FROM pg_replication_slots WHERE active')).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await deactivateTrigger(key, { connection, config });
  }

  // table-sync handing over to table-changes-cdc (the handover's snapshot wait and key types), and
  // CDC's heartbeat table (created on activation, its beat and removal are DO blocks).
  const cdc = { tables: ['audit'], heartbeat: 'table', heartbeatSeconds: 1 } as const;
  await sql("INSERT INTO audit VALUES (1, 'before')");
  await activateTrigger('table-changes-cdc', { connection, config: cdc });
  const syncConfig = { tables: ['audit'], handover: {}, batchSize: 1 };
  let synced = await pollTrigger('table-sync', { connection, config: syncConfig });
  await sql("INSERT INTO audit VALUES (2, 'during')"); // inside the handover's window: its key is compared
  for (let i = 0; i < 3; i++) synced = await pollTrigger('table-sync', { connection, config: syncConfig, state: synced.state });
  await sql("INSERT INTO audit VALUES (3, 'after')");
  const handed = await pollTrigger('table-changes-cdc', { connection, config: cdc, state: handoverState(synced.state!) });
  expect(handed.events.length).toBeGreaterThan(0);
  await pollTrigger('table-changes-cdc', { connection, config: cdc, state: handed.state }); // nothing new: a beat
  await deactivateTrigger('table-changes-cdc', { connection, config: cdc });
  const toured = recorder.texts.map((t) => t.text).join('\n');
  for (const part of ['txid_current_snapshot', 'to_regtype', '_heartbeat', 'DROP SCHEMA']) expect(toured).toContain(part);
  await sql('DELETE FROM audit');

  // schema-changes without activation (catalog snapshots), and the activations' bookkeeping.
  const snapshots = await pollTrigger('schema-changes', { connection, config: { schemas: ['public'] } });
  await sql('CREATE TABLE snapshot_later (id int)');
  expect((await pollTrigger('schema-changes', { connection, config: { schemas: ['public'] }, state: snapshots.state })).events.length).toBeGreaterThan(0);
  await activateTrigger('row-changes', { connection, config: { tables: ['audit'] } });
  const activations = await listActivations(connection);
  expect(activations.length).toBeGreaterThan(0);
  for (const activation of activations) await removeActivation(connection, activation.fingerprint);

  const found = findings();
  if (process.env.OWN_SQL_DUMP) (await import('node:fs')).writeFileSync(process.env.OWN_SQL_DUMP, JSON.stringify(found, null, 1));
  expect(recorder.texts.length).toBeGreaterThan(50); // the recording saw the tour
  expect(found.map((f) => `${f.what}\n    in: ${f.text.replace(/\s+/g, ' ').slice(0, 300)}`)).toEqual([]);
}, 180_000);
