/**
 * The heartbeat table (table-changes-cdc `heartbeat: 'table'`, the automatic choice before
 * PostgreSQL 14, where pgoutput does not pass logical messages on): created in schema pgactions at
 * activation and added to the trigger's publication, dropped at deactivation; its beats move a
 * quiet slot past the WAL other databases write, over subscribe and over polling, and never
 * arrive as events.
 */
import { activateTrigger, deactivateTrigger, pollTrigger, subscribeTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { parseLsn } from '../../triggers/replication/lsn.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
const server = useReplicationServer({ settings: { max_wal_size: '64MB' } });
let n = 0;
beforeAll(() => server.sql('CREATE TABLE noise (x text)'), 60_000);

async function setup(heartbeat: 'auto' | 'table', heartbeatSeconds = 0) {
  const database = `hb_${++n}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string, values?: unknown[]) => server.sql(text, values, database);
  await sql('CREATE TABLE items (id int PRIMARY KEY, name text)');
  const request = { connection: server.config({ database }), config: { tables: ['items'], heartbeatSeconds, heartbeat } };
  await activateTrigger(KEY, request);
  const slot = (await sql("SELECT slot_name FROM pg_replication_slots WHERE database = current_database()"))[0]!.slot_name as string;
  const retained = async (name = slot) =>
    Number((await sql('SELECT pg_current_wal_lsn() - confirmed_flush_lsn AS bytes FROM pg_replication_slots WHERE slot_name = $1', [name]))[0]!.bytes);
  return { sql, request, slot, retained };
}

/** Writes `megabytes` of WAL in the postgres database (not the trigger's). */
async function noise(megabytes: number) {
  for (let i = 0; i < megabytes / 10; i++) await server.sql("INSERT INTO noise SELECT repeat('n', 1000) FROM generate_series(1, 10000)");
}

test("activation creates pgactions.<slot>_heartbeat in the trigger's publication; deactivation drops it and the emptied schema", async () => {
  const db = await setup('table');
  const table = `${db.slot}_heartbeat`;
  expect(await db.sql("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2", [db.slot])).toEqual([
    { schemaname: 'pgactions', tablename: table },
    { schemaname: 'public', tablename: 'items' },
  ]);
  expect(await db.sql(`SELECT count(*)::int AS rows, obj_description('pgactions.${table}'::regclass, 'pg_class') AS tag FROM pgactions.${table}`)).toEqual([
    { rows: 1, tag: 'pg-actions table-changes-cdc heartbeat' },
  ]);
  await activateTrigger(KEY, db.request); // again: nothing new, no error
  await deactivateTrigger(KEY, db.request);
  expect(await db.sql("SELECT to_regnamespace('pgactions') IS NULL AS gone")).toEqual([{ gone: true }]);
  // 'auto' picks the table exactly when the server cannot deliver messages (before 14)
  const auto = await setup('auto');
  expect(await auto.sql('SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1', ['pgactions'])).toEqual([{ n: server.versionNum < 140000 ? 1 : 0 }]);
  await deactivateTrigger(KEY, auto.request);
});

test('subscribe, table heartbeat: quiet published tables while another database writes 40 MB of WAL keep the slot under 16 MB; beats are not events', async () => {
  const db = await setup('table', 1);
  await db.sql("SELECT pg_create_logical_replication_slot('unread_control', 'pgoutput')");
  const events: TriggerEvent[] = [];
  const states: TriggerState[] = [];
  const subscription = await subscribeTrigger(KEY, { ...db.request, onState: (s: TriggerState) => void states.push(s) }, (batch) => void events.push(...batch));
  try {
    await waitFor(async () => (await db.sql('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [db.slot]))[0]!.active, 'active walsender');
    const before = (await db.sql(`SELECT beat FROM pgactions.${db.slot}_heartbeat`))[0]!.beat as Date;
    await noise(40);
    expect(await db.retained('unread_control')).toBeGreaterThan(40 * 1024 * 1024); // what an unread slot pins
    await waitFor(async () => (await db.retained()) < 16 * 1024 * 1024, 'the slot to follow the WAL', 30_000);
    const beatAt = async () => ((await db.sql(`SELECT beat FROM pgactions.${db.slot}_heartbeat`))[0]!.beat as Date).getTime();
    await waitFor(async () => (await beatAt()) > before.getTime(), 'a beat while the tables are idle');
  } finally {
    await subscription.close();
    await db.sql("SELECT pg_drop_replication_slot('unread_control')");
  }
  expect(events).toEqual([]);
  expect(states.length).toBeGreaterThan(0);
  // a real change still arrives, alone
  const again = await subscribeTrigger(KEY, { ...db.request, state: states.at(-1) }, (batch) => void events.push(...batch));
  try {
    await db.sql("INSERT INTO items VALUES (1, 'real')");
    await waitFor(() => events.length === 1, 'the real change');
    expect(events.map((e) => [e.schema, e.table, e.key])).toEqual([['public', 'items', { id: 1 }]]);
  } finally {
    await again.close();
  }
}, 90_000);

test('poll, table heartbeat: a poll that finds nothing beats, the next one moves the position past the other database\'s WAL with no event', async () => {
  const db = await setup('table', 30);
  const first = await pollTrigger(KEY, db.request);
  await noise(20);
  // each poll that finds nothing beats; a later poll reads the beat and moves past the other database's WAL
  let moved = first;
  for (let i = 0; i < 4 && parseLsn((moved.state.position as { lsn: string }).lsn) < parseLsn((first.state.position as { lsn: string }).lsn) + 20_000_000n; i++) {
    moved = await pollTrigger(KEY, { ...db.request, state: moved.state });
    expect(moved.events).toEqual([]);
  }
  expect(parseLsn((moved.state.position as { lsn: string }).lsn)).toBeGreaterThan(parseLsn((first.state.position as { lsn: string }).lsn) + 20_000_000n);
  await pollTrigger(KEY, { ...db.request, state: moved.state }); // stores it: the slot advances
  expect(await db.retained()).toBeLessThan(16 * 1024 * 1024);
}, 90_000);
