/**
 * table-changes-cdc on a real wal_level=logical server (its own, wal_sender_timeout = 5 s):
 * slot and publication lifecycle, events in commit order with stable ids, at least once with the
 * slot's confirmed position never past the last handled commit, reconnects, loud gaps, polling.
 */
import { PgActionsError } from '../../connection/index.js';
import { validatorFor } from '../../schemas/validate.js';
import {
  activateTrigger, deactivateTrigger, findTrigger, pollTrigger, sampleEvents, subscribeTrigger,
  type TriggerEvent, type TriggerState, type TriggerSubscription,
} from '../../triggers/index.js';
import { parseLsn } from '../../triggers/replication/lsn.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { failureOf, waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
const pg = useReplicationServer({ settings: { wal_sender_timeout: '5s', max_wal_size: '64MB' } });
let n = 0;
/** Every subscription a test opened, closed even when the test failed (a running one keeps jest alive). */
const opened: TriggerSubscription[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((subscription) => subscription.close()));
});

const checkEvent = validatorFor(findTrigger(KEY)!.event);

/** A fresh database with a table `items` (and its own trigger config). */
async function setup(extraSql = '') {
  const database = `cdc_${++n}`;
  await pg.sql(`CREATE DATABASE ${database}`);
  const connection = pg.config({ database });
  const sql = (text: string, values?: unknown[]) => pg.sql(text, values, database);
  await sql(`CREATE TABLE items (id int PRIMARY KEY, name text, big text); ${extraSql}`);
  const request = { connection, config: { tables: ['items'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  return { database, connection, sql, request };
}

type Setup = Awaited<ReturnType<typeof setup>>;

async function slotRow(db: Setup): Promise<{ slot_name: string; confirmed_flush_lsn: string; active_pid: number | null }> {
  const rows = await db.sql("SELECT slot_name, confirmed_flush_lsn::text, active_pid FROM pg_replication_slots WHERE slot_name LIKE 'pg_actions_%' AND database = current_database()");
  return rows[0] as never;
}

interface Collector {
  events: TriggerEvent[];
  states: TriggerState[];
  errors: unknown[];
  subscription: TriggerSubscription;
}

async function subscribe(db: Setup, state: unknown, handler: (events: TriggerEvent[]) => Promise<void> | void = () => {}): Promise<Collector> {
  const collector = { events: [], states: [], errors: [] } as unknown as Collector;
  collector.subscription = await subscribeTrigger(
    KEY,
    { ...db.request, state, onState: (s) => void collector.states.push(s), onError: (e) => void collector.errors.push(e) },
    async (events) => {
      for (const event of events) expect(checkEvent(event, 'event')).toEqual([]);
      await handler(events);
      collector.events.push(...events);
    },
  );
  opened.push(collector.subscription);
  return collector;
}

test('activate creates a tagged publication and slot, idempotently; deactivate drops exactly them', async () => {
  const db = await setup();
  await db.sql('CREATE PUBLICATION someone_else FOR TABLE items');
  await db.sql("SELECT pg_create_logical_replication_slot('someone_elses_slot', 'pgoutput')");
  await activateTrigger(KEY, db.request); // again: nothing new, no error
  const slots = await db.sql("SELECT slot_name, plugin FROM pg_replication_slots WHERE database = current_database() ORDER BY 1");
  expect(slots).toEqual([{ slot_name: expect.stringMatching(/^pg_actions_[0-9a-f]{16}$/), plugin: 'pgoutput' }, { slot_name: 'someone_elses_slot', plugin: 'pgoutput' }]);
  const pubs = await db.sql("SELECT pubname, obj_description(oid, 'pg_publication') AS tag FROM pg_publication ORDER BY 1");
  expect(pubs).toEqual([{ pubname: slots[0]!.slot_name, tag: 'pg-actions table-changes-cdc' }, { pubname: 'someone_else', tag: null }]);
  await deactivateTrigger(KEY, db.request);
  expect(await db.sql('SELECT slot_name FROM pg_replication_slots WHERE database = current_database()')).toEqual([{ slot_name: 'someone_elses_slot' }]);
  expect(await db.sql('SELECT pubname FROM pg_publication')).toEqual([{ pubname: 'someone_else' }]);
  await db.sql("SELECT pg_drop_replication_slot('someone_elses_slot')");
});

test('activation on a table without a primary key is refused with REPLICATION_NOT_READY and the fix, before anything is created', async () => {
  const database = `cdc_${++n}`;
  await pg.sql(`CREATE DATABASE ${database}`);
  await pg.sql('CREATE TABLE loose (a int)', [], database);
  const error = await failureOf(activateTrigger(KEY, { connection: pg.config({ database }), config: { tables: ['loose'] } }));
  expect(error.code).toBe('REPLICATION_NOT_READY');
  expect(error.message).toContain('TABLE_WITHOUT_REPLICA_IDENTITY');
  expect(error.fixes).toContain('Or send whole old rows: ALTER TABLE "public"."loose" REPLICA IDENTITY FULL;');
  expect(await pg.sql('SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = current_database()', [], database)).toEqual([{ n: 0 }]);
});

test('subscribe: every change in commit order with LSN ids and commit time; ROLLBACK emits nothing; TOAST unchanged is marked, not null', async () => {
  const db = await setup('ALTER TABLE items REPLICA IDENTITY DEFAULT; CREATE TABLE audit (id int PRIMARY KEY, v text); ALTER TABLE audit REPLICA IDENTITY FULL');
  await deactivateTrigger(KEY, db.request);
  const request = { ...db.request, config: { tables: ['items', 'audit'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const big = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i)"; // 12.8 kB, incompressible: TOASTed
  await db.sql(`BEGIN; INSERT INTO items VALUES (1, 'a', ${big}), (2, 'b', NULL); INSERT INTO audit VALUES (1, 'x'); COMMIT`);
  await db.sql("BEGIN; INSERT INTO items VALUES (3, 'never'); ROLLBACK");
  await db.sql("UPDATE items SET name = 'a2' WHERE id = 1");
  await db.sql("UPDATE audit SET v = 'y'; DELETE FROM items WHERE id = 2; TRUNCATE audit");
  const c = await subscribeAt(db, request);
  await waitFor(() => c.events.length >= 7, '7 events');
  await c.subscription.close();
  expect(c.events.map((e) => [e.op, e.table, e.key])).toEqual([
    ['INSERT', 'items', { id: 1 }], ['INSERT', 'items', { id: 2 }], ['INSERT', 'audit', { id: 1, v: 'x' }], // FULL: every column is the identity
    ['UPDATE', 'items', { id: 1 }],
    ['UPDATE', 'audit', { id: 1, v: 'y' }], ['DELETE', 'items', { id: 2 }], ['TRUNCATE', 'audit', {}],
  ]);
  const [first, , , toast, full, del] = c.events as Record<string, unknown>[];
  expect((first!.new as { big: string }).big).toHaveLength(12800);
  expect(toast).toMatchObject({ new: { id: 1, name: 'a2' }, unchanged: ['big'], oldRow: 'none' });
  expect(toast!.new).not.toHaveProperty('big');
  expect(full).toMatchObject({ old: { id: 1, v: 'x' }, new: { id: 1, v: 'y' }, oldRow: 'full' });
  expect(del).toMatchObject({ old: { id: 2 }, oldRow: 'key' });
  // grouped by transaction: one lsn per transaction, seq from 0, commit order
  expect(c.events.map((e) => [e.lsn, e.seq])).toEqual([
    [first!.lsn, 0], [first!.lsn, 1], [first!.lsn, 2], [toast!.lsn, 0], [full!.lsn, 0], [full!.lsn, 1], [full!.lsn, 2],
  ]);
  expect(parseLsn(toast!.lsn as string)).toBeGreaterThan(parseLsn(first!.lsn as string));
  expect(new Set(c.events.map((e) => e.id)).size).toBe(7);
  expect(Date.parse(first!.commitTime as string)).toBeGreaterThan(Date.now() - 120_000);
  expect(first!.commitTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
}, 60_000);

async function subscribeAt(db: Setup, request: Setup['request'], state?: unknown, handler?: (events: TriggerEvent[]) => Promise<void> | void) {
  return subscribe({ ...db, request }, state, handler);
}

test('a throwing handler: the same events come again with the same ids; confirmed_flush_lsn never passes the last handled commit', async () => {
  const db = await setup();
  await db.sql("INSERT INTO items VALUES (1, 'one')");
  let failing = false;
  const attempts: string[][] = [];
  const c = await subscribe(db, undefined, async (events) => {
    if (!failing) return;
    attempts.push(events.map((e) => e.id));
    await new Promise((r) => setTimeout(r, 1500)); // status updates and keepalives go out meanwhile
    throw new Error('handler failed');
  });
  await waitFor(() => c.events.length === 1, 'first event');
  const handled = (c.subscription.state.position as { lsn: string }).lsn;
  await waitFor(async () => (await slotRow(db)).confirmed_flush_lsn === handled, 'ack of the first transaction');
  failing = true;
  await db.sql("INSERT INTO items VALUES (2, 'two'), (3, 'three')");
  await waitFor(() => c.errors.length >= 2, 'two failed deliveries');
  for (let i = 0; i < 5; i++) {
    expect(parseLsn((await slotRow(db)).confirmed_flush_lsn)).toBeLessThanOrEqual(parseLsn(handled));
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(c.errors.length).toBeGreaterThanOrEqual(2);
  expect(attempts[1]).toEqual(attempts[0]);
  expect(c.subscription.state.position).toEqual({ lsn: handled });
  await c.subscription.close(); // the consumer dies between receive and ack
  const again = await subscribe(db, c.subscription.state);
  await waitFor(() => again.events.length === 2, 'redelivery after restart');
  expect(again.events.map((e) => e.id)).toEqual(attempts[0]);
  await waitFor(async () => parseLsn((await slotRow(db)).confirmed_flush_lsn) > parseLsn(handled), 'ack after handling');
  await again.subscription.close();
}, 60_000);

test('a terminated walsender: the subscription reconnects from the acknowledged position and loses nothing', async () => {
  const db = await setup();
  const c = await subscribe(db, undefined);
  await db.sql("INSERT INTO items VALUES (1, 'one')");
  await waitFor(() => c.events.length === 1, 'first event');
  const pid = (await waitFor(async () => (await slotRow(db)).active_pid, 'active walsender'))!;
  await db.sql('SELECT pg_terminate_backend($1)', [pid]);
  await db.sql("INSERT INTO items VALUES (2, 'two')");
  await waitFor(() => c.events.length === 2, 'event after reconnect');
  await waitFor(async () => { const now = (await slotRow(db)).active_pid; return now !== null && now !== pid; }, 'a new walsender');
  await db.sql("INSERT INTO items VALUES (3, 'three')");
  await waitFor(() => c.events.length === 3, 'third event');
  await c.subscription.close();
  expect(c.events.map((e) => e.key)).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
  expect(c.errors.length).toBeGreaterThanOrEqual(1);
  expect((c.errors[0] as PgActionsError).code).toBe('CONNECTION_LOST');
}, 60_000);

test('a handler slower than wal_sender_timeout (5 s) keeps its connection and loses nothing', async () => {
  const db = await setup();
  expect(await db.sql('SHOW wal_sender_timeout')).toEqual([{ wal_sender_timeout: '5s' }]);
  let calls = 0;
  const c = await subscribe(db, undefined, async () => {
    if (calls++ === 0) await new Promise((r) => setTimeout(r, 8000));
  });
  await db.sql("INSERT INTO items VALUES (1, 'slow')");
  await waitFor(async () => (await slotRow(db)).active_pid, 'active walsender');
  const pid = (await slotRow(db)).active_pid;
  await db.sql("INSERT INTO items VALUES (2, 'queued while the handler sleeps')");
  await waitFor(() => c.events.length === 2, 'both events', 30_000);
  await c.subscription.close();
  expect(c.errors).toEqual([]);
  expect(calls).toBeGreaterThanOrEqual(1);
  expect(c.events.map((e) => e.key)).toEqual([{ id: 1 }, { id: 2 }]);
  expect(pid).not.toBeNull();
}, 60_000);

test('pollTrigger over SQL: peeks without consuming, advances only to the stored state at the next poll', async () => {
  const db = await setup();
  const first = await pollTrigger(KEY, db.request);
  expect(first.events).toEqual([]);
  await db.sql("INSERT INTO items VALUES (1, 'a'); INSERT INTO items VALUES (2, 'b')");
  const batch = await pollTrigger(KEY, { ...db.request, state: first.state });
  expect(batch.events.map((e) => e.key)).toEqual([{ id: 1 }, { id: 2 }]);
  for (const event of batch.events) expect(checkEvent(event, 'event')).toEqual([]);
  // the host did not store the state (crashed): the same events, same ids
  const repeat = await pollTrigger(KEY, { ...db.request, state: first.state });
  expect(repeat.events.map((e) => e.id)).toEqual(batch.events.map((e) => e.id));
  const before = (await slotRow(db)).confirmed_flush_lsn;
  expect(parseLsn(before)).toBeLessThan(parseLsn((batch.state.position as { lsn: string }).lsn));
  const next = await pollTrigger(KEY, { ...db.request, state: batch.state });
  expect(next.events).toEqual([]);
  expect((await slotRow(db)).confirmed_flush_lsn).toBe((batch.state.position as { lsn: string }).lsn);
  // events from subscribe and poll share ids
  const sample = await sampleEvents(KEY, db.request);
  expect(sample.events).toEqual([]);
});

test('slot dropped, recreated, or lost: a loud error with its code and the fix, no events from a wrong position', async () => {
  const db = await setup();
  const { state } = await pollTrigger(KEY, db.request);
  const slot = (await slotRow(db)).slot_name;
  await db.sql("INSERT INTO items VALUES (1, 'before the drop')");
  await db.sql('SELECT pg_drop_replication_slot($1)', [slot]);
  const missing = await failureOf(pollTrigger(KEY, { ...db.request, state }));
  expect(missing.code).toBe('REPLICATION_SLOT_MISSING');
  expect(missing.fixes.join(' ')).toMatch(/re-snapshot/i);
  const c = await subscribe(db, state);
  await waitFor(() => c.errors.length === 1, 'the subscription error');
  await new Promise((r) => setTimeout(r, 500));
  await c.subscription.close();
  expect(c.errors.map((e) => (e as PgActionsError).code)).toEqual(['REPLICATION_SLOT_MISSING']); // stops: no retry loop from "now"
  expect(c.events).toEqual([]);
  await db.sql("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
  await db.sql("INSERT INTO items VALUES (2, 'after the recreation')");
  const recreated = await failureOf(pollTrigger(KEY, { ...db.request, state }));
  expect(recreated.code).toBe('REPLICATION_SLOT_MISMATCH');
  expect(recreated.message).toContain(slot);
  // lost: WAL retention capped, then more WAL than the cap (max_slot_wal_keep_size and wal_status: PostgreSQL 13+)
  if (pg.versionNum < 130000) return;
  await db.sql("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
  await db.sql('SELECT pg_reload_conf()');
  try {
    const { state: fresh } = await pollTrigger(KEY, db.request);
    await waitFor(async () => {
      await db.sql("CREATE TABLE IF NOT EXISTS filler (x text); INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 20000)");
      await db.sql('SELECT pg_switch_wal()');
      await db.sql('CHECKPOINT');
      return (await db.sql('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [slot]))[0]!.wal_status === 'lost';
    }, 'a lost slot', 60_000);
    const lost = await failureOf(pollTrigger(KEY, { ...db.request, state: fresh }));
    expect(lost.code).toBe('REPLICATION_SLOT_LOST');
  } finally {
    await db.sql('ALTER SYSTEM RESET max_slot_wal_keep_size');
    await db.sql('SELECT pg_reload_conf()');
  }
}, 90_000);

test('two consumers: the second waits (REPLICATION_SLOT_IN_USE) and takes over when the first ends', async () => {
  const db = await setup();
  const first = await subscribe(db, undefined);
  await db.sql("INSERT INTO items VALUES (1, 'one')");
  await waitFor(() => first.events.length === 1, 'first consumer event');
  const second = await subscribe(db, first.subscription.state);
  await waitFor(() => second.errors.length >= 1, 'second consumer refused');
  expect((second.errors[0] as PgActionsError).code).toBe('REPLICATION_SLOT_IN_USE');
  await first.subscription.close();
  await db.sql("INSERT INTO items VALUES (2, 'two')");
  await waitFor(() => second.events.length === 1, 'second consumer takes over', 30_000);
  await second.subscription.close();
  expect(second.events.map((e) => e.key)).toEqual([{ id: 2 }]);
}, 60_000);

test('quiet published tables while another database writes 40 MB of WAL, heartbeat on: the slot retains under 16 MB', async () => {
  const db = await setup();
  await db.sql("SELECT pg_create_logical_replication_slot('unread_control', 'pgoutput')");
  const c = await subscribe({ ...db, request: { ...db.request, config: { ...db.request.config, heartbeatSeconds: 1 } } }, undefined);
  await waitFor(async () => (await slotRow(db)).active_pid, 'active walsender');
  const retained = async (slot: string) =>
    Number((await db.sql('SELECT pg_current_wal_lsn() - confirmed_flush_lsn AS bytes FROM pg_replication_slots WHERE slot_name = $1', [slot]))[0]!.bytes);
  await pg.sql('CREATE TABLE IF NOT EXISTS noise (x text)');
  for (let i = 0; i < 4; i++) await pg.sql("INSERT INTO noise SELECT repeat('n', 1000) FROM generate_series(1, 10000)");
  expect(await retained('unread_control')).toBeGreaterThan(40 * 1024 * 1024); // what an unread slot pins
  const ours = (await slotRow(db)).slot_name;
  await waitFor(async () => (await retained(ours)) < 16 * 1024 * 1024, 'the slot to follow the WAL', 30_000);
  await c.subscription.close();
  await db.sql("SELECT pg_drop_replication_slot('unread_control')");
  expect(c.events).toEqual([]);
  expect(c.states.length).toBeGreaterThan(0); // the position moved with no event
}, 60_000);
