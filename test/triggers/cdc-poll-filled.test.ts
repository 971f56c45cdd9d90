/**
 * When a poll peeks again (triggers/replication/peek.ts `filled()`, the row caps; REVIEW8 R154) and
 * what a poll that moves only inside a transaction returns, each on a few small transactions:
 * - a peek that the server stopped at its limit, counted before runs of logical messages were
 *   folded into one row, is read on: a change behind 3,000 messages arrives at the first poll;
 * - a poll with changes reads at most batchSize × 64 rows, one without reads on further;
 * - a peek that kept its limit of heavy rows is read on (the later transaction it ended inside);
 * - a peek that reached the slot's end is not repeated: each poll decodes a transaction once
 *   (pg_stat_replication_slots.total_txns), resumed polls included, however many Relation rows
 *   of the skipped part come back;
 * - the peeks grow 8× at a time, so one that would pass maxResultBytes is not tried first;
 * - a cut transaction whose next rows are the heartbeat table's changes (never events) moves its
 *   place without an event, and that is no stall;
 * - a state edited to `inside: null` is refused, not read as a transaction to start again.
 * Uses the replication server at CDC_ACK_SERVER_URL when set (mutation runs), else one of its own.
 */
import { closeAll } from '../../connection/index.js';
import { activateTrigger, pollTrigger, type TriggerState } from '../../triggers/index.js';
import type { InsidePosition } from '../../triggers/replication/stream.js';
import { cleanUpInOrder } from '../harness/clean-up.js';
import type { ReplicationServer } from '../harness/replication-server.js';
import { sharedOrOwnReplicationServer } from '../harness/shared-replication-server.js';
import { failureOf } from './helpers.js';

const KEY = 'table-changes-cdc';
let server: ReplicationServer;
let starting: Promise<ReplicationServer> | undefined;
beforeAll(async () => {
  starting = sharedOrOwnReplicationServer({ wal_sender_timeout: '2s' }, 'pfill');
  server = await starting;
}, 180_000);
afterAll(() => cleanUpInOrder(closeAll, async () => (await starting?.catch(() => undefined))?.stop()), 60_000);

interface Position { lsn: string; inside?: InsidePosition }
type State = TriggerState & { position: Position };
let n = 0;

async function setup(config: Record<string, unknown> = {}, connection: Record<string, unknown> = {}, tables = ['items']) {
  const database = `pfill_${Date.now().toString(36)}_${++n}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string, values?: unknown[]) => server.sql(text, values, database);
  for (const table of tables) await sql(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
  const request = { connection: { ...server.config({ database }), ...connection }, config: { tables: ['items'], heartbeatSeconds: 0, batchSize: 10, ...config } };
  await activateTrigger(KEY, request);
  const start = (await pollTrigger(KEY, request)).state as State;
  const poll = async (state: State) => {
    const { events, state: next } = await pollTrigger(KEY, { ...request, state });
    return { state: next as State, ids: events.map((event) => (event.key as { id: number }).id) };
  };
  /** Transactions the slot's decoding has handed to pgoutput so far: each peek adds those it decodes. */
  const decoded = async () => Number((await sql('SELECT s.total_txns FROM pg_stat_replication_slots s JOIN pg_replication_slots r USING (slot_name) WHERE r.database = current_database()'))[0]!.total_txns);
  const messages = (count: number) => sql(`SELECT pg_catalog.count(pg_logical_emit_message(false, 'other-app', '')) FROM generate_series(1, ${count})`);
  return { sql, start, poll, decoded, messages };
}

test('a change behind 3,000 logical messages arrives at the first poll: the server stopped at the limit although the folded rows are few', async () => {
  const db = await setup();
  await db.messages(3000);
  await db.sql("INSERT INTO items VALUES (1, 'a')");
  expect((await db.poll(db.start)).ids).toEqual([1]);
}, 120_000);

test('a poll with changes reads at most batchSize × 64 rows (640), one without any reads on: changes behind 100 and behind 3,000 messages', async () => {
  const db = await setup();
  await db.sql("INSERT INTO items VALUES (1, 'a')");
  await db.messages(100);
  await db.sql("INSERT INTO items VALUES (2, 'b')");
  await db.messages(3000);
  await db.sql("INSERT INTO items VALUES (3, 'c')");
  const first = await db.poll(db.start);
  expect(first.ids).toEqual([1, 2]);
  expect((await db.poll(first.state)).ids).toEqual([3]);
}, 120_000);

test('a peek that kept its limit of heavy rows ended inside a later transaction: the poll reads on and delivers it whole', async () => {
  const db = await setup();
  await db.sql("INSERT INTO items SELECT g, 'a' FROM generate_series(1, 5) g");
  await db.sql("INSERT INTO items SELECT g, 'b' FROM generate_series(6, 15) g");
  const first = await db.poll(db.start);
  expect(first.ids).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
}, 120_000);

test('a peek that reached the slot\'s end is not repeated: each poll decodes each transaction once, resumed ones included; a quiet poll keeps the position', async () => {
  const db = await setup();
  for (let i = 1; i <= 3; i++) await db.sql(`INSERT INTO items VALUES (${i}, 'a')`);
  let before = await db.decoded();
  const small = await db.poll(db.start);
  expect(small.ids).toEqual([1, 2, 3]);
  expect((await db.decoded()) - before).toBe(3);
  // 28 changes in one transaction, batchSize 10: cut twice, then its end
  await db.sql("INSERT INTO items SELECT g, 'b' FROM generate_series(4, 31) g");
  let state = small.state;
  const ids: number[][] = [];
  const decodes: number[] = [];
  for (let polls = 0; polls < 3; polls++) {
    before = await db.decoded();
    const next = await db.poll(state);
    decodes.push((await db.decoded()) - before);
    ids.push(next.ids);
    state = next.state;
  }
  expect(ids.map((batch) => batch.length)).toEqual([10, 10, 8]);
  expect(ids.flat()).toEqual(Array.from({ length: 28 }, (_, i) => i + 4));
  // the first poll advances the slot past the three small transactions (that decodes none of them for pgoutput)
  expect(decodes).toEqual([1, 1, 1]);
  const quiet = await db.poll(state);
  expect(quiet.ids).toEqual([]);
  expect(quiet.state.position).toEqual(state.position);
}, 120_000);

test("a resumed poll whose peek reached the transaction's end is not repeated, even when the skipped part's Relation rows (kept for the decoder) make it long: 19 tables, batchSize 2", async () => {
  const tables = Array.from({ length: 19 }, (_, i) => `t${i + 1}`);
  const db = await setup({ tables, batchSize: 2 }, {}, tables);
  await db.sql(`BEGIN; ${tables.map((table, i) => `INSERT INTO ${table} VALUES (${i + 1}, 'a');`).join(' ')} COMMIT`);
  let state = db.start;
  const ids: number[] = [];
  const decodes: number[] = [];
  for (let polls = 0; polls < 10; polls++) {
    const before = await db.decoded();
    const next = await db.poll(state);
    decodes.push((await db.decoded()) - before);
    ids.push(...next.ids);
    state = next.state;
  }
  expect(ids).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
  expect(Object.keys(state.position)).toEqual(['lsn']);
  expect(decodes).toEqual(Array.from({ length: 10 }, () => 1));
}, 120_000);

test('the peeks grow 8× at a time: 30 messages before 3,000 changes of 1 kB, maxResultBytes 1 MB: the first poll delivers batchSize changes', async () => {
  const db = await setup({}, { maxResultBytes: 1024 * 1024 });
  await db.messages(30);
  await db.sql("INSERT INTO items SELECT g, repeat('x', 1000) FROM generate_series(1, 3000) g");
  const first = await db.poll(db.start);
  expect(first.ids).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
}, 120_000);

test("a cut transaction whose next rows are the heartbeat table's changes: a poll that moves only its place inside it returns no event and is no stall; every change then arrives", async () => {
  const db = await setup({ heartbeat: 'table', batchSize: 2 }, { maxResultBytes: 1024 * 1024 });
  const [{ name }] = (await db.sql("SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname LIKE '%\\_heartbeat' AND c.relkind = 'r'")) as [{ name: string }];
  await db.sql(`INSERT INTO ${name} DEFAULT VALUES ON CONFLICT DO NOTHING`);
  // three small changes, 20 heartbeat-table updates, 8 changes of ~150 kB (~300 kB each as the peek's hex text: 3 pass 1 MB)
  await db.sql(`DO $$ BEGIN
      INSERT INTO items SELECT g, 'a' FROM generate_series(1, 3) g;
      FOR i IN 1..20 LOOP UPDATE ${name} SET beat = pg_catalog.clock_timestamp(); END LOOP;
      INSERT INTO items SELECT g, repeat('w', 150000) FROM generate_series(4, 11) g;
    END $$`);
  const first = await db.poll(db.start);
  expect(first.ids).toEqual([1, 2]);
  const second = await db.poll(first.state);
  expect(second.ids).toEqual([3]);
  const third = await db.poll(second.state); // two heartbeat changes, then peeks that pass maxResultBytes
  expect(third.ids).toEqual([]);
  expect(third.state.position.lsn).toBe(second.state.position.lsn);
  expect(third.state.position.inside!.rows).toBeGreaterThan(second.state.position.inside!.rows);
  const ids = [...first.ids, ...second.ids];
  let state = third.state;
  for (let polls = 0; polls < 20 && ids.length < 11; polls++) {
    const next = await db.poll(state);
    ids.push(...next.ids);
    state = next.state;
  }
  expect(ids).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
}, 180_000);

test('a state edited to `inside: null` is TRIGGER_STATE_INVALID naming the field, not a restart of the cut transaction (its changes again)', async () => {
  const db = await setup({ batchSize: 3 });
  await db.sql("INSERT INTO items SELECT g, 'a' FROM generate_series(1, 6) g");
  const cut = await db.poll(db.start);
  expect(cut.ids).toEqual([1, 2, 3]);
  const edited = { ...cut.state, position: { ...cut.state.position, inside: null } } as unknown as State;
  const refused = await failureOf(db.poll(edited));
  expect([refused.code, refused.problems]).toEqual(['TRIGGER_STATE_INVALID', ['state.position.inside must be the one a previous poll returned']]);
  expect(refused.message).toContain('state.position.inside is not a place inside a transaction as a poll returns it');
  expect((await db.poll(cut.state)).ids).toEqual([4, 5, 6]);
}, 120_000);
