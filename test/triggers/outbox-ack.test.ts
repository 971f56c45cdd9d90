/**
 * row-changes' acknowledgement over a subscription (triggers/outbox-subscription.ts), one cheap case
 * per rule, for mutation testing: the position in the database (the outbox cursor's `acked`) moves
 * to a batch only after its handler resolved, by the next read; a batch whose handler throws comes
 * again with the same ids, and the retry waits grow from 250 ms again after a success; close() while
 * a handler runs acknowledges that batch once it resolves, so the next subscriber starts after it.
 */
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerEvent, type TriggerSubscription } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { waitFor } from './helpers.js';

const KEY = 'row-changes';
const db = useTestDatabase('rcack');
const opened: TriggerSubscription[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  await db.sql('DROP SCHEMA IF EXISTS pgactions CASCADE');
  await db.sql('DROP TABLE IF EXISTS orders');
}, 30_000);

const request = () => ({ connection: db.config, config: { tables: ['orders'] } });

async function setup() {
  await db.sql('CREATE TABLE orders (id int PRIMARY KEY, note text)');
  await activateTrigger(KEY, request());
}

/** The position acknowledged in the database (what a new subscriber or a poll without state starts after). */
async function acked(): Promise<number> {
  const [table] = await db.sql<{ name: string }>("SELECT 'pgactions.' || quote_ident(relname) AS name FROM pg_class WHERE relnamespace = to_regnamespace('pgactions') AND relname LIKE '%\\_cursor'");
  const [row] = await db.sql<{ acked: string }>(`SELECT acked FROM ${table!.name}`);
  return Number(row!.acked);
}

async function subscribe(handler: (events: TriggerEvent[], call: number) => Promise<void> | void, config: object = {}) {
  const batches: string[][] = [];
  const times: number[] = [];
  const errors: unknown[] = [];
  const states: unknown[] = [];
  const base = request();
  const subscription = await subscribeTrigger(KEY, { ...base, config: { ...base.config, ...config }, onState: (s) => void states.push(s), onError: (e) => void errors.push(e) }, async (events) => {
    batches.push(events.map((e) => e.id));
    times.push(Date.now());
    await handler(events, batches.length);
  });
  opened.push(subscription);
  const after = () => (subscription.state.position as { after: number }).after;
  return { batches, times, errors, states, subscription, after };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
};
const unacknowledged = async () => (await pollTrigger(KEY, request())).events.map((e) => e.id);

test('a batch is acknowledged in the database only once its handler resolved, and is not delivered again', async () => {
  await setup();
  const hold = gate();
  const c = await subscribe(async (_events, call) => {
    if (call === 1) await hold.opened;
  });
  await db.sql("INSERT INTO orders VALUES (1, 'a'), (2, 'b')");
  await waitFor(() => c.batches.length === 1, 'the first batch');
  for (let i = 0; i < 4; i++) {
    expect(await acked()).toBe(0);
    await sleep(250);
  }
  expect(await unacknowledged()).toEqual(c.batches[0]); // a host polling from the database's position would get it again
  hold.open();
  await waitFor(async () => (await acked()) > 0, 'the acknowledgement');
  expect(await acked()).toBe(c.after());
  expect(await unacknowledged()).toEqual([]);
  await db.sql("INSERT INTO orders VALUES (3, 'c')");
  await waitFor(() => c.batches.length === 2, 'the next change');
  await waitFor(async () => (await acked()) === c.after(), 'its acknowledgement');
  await sleep(300);
  expect(c.batches.map((b) => b.length)).toEqual([2, 1]);
  expect(new Set(c.batches.flat()).size).toBe(3);
  expect(c.errors).toEqual([]);
}, 60_000);

test('a throwing handler gets the same batch again, same ids, acknowledged only after it succeeds; the retry wait starts again at 250 ms after a success', async () => {
  await setup();
  const failing = new Set([1, 2, 3, 4, 6]); // four failures in a row (waits 250, 500, 1000, 2000 ms), a success, then one more failure
  const c = await subscribe((_events, call) => {
    if (failing.has(call)) throw new Error(`flow failed (call ${call})`);
  });
  await db.sql("INSERT INTO orders VALUES (1, 'a'), (2, 'b')");
  await waitFor(() => c.batches.length >= 3, 'two redeliveries');
  expect(await acked()).toBe(0);
  await waitFor(() => c.batches.length >= 5, 'the successful delivery', 30_000);
  expect(c.batches.slice(0, 5).every((b) => JSON.stringify(b) === JSON.stringify(c.batches[0]))).toBe(true);
  await waitFor(async () => (await acked()) === c.after() && c.after() > 0, 'the acknowledgement');
  await db.sql("INSERT INTO orders VALUES (3, 'c')");
  await waitFor(() => c.batches.length >= 7, 'the next change, failed once, then delivered again', 30_000);
  expect(c.batches[6]).toEqual(c.batches[5]);
  expect(c.batches[5]).toHaveLength(1);
  // Without the reset the wait after this failure would be 4,000 ms (the fifth in a row).
  expect(c.times[6]! - c.times[5]!).toBeLessThan(2500);
  // The waits before that grew: 500, 1,000, 2,000 ms after the second, third and fourth failures (never shorter; longer
  // on a busy machine). Not the first (250 ms): the INSERT's NOTIFY may come during that batch and cut its wait short.
  [500, 1000, 2000].forEach((wait, i) => expect(c.times[i + 2]! - c.times[i + 1]!).toBeGreaterThanOrEqual(wait - 20));
  expect(c.errors.map((e) => (e as Error).message)).toEqual([1, 2, 3, 4, 6].map((call) => `flow failed (call ${call})`));
  await waitFor(async () => (await acked()) === c.after(), 'its acknowledgement');
  expect(await unacknowledged()).toEqual([]);
}, 60_000);

test('close() while a handler runs: the batch is acknowledged once it resolves, so the next subscriber starts after it', async () => {
  await setup();
  const started = gate();
  const c = await subscribe(async () => {
    started.open();
    await sleep(1000);
  });
  await db.sql("INSERT INTO orders VALUES (1, 'a'), (2, 'b')");
  await started.opened;
  await c.subscription.close();
  opened.splice(opened.indexOf(c.subscription), 1);
  expect(c.after()).toBeGreaterThan(0);
  expect(await acked()).toBe(c.after());
  expect(await unacknowledged()).toEqual([]);
  const next = await subscribe(() => {});
  await db.sql("INSERT INTO orders VALUES (3, 'c')");
  await waitFor(() => next.batches.length === 1, 'the next change');
  await sleep(300);
  expect(next.batches).toHaveLength(1);
  expect(next.batches[0]).toHaveLength(1);
  expect(c.batches.flat()).not.toContain(next.batches[0]![0]);
}, 60_000);

test('idle: an empty read hands nothing to the host and the next read waits intervalSeconds (no busy loop)', async () => {
  await setup();
  const c = await subscribe(() => {}, { intervalSeconds: 1 });
  await db.sql("INSERT INTO orders VALUES (1, 'a')");
  await waitFor(() => c.batches.length === 1 && c.states.length === 1, 'the change handled');
  await waitFor(async () => (await acked()) === c.after(), 'its acknowledgement');
  const commits = async () => Number((await db.sql<{ n: string }>('SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()'))[0]!.n);
  const before = await commits();
  await sleep(5000); // five intervals: five empty reads
  expect(await commits() - before).toBeLessThan(40); // a loop without its wait reads hundreds of times
  expect(c.states).toHaveLength(1); // an empty read is no batch: the host's state is not touched
  expect(c.batches).toHaveLength(1);
  expect(c.errors).toEqual([]);
}, 60_000);

test('a standby that takes the lease over starts after what the previous holder acknowledged, not from its own older start', async () => {
  await setup();
  // Both start at the same acknowledged position (0); whichever takes the lease first holds it (a race under load).
  const both = [await subscribe(() => {}), await subscribe(() => {})];
  await db.sql("INSERT INTO orders VALUES (1, 'a')");
  await waitFor(() => both.some((c) => c.batches.length === 1), 'the holder\'s batch');
  const first = both.find((c) => c.batches.length === 1)!;
  const standby = both.find((c) => c !== first)!;
  await waitFor(async () => (await acked()) === first.after(), 'its acknowledgement');
  expect(standby.batches).toEqual([]);
  await first.subscription.close(); // releases the lease
  opened.splice(opened.indexOf(first.subscription), 1);
  await db.sql("INSERT INTO orders VALUES (2, 'b')");
  await waitFor(() => standby.batches.length >= 1, 'the standby\'s first batch', 30_000);
  await sleep(300);
  expect(standby.batches).toHaveLength(1);
  expect(standby.batches[0]).toHaveLength(1); // only the change after the takeover
  expect(first.batches[0]).not.toContain(standby.batches[0]![0]);
}, 60_000);
