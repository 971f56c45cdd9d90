/**
 * row-changes' subscriber lease (triggers/outbox-subscription.ts, REVIEW7 R137), the rules the
 * mutation run of 2026-11-30 found unpinned: the holder renews the lease while idle and close()
 * releases it even after renewals; a standby waits a second between attempts (no busy loop) and
 * takes over promptly however long it waited; a standby refused by an untrusted schema owner reports
 * it and backs off; an older activation whose upgrade waits for a lock reports it once; a cut LISTEN
 * session is reported and the subscription goes on; nothing reaches the host after close() began.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, deactivateTrigger, pollTrigger, subscribeTrigger, type TriggerEvent, type TriggerSubscription } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { waitFor } from './helpers.js';

const KEY = 'row-changes';
const owner = `rcowner_${randomBytes(4).toString('hex')}`;
const opened: TriggerSubscription[] = [];
const clients: pg.Client[] = [];
const db = useTestDatabase('rcleasedge', {
  beforeDrop: async () => {
    await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
    await db.sql(`DROP ROLE IF EXISTS ${owner}`);
  },
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
  await Promise.all(opened.splice(0).map((s) => s.close()));
  await db.sql('DROP SCHEMA IF EXISTS pgactions CASCADE');
  await db.sql('DROP TABLE IF EXISTS orders');
}, 30_000);

const request = (connection: object = {}, config: object = {}) => ({ connection: { ...db.config, ...connection }, config: { tables: ['orders'], ...config } });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function setup(connection: object = {}) {
  await db.sql('CREATE TABLE orders (id int PRIMARY KEY)');
  await activateTrigger(KEY, request(connection));
}

async function cursorTable(): Promise<string> {
  const [row] = await db.sql<{ name: string }>("SELECT 'pgactions.' || quote_ident(relname) AS name FROM pg_class WHERE relnamespace = to_regnamespace('pgactions') AND relname LIKE 'rc\\_%\\_cursor'");
  return row!.name;
}

async function cursor(): Promise<{ acked: number; leader: string | null; leader_pid: number | null; until: number | null }> {
  const [row] = await db.sql<{ acked: string; leader: string | null; leader_pid: number | null; until: string | null }>(
    `SELECT acked, leader, leader_pid, (extract(epoch FROM lease_until) * 1000)::bigint AS until FROM ${await cursorTable()}`,
  );
  return { acked: Number(row!.acked), leader: row!.leader, leader_pid: row!.leader_pid, until: row!.until === null ? null : Number(row!.until) };
}

async function subscribe(handler: (events: TriggerEvent[]) => Promise<void> | void = () => {}, connection: object = {}, config: object = {}) {
  const keys: number[] = [];
  const errors: { error: unknown; at: number }[] = [];
  const subscription = await subscribeTrigger(KEY, { ...request(connection, config), onError: (error) => void errors.push({ error, at: Date.now() }) }, async (events) => {
    keys.push(...events.map((e) => (e.key as { id: number }).id));
    await handler(events);
  });
  opened.push(subscription);
  const after = () => (subscription.state.position as { after: number }).after;
  return { keys, errors, subscription, after };
}

async function closed(s: TriggerSubscription): Promise<void> {
  await s.close();
  opened.splice(opened.indexOf(s), 1);
}

async function otherSession(): Promise<pg.Client> {
  const client = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
  client.on('error', () => undefined);
  await client.connect();
  clients.push(client);
  return client;
}

/** Transactions of this database so far, committed or rolled back (a refused read rolls back). */
const transactions = async () => Number((await db.sql<{ n: string }>('SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()'))[0]!.n);

test('the holder renews its lease while idle (every few seconds), and close() after renewals still releases the lease', async () => {
  await setup();
  const c = await subscribe();
  await db.sql('INSERT INTO orders VALUES (1)');
  await waitFor(() => c.keys.length === 1, 'the change');
  await waitFor(async () => (await cursor()).acked === c.after(), 'its acknowledgement');
  const { leader, until: first } = await cursor();
  expect(leader).toMatch(/^[0-9a-f-]{36}$/);
  // Idle (the next read is 30 s away): only the renewal moves lease_until, every 3 s. Two renewals in a row.
  const renewed = async (than: number) => {
    const { until } = await cursor();
    return until !== null && until > than ? until : 0;
  };
  const second = await waitFor(() => renewed(first!), 'a renewal', 10_000);
  await waitFor(() => renewed(second), 'the next renewal', 10_000);
  expect((await cursor()).leader).toBe(leader);
  await closed(c.subscription);
  expect((await cursor()).leader).toBeNull(); // released: a standby takes over at its next attempt
}, 60_000);

test('a standby tries for the lease once a second (no busy loop) and takes it over within seconds of its release, however long it waited', async () => {
  await setup();
  const holder = await subscribe();
  await waitFor(async () => (await cursor()).leader !== null, 'the lease taken');
  const standby = await subscribe();
  await db.sql('INSERT INTO orders VALUES (1)');
  await waitFor(() => holder.keys.length === 1, 'the holder\'s change');
  await waitFor(async () => (await cursor()).acked === holder.after(), 'its acknowledgement');
  const before = await transactions();
  await sleep(6000);
  // Each second the standby checks the schema's owner and tries the UPDATE (two transactions); the holder renews every 3 s.
  const spent = await transactions() - before;
  expect(spent).toBeLessThan(60); // about 30 measured at load 30; a standby without its wait: about 160
  await sleep(2000);
  expect(standby.keys).toEqual([]);
  const { leader: held } = await cursor();
  await closed(holder.subscription);
  const releasedAt = Date.now();
  // No change, so no NOTIFY: only the standby's own timer brings it to try again, after about 9 s of waiting
  // (one that backed off exponentially, 250 ms doubled at each attempt, would now wait about 8 s more).
  await waitFor(async () => ![null, held].includes((await cursor()).leader), 'the standby to take the lease', 30_000);
  expect(Date.now() - releasedAt).toBeLessThan(4000);
  await db.sql('INSERT INTO orders VALUES (2)');
  await waitFor(() => standby.keys.length === 1, 'the standby\'s first change', 15_000);
  expect(standby.keys).toEqual([2]);
  expect(standby.errors).toEqual([]);
}, 90_000);

test('a standby refused by an untrusted owner of the schema reports PERMISSION_DENIED at each attempt, backing off 250, 500, 1,000, 2,000 ms', async () => {
  await db.sql(`CREATE ROLE ${owner} NOLOGIN`);
  await setup();
  const holder = await subscribe();
  await waitFor(async () => (await cursor()).leader !== null, 'the lease taken');
  const standby = await subscribe();
  await sleep(300);
  await db.sql(`ALTER SCHEMA pgactions OWNER TO ${owner}`);
  await waitFor(() => standby.errors.length >= 5, 'five refused attempts', 20_000);
  const codes = standby.errors.map(({ error }) => (error as { code?: string }).code);
  expect(codes.slice(0, 5)).toEqual(Array(5).fill('PERMISSION_DENIED'));
  expect((standby.errors[0]!.error as Error).message).toContain(owner);
  const at = standby.errors.map((e) => e.at);
  // Nothing nudges the standby here (no NOTIFY): each wait is its own timer's.
  [500, 1000, 2000].forEach((wait, i) => expect(at[i + 2]! - at[i + 1]!).toBeGreaterThanOrEqual(wait - 20));
  expect(holder.keys).toEqual([]);
  await db.sql('ALTER SCHEMA pgactions OWNER TO CURRENT_USER');
}, 60_000);

test('an activation made before the lease, its cursor locked by another session: the upgrade reports LOCK_NOT_AVAILABLE once, naming itself, then upgrades and delivers', async () => {
  const bounded = { statementTimeoutMs: 2000 }; // the upgrade waits 1 s for its lock
  await setup(bounded);
  const table = await cursorTable();
  await db.sql(`ALTER TABLE ${table} DROP COLUMN leader, DROP COLUMN leader_pid, DROP COLUMN leader_started, DROP COLUMN lease_until`);
  const reader = await otherSession();
  await reader.query('BEGIN');
  await reader.query(`SELECT acked FROM ${table}`); // holds ACCESS SHARE: the upgrade's ALTER TABLE waits for it
  const c = await subscribe(() => {}, bounded);
  await waitFor(() => c.errors.length >= 1, 'the upgrade\'s failure', 15_000);
  await sleep(3500); // three more attempts, each failing the same way
  expect(c.errors).toHaveLength(1);
  const failure = c.errors[0]!.error as { code: string; message: string; fixes: string[] };
  expect(failure.code).toBe('LOCK_NOT_AVAILABLE');
  expect(failure.message).toContain('row-changes subscription (adding the lease to an activation made by an older version)');
  expect(failure.fixes.join('\n')).toContain('then subscribe again, or activate the trigger again.');
  await reader.query('COMMIT');
  await db.sql('INSERT INTO orders VALUES (1)');
  await waitFor(() => c.keys.length === 1, 'the change once the lock is gone', 15_000);
  expect((await cursor()).leader).toMatch(/^[0-9a-f-]{36}$/);
  expect(c.errors).toHaveLength(1);
}, 60_000);

test('the holder\'s LISTEN session cut: reported to onError; the subscription reconnects, leads again and delivers', async () => {
  await setup();
  const c = await subscribe();
  const pid = await waitFor(async () => (await cursor()).leader_pid, 'the lease taken');
  await db.sql('SELECT pg_terminate_backend($1)', [pid]);
  await waitFor(() => c.errors.length >= 1, 'the cut reported', 15_000);
  await waitFor(async () => ((await cursor()).leader_pid ?? pid) !== pid, 'the lease taken again from a new session', 20_000);
  await db.sql('INSERT INTO orders VALUES (1)');
  await waitFor(() => c.keys.length === 1, 'the change', 15_000);
}, 60_000);

test('close() while a read waits for the cursor row: the batch read is not handed to the host, and the next subscriber gets it', async () => {
  await setup();
  const c = await subscribe();
  await waitFor(async () => (await cursor()).leader !== null, 'the lease taken');
  const locker = await otherSession();
  await locker.query('BEGIN');
  await locker.query(`SELECT 1 FROM ${await cursorTable()} FOR UPDATE`); // the read function's first UPDATE waits here
  await db.sql('INSERT INTO orders VALUES (1)'); // NOTIFY: the holder reads, and waits
  await sleep(1000);
  const closing = c.subscription.close();
  await sleep(500);
  await locker.query('COMMIT'); // the read completes while close() runs
  await closing;
  opened.splice(opened.indexOf(c.subscription), 1);
  expect(c.keys).toEqual([]);
  expect(c.errors).toEqual([]);
  expect((await pollTrigger(KEY, request())).events.map((e) => (e.key as { id: number }).id)).toEqual([1]); // not acknowledged
}, 60_000);

test('close() while a handler runs that then throws: the failure is not reported (the batch is not acknowledged and comes again)', async () => {
  await setup();
  let fail!: () => void;
  const failing = new Promise<void>((resolve) => (fail = resolve));
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const c = await subscribe(async () => {
    started();
    await failing;
    throw new Error('flow failed after close');
  });
  await db.sql('INSERT INTO orders VALUES (1)');
  await running;
  const closing = c.subscription.close();
  await sleep(200);
  fail();
  await closing;
  opened.splice(opened.indexOf(c.subscription), 1);
  expect(c.errors).toEqual([]);
  expect((await pollTrigger(KEY, request())).events.map((e) => (e.key as { id: number }).id)).toEqual([1]);
}, 60_000);

test('deactivated under a running subscription: the holder\'s reads report TRIGGER_NOT_ACTIVE to onError (a failed read, not a lease lost to another subscriber); a standby reports nothing (it has no activation to upgrade)', async () => {
  await setup();
  const c = await subscribe(() => {}, {}, { intervalSeconds: 1 });
  await waitFor(async () => (await cursor()).leader !== null, 'the lease taken');
  const standby = await subscribe(() => {}, {}, { intervalSeconds: 1 });
  await deactivateTrigger(KEY, request());
  await waitFor(() => c.errors.length >= 1, 'the failed read reported', 15_000);
  expect(c.errors.map(({ error }) => (error as { code?: string }).code)).toContain('TRIGGER_NOT_ACTIVE');
  await sleep(2500); // two attempts of the standby, each failing to find the cursor
  expect(standby.errors).toEqual([]);
}, 60_000);

test('a holder that lost the lease without noticing: its refused read is no error for the host; it stands by, then leads again once the lease is free', async () => {
  await setup();
  const c = await subscribe();
  await waitFor(async () => (await cursor()).leader !== null, 'the lease taken');
  await db.sql(`UPDATE ${await cursorTable()} SET leader = 'someone else', lease_until = now() + interval '1 hour'`);
  await db.sql('INSERT INTO orders VALUES (1)'); // NOTIFY: the holder reads at once, and is refused
  await sleep(1500);
  expect(c.keys).toEqual([]);
  expect(c.errors).toEqual([]);
  await db.sql(`UPDATE ${await cursorTable()} SET leader = NULL, lease_until = NULL`);
  await waitFor(() => c.keys.length === 1, 'the change once the lease is free', 15_000);
  expect(c.errors).toEqual([]);
}, 60_000);
