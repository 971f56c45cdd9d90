/**
 * table-changes-cdc's acknowledgement over a replication connection (triggers/replication/stream.ts,
 * the standby status updates of connection/replication.ts), one cheap case per rule, for mutation
 * testing: the position a batch hands to the host and the slot's confirmed_flush_lsn move to the end
 * of the last transaction the handler finished, exactly, never to one still being handled; a
 * transaction larger than batchSize (spooled or streamed by the server) keeps the previous position
 * until its last batch, and a failure inside it redelivers it whole with the same ids; transactions
 * that waited while the handler ran are handed over together with the last one's position; a quiet
 * slot follows the server's keepalives; a reconnection resumes from what was acknowledged.
 */
import { closeAll, type PgActionsError } from '../../connection/index.js';
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerEvent, type TriggerState, type TriggerSubscription } from '../../triggers/index.js';
import { parseLsn } from '../../triggers/replication/lsn.js';
import { cleanUpInOrder } from '../harness/clean-up.js';
import { smallDecodingMemory, type ReplicationServer } from '../harness/replication-server.js';
import { sharedOrOwnReplicationServer } from '../harness/shared-replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
// wal_sender_timeout 2 s: keepalives that ask for a reply every second, so a wrong reply is seen quickly. Started here
// rather than by useReplicationServer, with a bound of 180 s: run per mutant beside other runs, a start past 60 s under
// load must not fail every test (a mutant "killed" by a slow start).
// CDC_ACK_SERVER_URL (mutation runs): a server started once with these settings (harness/shared-replication-server.ts),
// used instead of one per run: a start per mutant would cost more than the tests.
let server: ReplicationServer;
let starting: Promise<ReplicationServer> | undefined;
beforeAll(async () => {
  starting = sharedOrOwnReplicationServer({ wal_sender_timeout: '2s' }, 'ack');
  server = await starting;
  await smallDecodingMemory(server);
}, 180_000);
afterAll(() => cleanUpInOrder(closeOpened, closeAll, async () => (await starting?.catch(() => undefined))?.stop()), 60_000);
let n = 0;
const run = Date.now().toString(36);
const opened: TriggerSubscription[] = [];
const closeOpened = async () => void (await Promise.all(opened.splice(0).map((s) => s.close())));
afterEach(closeOpened, 30_000);

async function setup(config: object = {}) {
  const database = `ack_${run}_${++n}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string, values?: unknown[]) => server.sql(text, values, database);
  await sql('CREATE TABLE items (id int PRIMARY KEY, name text)');
  const request = { connection: server.config({ database }), config: { tables: ['items'], heartbeatSeconds: 0, ...config } };
  await activateTrigger(KEY, request);
  const { state } = await pollTrigger(KEY, request);
  const confirmed = async () => parseLsn(((await sql("SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name LIKE 'pg_actions_%' AND database = current_database()"))[0]!.l as string));
  const walsender = async () => (await sql("SELECT active_pid FROM pg_replication_slots WHERE slot_name LIKE 'pg_actions_%' AND database = current_database()"))[0]!.active_pid as number | null;
  return { sql, request, state, confirmed, walsender };
}
type Setup = Awaited<ReturnType<typeof setup>>;

interface Delivery {
  ids: string[];
  /** The slot's confirmed_flush_lsn while the handler had this batch. */
  confirmedMeanwhile: bigint;
  /** The position reported after it (onState), when it was handled. */
  position?: bigint;
}

/** A subscription recording each batch, the positions it reports (onState) and its errors; `handler` runs after the recording. */
async function subscribe(db: Setup, state: TriggerState, handler: (events: TriggerEvent[], call: number) => Promise<void> | void = () => {}) {
  const deliveries: Delivery[] = [];
  const positions: bigint[] = [];
  const errors: unknown[] = [];
  const subscription = await subscribeTrigger(
    KEY,
    { ...db.request, state, onState: (s) => {
        const position = parseLsn((s.position as { lsn: string }).lsn);
        positions.push(position);
        const last = deliveries.at(-1);
        if (last && last.position === undefined) last.position = position;
      }, onError: (e) => void errors.push(e) },
    async (events) => {
      deliveries.push({ ids: events.map((e) => String(e.id)), confirmedMeanwhile: await db.confirmed() });
      await handler(events, deliveries.length);
    },
  );
  opened.push(subscription);
  const ids = () => deliveries.flatMap((d) => d.ids);
  const position = () => parseLsn((subscription.state.position as { lsn: string }).lsn);
  return { deliveries, positions, errors, subscription, ids, position };
}

const lsnOf = (id: string) => parseLsn(id.split(':')[0]!);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
};

/**
 * Closes `c` and resumes from its last state after `marker` was written: exactly the marker comes (nothing
 * acknowledged is redelivered, nothing is lost).
 */
async function closeAndResume(db: Setup, c: { subscription: TriggerSubscription }, marker: number) {
  const state = c.subscription.state;
  await c.subscription.close();
  opened.splice(opened.indexOf(c.subscription), 1);
  await db.sql('INSERT INTO items VALUES ($1, $2)', [marker, 'marker']);
  const again = await subscribe(db, state);
  await waitFor(() => again.ids().length >= 1, 'the marker');
  await sleep(300);
  expect(again.deliveries.map((d) => d.ids.length)).toEqual([1]);
}

test('each transaction is acknowledged once its handler finished, to its end; not while it is being handled; write, flush and apply report the same', async () => {
  const db = await setup();
  const hold = gate();
  const c = await subscribe(db, db.state, async (_events, call) => {
    if (call === 2) await hold.opened;
  });
  await db.sql("INSERT INTO items VALUES (1, 'one')");
  await waitFor(() => c.deliveries[0]?.position !== undefined, 'the first transaction handled');
  const first = c.deliveries[0]!.position!;
  expect(first).toBeGreaterThan(lsnOf(c.ids()[0]!)); // the end of its commit, past the commit LSN the id carries
  await waitFor(async () => (await db.confirmed()) >= first, 'the slot confirmed at the first transaction\'s end');
  await db.sql("INSERT INTO items VALUES (2, 'two')");
  await waitFor(() => c.deliveries.length === 2, 'the second transaction received');
  const commit = lsnOf(c.ids()[1]!);
  expect(first).toBeLessThanOrEqual(commit);
  // Status updates go out every second and keepalives ask for replies: none may confirm what is being handled.
  for (let i = 0; i < 12; i++) {
    expect(await db.confirmed()).toBeLessThan(commit);
    expect(c.position()).toBeLessThan(commit);
    await sleep(250);
  }
  expect(c.deliveries[1]!.confirmedMeanwhile).toBeLessThan(commit);
  hold.open();
  await waitFor(() => c.deliveries[1]!.position !== undefined, 'the second transaction handled');
  const second = c.deliveries[1]!.position!;
  expect(second).toBeGreaterThan(commit);
  await waitFor(async () => (await db.confirmed()) >= second, 'the slot confirmed at the second transaction\'s end');
  // The standby status update: written = flushed = applied = the handled position, with the time it was sent.
  const reported = await waitFor(async () => {
    const [row] = await db.sql(`SELECT write_lsn::text AS w, flush_lsn::text AS f, replay_lsn::text AS r, abs(extract(epoch FROM now() - reply_time)) AS age
                                  FROM pg_stat_replication WHERE pid = (SELECT active_pid FROM pg_replication_slots WHERE slot_name LIKE 'pg_actions_%' AND database = current_database())`);
    return row && row.f !== null && parseLsn(row.f as string) >= second ? row : undefined;
  }, 'a status update past the second transaction');
  expect(reported!.w).toBe(reported!.f);
  expect(reported!.r).toBe(reported!.f);
  expect(Number(reported!.age)).toBeLessThan(30);
  expect(c.errors).toEqual([]);
  await closeAndResume(db, c, 3);
}, 60_000);

test('a transaction larger than batchSize keeps the previous position until its last batch; a failure inside it redelivers it whole, same ids', async () => {
  const db = await setup({ batchSize: 5 });
  let failed = false;
  const c = await subscribe(db, db.state, (_events, call) => {
    if (call === 2 && !failed) {
      failed = true;
      throw new Error('flow failed in the second batch');
    }
  });
  const start = parseLsn((db.state.position as { lsn: string }).lsn);
  await db.sql("INSERT INTO items SELECT i, 'bulk' FROM generate_series(1, 12) i");
  await waitFor(() => c.position() > start, 'the transaction handled');
  // 5 (handled), 5 (failed), then again from its start: 5, 5, 2.
  expect(c.deliveries.map((d) => d.ids.length)).toEqual([5, 5, 5, 5, 2]);
  const ids = c.ids();
  const commit = ids[0]!.split(':')[0];
  expect(ids.slice(10)).toEqual(Array.from({ length: 12 }, (_, i) => `${commit}:${i}`));
  expect(ids.slice(0, 10)).toEqual(ids.slice(10, 20));
  // The batches inside it kept the position before it; its last one moved past its commit.
  const commitLsn = lsnOf(ids[0]!);
  const inside = c.deliveries.filter((d) => d.position !== undefined).slice(0, -1).map((d) => d.position!);
  expect(inside).toHaveLength(3);
  expect(new Set(inside).size).toBe(1);
  expect(inside[0]!).toBeGreaterThanOrEqual(start);
  expect(inside[0]!).toBeLessThan(commitLsn);
  expect(c.deliveries.at(-1)!.position!).toBeGreaterThan(commitLsn);
  for (const d of c.deliveries) expect(d.confirmedMeanwhile).toBeLessThan(commitLsn);
  expect((c.errors[0] as Error).message).toBe('flow failed in the second batch');
  await waitFor(async () => (await db.confirmed()) >= c.deliveries.at(-1)!.position!, 'the slot confirmed at its end');
}, 60_000);

test('a transaction streamed by the server (larger than logical_decoding_work_mem), queued behind a small one: the position stays until its last batch; a failure redelivers it whole', async () => {
  const db = await setup({ batchSize: 400 });
  const hold = gate();
  let failed = false;
  const c = await subscribe(db, db.state, async (_events, call) => {
    if (call === 1) await hold.opened;
    if (call === 4 && !failed) {
      failed = true;
      throw new Error('flow failed in the second batch');
    }
  });
  await db.sql("INSERT INTO items VALUES (-1, 'held')");
  await waitFor(() => c.deliveries.length === 1, 'the first transaction, held by its handler');
  // Queued while the handler holds the first: a small transaction, then the streamed one (its chunk comes at its Stream Commit).
  await db.sql("INSERT INTO items VALUES (0, 'small')");
  await db.sql("INSERT INTO items SELECT i, repeat('x', 100) FROM generate_series(1, 1000) i");
  await sleep(1000);
  hold.open();
  await waitFor(() => c.deliveries.length === 7 && c.deliveries[6]!.position !== undefined, 'the large transaction handled', 60_000);
  // 1 (held), 1 (small), 400 (handled), 400 (failed), then again from its start: 400, 400, 200.
  expect(c.deliveries.map((d) => d.ids.length)).toEqual([1, 1, 400, 400, 400, 400, 200]);
  const small = c.deliveries[1]!.position!;
  const large = c.ids().slice(2);
  const commit = large[0]!.split(':')[0];
  expect(large.slice(800)).toEqual(Array.from({ length: 1000 }, (_, i) => `${commit}:${i}`));
  expect(large.slice(0, 800)).toEqual(large.slice(800, 1600));
  const commitLsn = lsnOf(large[0]!);
  expect(small).toBeGreaterThan(lsnOf(c.ids()[1]!));
  const inside = c.deliveries.slice(2, -1).filter((d) => d.position !== undefined).map((d) => d.position!);
  expect(inside).toHaveLength(3);
  expect(new Set(inside).size).toBe(1);
  expect(inside[0]!).toBeGreaterThanOrEqual(small);
  expect(inside[0]!).toBeLessThan(commitLsn);
  expect(c.deliveries[6]!.position!).toBeGreaterThan(commitLsn);
  for (const d of c.deliveries.slice(2)) expect(d.confirmedMeanwhile).toBeLessThan(commitLsn);
  if (server.versionNum >= 140000) {
    const [{ n: streamed }] = (await db.sql('SELECT sum(stream_txns)::int AS n FROM pg_stat_replication_slots WHERE slot_name IN (SELECT slot_name FROM pg_replication_slots WHERE database = current_database())')) as [{ n: number }];
    expect(streamed).toBeGreaterThanOrEqual(1);
  }
  await waitFor(async () => (await db.confirmed()) >= c.deliveries[6]!.position!, 'the slot confirmed at its end');
}, 90_000);

test('transactions that waited while the handler ran come in one batch with the last one\'s position, and are acknowledged together', async () => {
  const db = await setup({ batchSize: 3 });
  const hold = gate();
  const c = await subscribe(db, db.state, async (_events, call) => {
    if (call === 1) await hold.opened;
  });
  await db.sql("INSERT INTO items VALUES (1, 'first')");
  await waitFor(() => c.deliveries.length === 1, 'the first batch');
  for (let i = 2; i <= 5; i++) await db.sql('INSERT INTO items VALUES ($1, $2)', [i, 'waited']);
  await sleep(500); // the four are received (and queued) while the handler holds the first
  hold.open();
  await waitFor(() => c.ids().length === 5 && c.deliveries[2]?.position !== undefined, 'all five handled');
  expect(c.deliveries.map((d) => d.ids.length)).toEqual([1, 3, 1]);
  const [, merged, last] = c.deliveries;
  // Each position is the end of its batch's last transaction: past its commit, before the next one's.
  expect(merged!.position!).toBeGreaterThan(lsnOf(merged!.ids[2]!));
  expect(merged!.position!).toBeLessThan(lsnOf(last!.ids[0]!));
  expect(last!.position!).toBeGreaterThan(lsnOf(last!.ids[0]!));
  expect(last!.confirmedMeanwhile).toBeLessThan(lsnOf(last!.ids[0]!));
  await waitFor(async () => (await db.confirmed()) >= last!.position!, 'the slot confirmed at the last end');
  await closeAndResume(db, c, 6);
}, 60_000);

test('a quiet slot follows the keepalives: WAL written in another database moves the position and the slot, with no event', async () => {
  const db = await setup();
  const c = await subscribe(db, db.state);
  await server.sql('CREATE TABLE IF NOT EXISTS elsewhere (v text)');
  const [{ l }] = (await server.sql("INSERT INTO elsewhere SELECT repeat('w', 100) FROM generate_series(1, 1000) RETURNING pg_current_wal_lsn()::text AS l")) as [{ l: string }];
  const written = parseLsn(l);
  await waitFor(() => c.positions.length > 0 && c.position() >= written, 'the position past the other database\'s WAL');
  await waitFor(async () => (await db.confirmed()) >= written, 'the slot past it');
  expect(c.deliveries).toEqual([]);
  expect(c.errors).toEqual([]);
  // ... and it stays a valid place to resume from.
  await closeAndResume(db, c, 1);
}, 60_000);

test('a terminated walsender: the subscription resumes from what it acknowledged, nothing handled comes again', async () => {
  const db = await setup();
  const c = await subscribe(db, db.state);
  await db.sql("INSERT INTO items VALUES (1, 'one')");
  await waitFor(() => c.deliveries[0]?.position !== undefined, 'the first transaction handled');
  const first = c.deliveries[0]!.position!;
  await waitFor(async () => (await db.confirmed()) >= first, 'confirmed');
  const pid = (await waitFor(db.walsender, 'the walsender'))!;
  await db.sql('SELECT pg_terminate_backend($1)', [pid]);
  await db.sql("INSERT INTO items VALUES (2, 'two')");
  await waitFor(() => c.ids().length >= 2, 'the change after the reconnection');
  await waitFor(async () => { const now = await db.walsender(); return now !== null && now !== pid; }, 'a new walsender');
  await db.sql("INSERT INTO items VALUES (3, 'three')");
  await waitFor(() => c.ids().length >= 3, 'the third change');
  await sleep(300);
  expect(c.deliveries.map((d) => d.ids.length)).toEqual([1, 1, 1]);
  expect((c.errors[0] as PgActionsError).code).toBe('CONNECTION_LOST');
  for (const error of c.errors) expect(['CONNECTION_LOST', 'REPLICATION_SLOT_IN_USE']).toContain((error as PgActionsError).code);
  await waitFor(async () => (await db.confirmed()) >= c.deliveries[2]!.position!, 'confirmed at the third');
}, 60_000);
