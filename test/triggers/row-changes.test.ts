/**
 * row-changes against a real server: what activation installs and deactivation removes, the
 * events (op, key, new, old), late commits through the outbox, a 1 MB row, selectable
 * operations, retention, redelivery with the same ids, leftovers, 100 activate/deactivate cycles.
 */
import { closeAll } from '../../connection/index.js';
import { activateTrigger, deactivateTrigger, listActivations, pollTrigger, removeActivation, sampleEvents, subscribeTrigger, type TriggerEvent } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf, poll, session, waitFor } from './helpers.js';

const db = useTestDatabase('rowchanges');

beforeEach(async () => {
  for (const activation of await listActivations(db.config)) await removeActivation(db.config, activation.fingerprint);
  await db.sql('DROP TABLE IF EXISTS orders, notes, audit');
  await db.sql("CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, status text NOT NULL DEFAULT 'new', body text)");
  await db.sql('CREATE TABLE notes (a int, b int, note text, PRIMARY KEY (b, a))');
});

const base = { tables: ['orders'] };
const request = (config: object = base, state?: unknown) => ({ connection: db.config, config, state });

/** Everything of ours in the database: schema, tables, functions, triggers. */
async function ourObjects(): Promise<string[]> {
  const rows = await db.sql<{ o: string }>(`
    SELECT 'schema ' || nspname AS o FROM pg_namespace WHERE nspname = 'pgactions'
    UNION ALL SELECT 'relation ' || relname FROM pg_class WHERE relnamespace = to_regnamespace('pgactions')
    UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proname LIKE 'rc\\_%' OR pronamespace = to_regnamespace('pgactions')
    UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname LIKE 'pg\\_actions\\_%'
    ORDER BY 1`);
  return rows.map((r) => r.o);
}

test('not activated: poll says so plainly', async () => {
  const error = await failureOf(pollTrigger('row-changes', request()));
  expect(error.code).toBe('TRIGGER_NOT_ACTIVE');
});

test('INSERT, UPDATE and DELETE arrive with op, key, new and old; the state moves on; a replayed state redelivers the same ids', async () => {
  await activateTrigger('row-changes', request());
  const start = await poll('row-changes', request());
  await db.sql("INSERT INTO orders (customer) VALUES ('Ada')");
  await db.sql("UPDATE orders SET status = 'paid' WHERE id = 1");
  await db.sql('DELETE FROM orders WHERE id = 1');
  const first = await poll('row-changes', request(base, start.state));
  expect(first.events.map((e) => [e.op, e.key])).toEqual([['INSERT', { id: 1 }], ['UPDATE', { id: 1 }], ['DELETE', { id: 1 }]]);
  expect(first.events[0]).toMatchObject({ schema: 'public', table: 'orders', new: { id: 1, customer: 'Ada', status: 'new' }, old: null });
  expect(first.events[1]).toMatchObject({ new: { status: 'paid' }, old: { status: 'new' } });
  expect(first.events[2]).toMatchObject({ new: null, old: { id: 1, status: 'paid' } });
  expect(new Set(first.events.map((e) => e.id)).size).toBe(3);
  const replay = await poll('row-changes', request(base, start.state));
  expect(replay.events.map((e) => e.id)).toEqual(first.events.map((e) => e.id));
  expect((await poll('row-changes', request(base, first.state))).events).toEqual([]);
});

test('a composite primary key is the event key; a rolled-back write leaves no event', async () => {
  const config = { tables: ['notes'] };
  await activateTrigger('row-changes', request(config));
  const start = await poll('row-changes', request(config));
  const writer = await session(db);
  try {
    await writer.query('BEGIN');
    await writer.query("INSERT INTO notes VALUES (1, 2, 'gone')");
    await writer.query('ROLLBACK');
  } finally {
    await writer.end();
  }
  await db.sql("INSERT INTO notes VALUES (3, 4, 'kept')");
  const { events } = await poll('row-changes', request(config, start.state));
  expect(events.map((e) => e.key)).toEqual([{ a: 3, b: 4 }]);
});

test('operations are selectable', async () => {
  const config = { tables: ['orders'], operations: ['DELETE'] };
  await activateTrigger('row-changes', request(config));
  const start = await poll('row-changes', request(config));
  await db.sql("INSERT INTO orders (customer) VALUES ('Ada')");
  await db.sql("UPDATE orders SET status = 'paid'");
  await db.sql('DELETE FROM orders');
  expect((await poll('row-changes', request(config, start.state))).events.map((e) => e.op)).toEqual(['DELETE']);
});

test('late commit: A writes first and commits last; both are delivered exactly once', async () => {
  await activateTrigger('row-changes', request());
  const start = await poll('row-changes', request());
  const a = await session(db);
  const b = await session(db);
  try {
    await a.query('BEGIN');
    await a.query("INSERT INTO orders (customer) VALUES ('A')");
    await b.query("INSERT INTO orders (customer) VALUES ('B')");
    const during = await poll('row-changes', request(base, start.state));
    await a.query('COMMIT');
    const after = await poll('row-changes', request(base, during.state));
    const last = await poll('row-changes', request(base, after.state));
    const customers = [...during.events, ...after.events, ...last.events].map((e) => (e.new as { customer: string }).customer);
    expect(customers).toEqual(['B', 'A']);
  } finally {
    await a.end();
    await b.end();
  }
});

test('two changes of one row by overlapping transactions arrive in the order they happened', async () => {
  await db.sql("INSERT INTO orders (customer) VALUES ('x')");
  await activateTrigger('row-changes', request());
  const start = await poll('row-changes', request());
  const first = await session(db);
  const second = await session(db);
  try {
    await first.query('BEGIN');
    await first.query("INSERT INTO orders (customer) VALUES ('other')"); // first writes (gets its xid) early
    await second.query("UPDATE orders SET status = 'one' WHERE id = 1"); // second changes row 1 and commits
    await first.query("UPDATE orders SET status = 'two' WHERE id = 1"); // then first changes row 1
    await first.query('COMMIT');
    const { events } = await poll('row-changes', request(base, start.state));
    expect(events.filter((e) => e.op === 'UPDATE').map((e) => (e.new as { status: string }).status)).toEqual(['one', 'two']);
  } finally {
    await first.end();
    await second.end();
  }
});

test('a 1 MB row inserted and updated: the writes succeed and the events carry the row', async () => {
  await activateTrigger('row-changes', request());
  const start = await poll('row-changes', request());
  const big = 'x'.repeat(1024 * 1024);
  await db.sql('INSERT INTO orders (customer, body) VALUES ($1, $2)', ['big', big]);
  await db.sql("UPDATE orders SET body = body || 'y', status = 'paid'");
  const { events } = await poll('row-changes', request(base, start.state));
  expect(events.map((e) => e.op)).toEqual(['INSERT', 'UPDATE']);
  expect((events[0]!.new as { body: string }).body).toBe(big);
  expect((events[1]!.new as { body: string }).body).toBe(big + 'y');
  expect((events[1]!.old as { body: string }).body).toBe(big);
});

test('retention: acknowledged changes are pruned; a state older than the outbox keeps is refused', async () => {
  const config = { tables: ['orders'], retentionMinutes: 0 };
  await activateTrigger('row-changes', request(config));
  const start = await poll('row-changes', request(config));
  await db.sql("INSERT INTO orders (customer) SELECT 'c' || g FROM generate_series(1, 5) g");
  const read = await poll('row-changes', request(config, start.state));
  expect(read.events).toHaveLength(5);
  await poll('row-changes', request(config, read.state)); // acknowledges
  await poll('row-changes', request(config, read.state)); // prunes what is acknowledged and older than 0 minutes
  const [activation] = await listActivations(db.config);
  const [outbox] = await db.sql<{ n: string }>(`SELECT count(*) AS n FROM pgactions."rc_${activation!.fingerprint}_outbox"`);
  expect(Number(outbox!.n)).toBe(0);
  const stale = await failureOf(pollTrigger('row-changes', request(config, start.state)));
  expect(stale.code).toBe('TRIGGER_STATE_INVALID');
  expect(stale.message).toMatch(/pruned/);
});

test('deactivation removes exactly its objects: another activation and the user\'s own trigger stay', async () => {
  await db.sql('CREATE TABLE audit (n int)');
  await db.sql("CREATE FUNCTION count_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit VALUES (1); RETURN NULL; END $$");
  await db.sql('CREATE TRIGGER users_own AFTER INSERT ON orders FOR EACH ROW EXECUTE PROCEDURE count_audit()');
  const mine = { tables: ['orders'], name: 'mine' };
  const other = { tables: ['orders', 'notes'], name: 'other' };
  await activateTrigger('row-changes', request(mine));
  await activateTrigger('row-changes', request(mine)); // idempotent
  const start = await poll('row-changes', request(mine));
  await db.sql("INSERT INTO orders (customer) VALUES ('once')");
  expect((await poll('row-changes', request(mine, start.state))).events).toHaveLength(1);
  await activateTrigger('row-changes', request(other));
  expect(await listActivations(db.config)).toHaveLength(2);
  await deactivateTrigger('row-changes', request(mine));
  const left = await listActivations(db.config);
  expect(left).toHaveLength(1);
  expect(left[0]!.complete).toBe(true);
  // One statement trigger per operation on each of its two tables, and each table's partition guard.
  expect(left[0]!.objects.filter((o) => o.startsWith('trigger'))).toHaveLength(8);
  expect((await db.sql("SELECT tgname FROM pg_trigger WHERE tgname = 'users_own'"))).toHaveLength(1);
  await db.sql("INSERT INTO orders (customer) VALUES ('still works')");
  expect(await db.sql('SELECT * FROM audit')).toHaveLength(2); // the user's trigger saw both inserts
  await deactivateTrigger('row-changes', request(other));
  expect(await ourObjects()).toEqual([]);
});

test('a damaged leftover of a crashed activation is found and removed', async () => {
  await activateTrigger('row-changes', request());
  const [activation] = await listActivations(db.config);
  await db.sql(`DROP TABLE pgactions."rc_${activation!.fingerprint}_cursor"`); // half an activation
  const [found] = await listActivations(db.config);
  expect(found).toMatchObject({ fingerprint: activation!.fingerprint, complete: false });
  expect(found!.objects).toEqual(expect.arrayContaining([`trigger pg_actions_rc_${activation!.fingerprint}_insert on public.orders`]));
  await removeActivation(db.config, found!.fingerprint);
  expect(await ourObjects()).toEqual([]);
  await db.sql("INSERT INTO orders (customer) VALUES ('writes still work')");
});

test('sampleEvents: before activation it says so; after, it shows recorded changes', async () => {
  expect((await sampleEvents('row-changes', request())).warnings.join(' ')).toMatch(/Not activated/);
  await activateTrigger('row-changes', request());
  await db.sql("INSERT INTO orders (customer) VALUES ('Ada')");
  expect((await sampleEvents('row-changes', request())).events).toHaveLength(1);
});

test('subscribe: woken by NOTIFY; a handler that throws gets the same batch again, same ids', async () => {
  await activateTrigger('row-changes', request());
  const batches: string[][] = [];
  const subscription = await subscribeTrigger('row-changes', { ...request(), onError: () => undefined }, async (events: TriggerEvent[]) => {
    batches.push(events.map((e) => e.id));
    if (batches.length === 1) throw new Error('flow failed');
  });
  try {
    await db.sql("INSERT INTO orders (customer) VALUES ('a'), ('b')");
    await waitFor(() => batches.length >= 2, 'redelivery');
    expect(batches[1]).toEqual(batches[0]);
    await db.sql("INSERT INTO orders (customer) VALUES ('c')");
    await waitFor(() => batches.length >= 3, 'the next change');
    expect(batches[2]).toHaveLength(1);
  } finally {
    await subscription.close();
  }
  // the position is shared in the database: a new subscription starts after what was handled
  const after = await poll('row-changes', request());
  expect(after.events).toEqual([]);
});

test('the subscriber\'s connections terminated in the middle of a batch: nothing is lost, redelivery keeps ids', async () => {
  await activateTrigger('row-changes', request());
  const seen: string[][] = [];
  const keys: number[] = [];
  const subscription = await subscribeTrigger('row-changes', { ...request(), onError: () => undefined }, async (events: TriggerEvent[]) => {
    seen.push(events.map((e) => e.id));
    if (seen.length === 1) {
      // Every session of ours (lease, LISTEN, pool) is cut while this batch is being handled.
      await db.sql('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    }
    keys.push(...events.map((e) => (e.key as { id: number }).id));
  });
  try {
    await db.sql("INSERT INTO orders (customer) VALUES ('a'), ('b'), ('c')");
    await waitFor(() => keys.length >= 3, 'the first batch');
    await db.sql("INSERT INTO orders (customer) VALUES ('d')");
    await waitFor(() => new Set(keys).size >= 4, 'the change after the cut', 30_000);
    expect([...new Set(keys)]).toEqual([1, 2, 3, 4]);
    const ids = seen.flat();
    expect(new Set(ids).size).toBe(4); // a redelivered change (if any) came with the same id
  } finally {
    await subscription.close();
  }
});

test('100 activate / subscribe / close / deactivate cycles leave no session and no object behind', async () => {
  for (let i = 0; i < 100; i++) {
    await activateTrigger('row-changes', request());
    const subscription = await subscribeTrigger('row-changes', request(), () => undefined);
    await subscription.close();
    await deactivateTrigger('row-changes', request());
  }
  expect(await ourObjects()).toEqual([]);
  const others = "SELECT pid, application_name, query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'";
  // Only the step pool's idle connections may remain (it holds at most 10), not one per cycle.
  await waitFor(async () => (await db.sql(others)).length <= 10, 'no more than the pool');
  await closeAll();
  // A backend leaves pg_stat_activity shortly after its client disconnects: wait for it, on a busy machine.
  await waitFor(async () => (await db.sql(others)).length === 0, 'every session of ours to end').catch(async (error: Error) => {
    throw new Error(`${error.message}: ${JSON.stringify(await db.sql(others))}`);
  });
}, 180_000);
