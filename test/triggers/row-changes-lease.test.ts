/**
 * REVIEW7 R137: row-changes (and schema-changes) subscribers led through an advisory lock whose key
 * any role could compute (from object names in pg_class) and hold, so a LOGIN-only role could keep
 * every subscription on standby, silently. The lease is now the cursor row, which only pg-actions'
 * roles can write: such a role cannot stop deliveries. Two subscribers: one leads; when its
 * process is stopped and its session ends the other takes over within seconds; a holder that lost
 * the lease without noticing does not read (the read checks the lease under the cursor row's lock).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, deactivateTrigger, listActivations, subscribeTrigger, type TriggerEvent, type TriggerSubscription } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { waitFor } from './helpers.js';
import { subscriberProcess, type SubscriberProcess } from './subscriber-process.js';

const LOCK_CLASS = 0x70676163; // the advisory lock class earlier versions led and activated with
const intruder = `intruder_${randomBytes(4).toString('hex')}`;
const opened: TriggerSubscription[] = [];
const children: ChildProcess[] = [];
const clients: pg.Client[] = [];
const db = useTestDatabase('rclease', {
  beforeDrop: async () => {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
    await db.sql(`DROP ROLE IF EXISTS ${intruder}`);
  },
});

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${intruder} LOGIN PASSWORD 'intruder-pw'`); // no right on anything of pg-actions'
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  for (const child of children.splice(0)) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
  await db.sql('DROP SCHEMA IF EXISTS pgactions CASCADE');
  await db.sql('DROP TABLE IF EXISTS orders');
}, 30_000);

const request = () => ({ connection: db.config, config: { tables: ['orders'] } });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function asIntruder(): Promise<pg.Client> {
  const client = new pg.Client({ ...db.config, user: intruder, password: 'intruder-pw', ssl: false } as pg.ClientConfig);
  client.on('error', () => undefined);
  await client.connect();
  clients.push(client);
  return client;
}

async function cursorTable(): Promise<string> {
  const [row] = await db.sql<{ name: string }>("SELECT 'pgactions.' || quote_ident(relname) AS name FROM pg_class WHERE relnamespace = to_regnamespace('pgactions') AND relname LIKE 'rc\\_%\\_cursor'");
  return row!.name;
}

async function lease(): Promise<{ leader: string | null; leader_pid: number | null }> {
  const [row] = await db.sql<{ leader: string | null; leader_pid: number | null }>(`SELECT leader, leader_pid FROM ${await cursorTable()}`);
  return row!;
}

async function subscribe(onError: (error: unknown) => void = () => undefined) {
  const keys: number[] = [];
  const subscription = await subscribeTrigger('row-changes', { ...request(), onError }, (events: TriggerEvent[]) => {
    keys.push(...events.map((e) => (e.key as { id: number }).id));
  });
  opened.push(subscription);
  return { keys, subscription };
}

test('a LOGIN-only role that reads the fingerprint and holds the advisory keys of earlier versions stops nothing: deliveries go on', async () => {
  await db.sql('CREATE TABLE orders (id int PRIMARY KEY)');
  await activateTrigger('row-changes', request());
  const intruding = await asIntruder();
  const [{ relname }] = (await intruding.query("SELECT relname FROM pg_class WHERE relname ~ '^rc_[0-9a-f]{16}_cursor$'")).rows as [{ relname: string }];
  const fingerprint = /^rc_([0-9a-f]{16})_/.exec(relname)![1]!;
  // The key earlier versions led with, and their activation lock's: held, as anyone may.
  await intruding.query('SELECT pg_advisory_lock($1, $2), pg_advisory_lock($1, 0)', [LOCK_CLASS, Number.parseInt(fingerprint.slice(0, 8), 16) | 0]);
  // The lease itself is out of its reach: no right on the schema, let alone the cursor row.
  for (const attempt of [`UPDATE pgactions.${relname} SET leader = 'intruder'`, `SELECT 1 FROM pgactions.${relname} FOR UPDATE`]) {
    await expect(intruding.query(attempt)).rejects.toMatchObject({ code: '42501' });
  }
  const errors: unknown[] = [];
  const { keys } = await subscribe((error) => errors.push(error));
  await db.sql('INSERT INTO orders VALUES (1), (2)');
  await waitFor(() => keys.length >= 2, 'the changes delivered while the intruder holds the old keys', 15_000);
  expect(keys).toEqual([1, 2]);
  expect(errors).toEqual([]);
}, 60_000);

test('a holder whose lease was taken over without its noticing does not read: the next change goes to the new holder only', async () => {
  await db.sql('CREATE TABLE orders (id int PRIMARY KEY)');
  await activateTrigger('row-changes', request());
  const first = await subscribe();
  await db.sql('INSERT INTO orders VALUES (1)');
  await waitFor(() => first.keys.length === 1, 'the first change');
  const holder = (await lease()).leader;
  expect(holder).toMatch(/^[0-9a-f-]{36}$/);
  // What a standby does once the lease lapsed (the holder stopped renewing, e.g. a stalled process): the
  // holder learns of it only at its next renewal, seconds later. Its read in between must be refused.
  await db.sql(`UPDATE ${await cursorTable()} SET leader = 'someone else', lease_until = now() + interval '1 hour'`);
  await db.sql('INSERT INTO orders VALUES (2)'); // NOTIFY: the old holder reads at once
  await sleep(4000); // past its next renewal too
  expect(first.keys).toEqual([1]);
  expect((await lease()).leader).toBe('someone else');
  // The lease freed, it leads again and delivers the change (nothing lost).
  await db.sql(`UPDATE ${await cursorTable()} SET leader = NULL, lease_until = NULL`);
  await waitFor(() => first.keys.length === 2, 'the change once the lease is free again', 15_000);
  expect(first.keys).toEqual([1, 2]);
}, 60_000);

const worker = () =>
  subscriberProcess({ key: 'row-changes', connection: { ...db.config, sslMode: 'disable' }, config: request().config }, children);
const handled = (w: SubscriberProcess) => w.batches.flatMap((b) => b.keys);

test('two subscribers: one leads; its process stopped and its session terminated, the other takes over within seconds; no change handled by both', async () => {
  await db.sql('CREATE TABLE orders (id int PRIMARY KEY)');
  await activateTrigger('row-changes', request());
  const holder = await worker();
  await waitFor(async () => (await lease()).leader !== null, 'the worker to lead');
  const standby = await subscribe();
  await db.sql('INSERT INTO orders SELECT generate_series(1, 5)');
  await waitFor(() => handled(holder).length >= 5, 'the holder to handle the first changes');
  await sleep(1500); // a standby attempt or more
  expect(standby.keys).toEqual([]);
  // The holder stops (a frozen host) and its LISTEN session is cut: it cannot reconnect and take the lease back.
  holder.process.kill('SIGSTOP');
  const { leader_pid: pid } = await lease();
  await db.sql('SELECT pg_terminate_backend($1)', [pid]);
  const cutAt = Date.now();
  await db.sql('INSERT INTO orders SELECT generate_series(6, 10)');
  await waitFor(() => standby.keys.length >= 5, 'the standby to take over', 20_000);
  expect(Date.now() - cutAt).toBeLessThan(8000); // about a second, on a busy machine
  // The old holder wakes: it finds the lease taken and stays on standby, handling nothing more.
  holder.process.kill('SIGCONT');
  await sleep(2000);
  await db.sql('INSERT INTO orders SELECT generate_series(11, 15)');
  await waitFor(() => standby.keys.length >= 10, 'the later changes', 20_000);
  await sleep(2000);
  expect(handled(holder)).toEqual([1, 2, 3, 4, 5]);
  expect(standby.keys).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
}, 90_000);

test('activation and deactivation complete while a LOGIN-only role holds the activation lock key of earlier versions', async () => {
  await db.sql('CREATE TABLE orders (id int PRIMARY KEY)');
  const intruding = await asIntruder();
  await intruding.query('SELECT pg_advisory_lock($1, 0)', [LOCK_CLASS]);
  const bounded = { connection: { ...db.config, statementTimeoutMs: 3000 }, config: request().config };
  await activateTrigger('row-changes', bounded);
  await activateTrigger('row-changes', bounded); // again: in place
  const sc = { connection: bounded.connection, config: { schemas: ['public'] } };
  await activateTrigger('schema-changes', sc);
  await deactivateTrigger('schema-changes', sc);
  await deactivateTrigger('row-changes', bounded);
  expect(await db.sql("SELECT 1 FROM pg_namespace WHERE nspname = 'pgactions'")).toEqual([]);
}, 60_000);

test('an activation made before the lease existed (no lease columns): the subscriber adds them and delivers', async () => {
  await db.sql('CREATE TABLE orders (id int PRIMARY KEY)');
  await activateTrigger('row-changes', request());
  await db.sql(`ALTER TABLE ${await cursorTable()} DROP COLUMN leader, DROP COLUMN leader_pid, DROP COLUMN leader_started, DROP COLUMN lease_until`);
  const errors: unknown[] = [];
  const { keys } = await subscribe((error) => errors.push(error));
  await db.sql('INSERT INTO orders VALUES (1)');
  await waitFor(() => keys.length === 1, 'the change', 15_000);
  expect((await lease()).leader).toMatch(/^[0-9a-f-]{36}$/);
  expect(errors).toEqual([]);
}, 60_000);

test('a subscriber of an earlier version (reading without a lease id) is refused while a lease is live, and reads once it is released', async () => {
  await db.sql('CREATE TABLE orders (id int PRIMARY KEY)');
  await activateTrigger('row-changes', request());
  const current = await subscribe();
  await waitFor(async () => (await lease()).leader !== null, 'the lease taken');
  const read = (await cursorTable()).replace(/_cursor$/, '_read');
  const earlier = `SELECT count(*)::int AS n FROM ${read}(0, 10, interval '1 day', true)`; // what an earlier version's subscriber runs
  await expect(db.sql(earlier)).rejects.toMatchObject({ code: 'PGAL1' });
  await current.subscription.close();
  opened.splice(0);
  expect((await lease()).leader).toBeNull(); // close() released it
  expect(await db.sql(earlier)).toEqual([{ n: 0 }]);
}, 60_000);

test('activations and deactivations at once, while the schema is created and dropped, all complete (the races before the lock are retried)', async () => {
  await db.sql('CREATE TABLE orders (id int PRIMARY KEY)');
  const named = (name: string) => ({ connection: db.config, config: { tables: ['orders'], name } });
  await Promise.all(['a', 'b', 'c'].map((name) => activateTrigger('row-changes', named(name)))); // each creates the schema
  expect((await listActivations(db.config)).map((a) => a.complete)).toEqual([true, true, true]);
  await Promise.all([...['a', 'b', 'c'].map((name) => deactivateTrigger('row-changes', named(name))), activateTrigger('row-changes', named('d'))]);
  expect((await listActivations(db.config)).map((a) => a.complete)).toEqual([true]);
  await deactivateTrigger('row-changes', named('d'));
  await Promise.all([activateTrigger('row-changes', named('e')), deactivateTrigger('row-changes', named('e'))]);
  expect((await listActivations(db.config)).length).toBeLessThanOrEqual(1); // in either order, whole
}, 60_000);
