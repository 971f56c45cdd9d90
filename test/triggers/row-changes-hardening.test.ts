/**
 * row-changes findings of an attacker-style review, each against the real server: activating
 * twice (or concurrently, or over an old install with duplicate cursor rows) keeps one cursor;
 * partitions report the watched (root) table and its key; nobody but the owner may execute the
 * SECURITY DEFINER capture function.
 */
import { activateTrigger, listActivations, removeActivation, subscribeTrigger, type TriggerEvent } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { closeOutcome } from './closing.js';
import { poll, waitFor } from './helpers.js';

const db = useTestDatabase('rchard');

beforeEach(async () => {
  for (const activation of await listActivations(db.config)) await removeActivation(db.config, activation.fingerprint);
  await db.sql('DROP TABLE IF EXISTS orders, meas');
  await db.sql('CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL)');
});

const base = { tables: ['orders'] };
const request = (config: object = base, state?: unknown) => ({ connection: db.config, config, state });

async function cursorTable(): Promise<string> {
  const [row] = await db.sql<{ name: string }>("SELECT 'pgactions.' || quote_ident(relname) AS name FROM pg_class WHERE relnamespace = to_regnamespace('pgactions') AND relname LIKE '%\\_cursor'");
  return row!.name;
}

async function pollAndSubscribeWork(): Promise<void> {
  const start = await poll('row-changes', request());
  await db.sql("INSERT INTO orders (customer) VALUES ('Ada')");
  const polled = await poll('row-changes', request(base, start.state));
  expect(polled.events.map((e) => e.key)).toEqual([{ id: 1 }]);
  const seen: unknown[] = [];
  const errors: unknown[] = [];
  const subscription = await subscribeTrigger('row-changes', { ...request(), onError: (e) => errors.push(e) }, (events: TriggerEvent[]) => {
    seen.push(...events.map((e) => (e as unknown as { key: unknown }).key));
  });
  try {
    await db.sql("INSERT INTO orders (customer) VALUES ('Bob')");
    await waitFor(() => seen.some((k) => JSON.stringify(k) === '{"id":2}'), 'the subscribed change');
    expect(errors).toEqual([]);
  } finally {
    await subscription.close();
  }
}

test('F1: activating twice keeps one cursor row; poll and subscribe keep working', async () => {
  await activateTrigger('row-changes', request());
  await activateTrigger('row-changes', request());
  expect(await db.sql(`SELECT count(*)::int AS n FROM ${await cursorTable()}`)).toEqual([{ n: 1 }]);
  await pollAndSubscribeWork();
});

test('F1: two concurrent activations keep one cursor row', async () => {
  await Promise.all([activateTrigger('row-changes', request()), activateTrigger('row-changes', request())]);
  expect(await db.sql(`SELECT count(*)::int AS n FROM ${await cursorTable()}`)).toEqual([{ n: 1 }]);
  await pollAndSubscribeWork();
});

test('F1: re-activating an old install with duplicate cursor rows repairs it, keeping the row in use', async () => {
  await activateTrigger('row-changes', request());
  const start = await poll('row-changes', request());
  await db.sql("INSERT INTO orders (customer) VALUES ('Ada')");
  const first = await poll('row-changes', request(base, start.state));
  expect(first.events).toHaveLength(1);
  // Reproduce an install made before the singleton key: drop the key, add a second (fresh) row.
  const cursor = await cursorTable();
  await db.sql(`ALTER TABLE ${cursor} DROP COLUMN IF EXISTS one`);
  await db.sql(`INSERT INTO ${cursor} DEFAULT VALUES`);
  await activateTrigger('row-changes', request());
  expect(await db.sql(`SELECT count(*)::int AS n, max(stamped)::int AS stamped FROM ${cursor}`)).toEqual([{ n: 1, stamped: 1 }]);
  await db.sql("INSERT INTO orders (customer) VALUES ('Bob')");
  const next = await poll('row-changes', request(base, first.state));
  expect(next.events.map((e) => e.key)).toEqual([{ id: 2 }]);
});

test('F7: a change in a partition is reported as the configured partitioned table, with its key', async () => {
  await db.sql('CREATE TABLE meas (region text NOT NULL, id int NOT NULL, v int, PRIMARY KEY (region, id)) PARTITION BY LIST (region)');
  await db.sql("CREATE TABLE meas_eu PARTITION OF meas FOR VALUES IN ('eu')");
  const config = { tables: ['meas'] };
  await activateTrigger('row-changes', request(config));
  const start = await poll('row-changes', request(config));
  await db.sql("INSERT INTO meas VALUES ('eu', 1, 10)");
  await db.sql("CREATE TABLE meas_us PARTITION OF meas FOR VALUES IN ('us')"); // attached after activation
  await db.sql("INSERT INTO meas_us VALUES ('us', 2, 20)");
  await db.sql("UPDATE meas_eu SET v = 11 WHERE id = 1");
  const { events } = await poll('row-changes', request(config, start.state));
  expect(events.map((e) => [e.op, e.schema, e.table, e.key])).toEqual([
    ['INSERT', 'public', 'meas', { region: 'eu', id: 1 }],
    ['INSERT', 'public', 'meas', { region: 'us', id: 2 }],
    ['UPDATE', 'public', 'meas', { region: 'eu', id: 1 }],
  ]);
});

test('(b) the SECURITY DEFINER capture function is not executable by PUBLIC; writers still trigger it', async () => {
  await activateTrigger('row-changes', request());
  const start = await poll('row-changes', request());
  await db.sql('DROP ROLE IF EXISTS rc_writer');
  await db.sql('CREATE ROLE rc_writer');
  try {
    await db.sql('GRANT INSERT ON orders TO rc_writer; GRANT USAGE ON SEQUENCE orders_id_seq TO rc_writer');
    const [row] = await db.sql<{ public: boolean; writer: boolean }>(
      `SELECT bool_or(has_function_privilege('public', p.oid, 'EXECUTE')) AS public, bool_or(has_function_privilege('rc_writer', p.oid, 'EXECUTE')) AS writer
         FROM pg_proc p WHERE p.pronamespace = to_regnamespace('pgactions') AND p.proname LIKE '%\\_capture'`,
    );
    expect(row).toEqual({ public: false, writer: false });
    await db.sql("SET ROLE rc_writer; INSERT INTO orders (customer) VALUES ('via a writer'); RESET ROLE");
    const { events } = await poll('row-changes', request(base, start.state));
    expect(events.map((e) => e.key)).toEqual([{ id: 1 }]);
  } finally {
    await db.sql('RESET ROLE');
    await db.sql('DROP OWNED BY rc_writer; DROP ROLE rc_writer');
  }
});

test('(a) close() with a handler that never resolves lets go within a bound: lease released, the batch delivered again', async () => {
  await activateTrigger('row-changes', request());
  let calls = 0;
  const subscription = await subscribeTrigger('row-changes', request(), () => {
    calls++;
    return new Promise<void>(() => undefined); // a flow that hangs
  });
  await db.sql("INSERT INTO orders (customer) VALUES ('Ada')");
  await waitFor(() => calls > 0, 'the handler to be called');
  expect(await closeOutcome(subscription)).toBe('closed');
  const [cursor] = await db.sql<{ name: string }>("SELECT 'pgactions.' || quote_ident(relname) AS name FROM pg_class WHERE relnamespace = to_regnamespace('pgactions') AND relname LIKE 'rc\\_%\\_cursor'");
  expect(await db.sql(`SELECT leader FROM ${cursor!.name}`)).toEqual([{ leader: null }]); // the lease released
  const again = await poll('row-changes', request());
  expect(again.events.map((e) => e.key)).toEqual([{ id: 1 }]);
}, 90_000);
