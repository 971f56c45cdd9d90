/**
 * new-row and new-or-updated-row against a real server: cursor order and LIMIT, equal values
 * across a poll boundary, late commits, state checks, the index warning, subscribe redelivery.
 */
import { pollTrigger, sampleEvents, subscribeTrigger, type TriggerEvent } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf, poll, session, waitFor } from './helpers.js';

const db = useTestDatabase('newrow');

beforeEach(async () => {
  await db.sql('DROP TABLE IF EXISTS orders, tickets');
  await db.sql('CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())');
  await db.sql('CREATE TABLE tickets (id int PRIMARY KEY, status text NOT NULL, updated_at timestamptz NOT NULL)');
});

const ids = (events: Record<string, unknown>[]) => events.map((e) => (e.key as { id: number }).id);

describe('new-row', () => {
  const config = { table: 'orders', column: 'id', from: 'beginning' as const, batchSize: 2 };

  test('reads rows in cursor order, batchSize per poll, the rest next poll, nothing twice', async () => {
    await db.sql("INSERT INTO orders (customer) SELECT 'c' || g FROM generate_series(1, 5) g");
    const first = await poll('new-row', { connection: db.config, config });
    expect(ids(first.events)).toEqual([1, 2]);
    expect(first.events[0]).toMatchObject({ op: 'INSERT', schema: 'public', table: 'orders', key: { id: 1 }, new: { id: 1, customer: 'c1' } });
    const second = await poll('new-row', { connection: db.config, config, state: first.state });
    expect(ids(second.events)).toEqual([3, 4]);
    const third = await poll('new-row', { connection: db.config, config, state: second.state });
    expect(ids(third.events)).toEqual([5]);
    const empty = await poll('new-row', { connection: db.config, config, state: third.state });
    expect(empty.events).toEqual([]);
    expect(empty.state).toEqual(third.state);
  });

  test('the same state gives the same events with the same ids (redelivery after a crash)', async () => {
    await db.sql("INSERT INTO orders (customer) VALUES ('a'), ('b')");
    const once = await poll('new-row', { connection: db.config, config });
    const again = await poll('new-row', { connection: db.config, config });
    expect(again.events).toEqual(once.events);
    expect(new Set(once.events.map((e) => e.id)).size).toBe(2);
  });

  test('from "now" (the default) starts after the rows that exist', async () => {
    await db.sql("INSERT INTO orders (customer) VALUES ('old')");
    const start = await poll('new-row', { connection: db.config, config: { table: 'orders', column: 'id' } });
    expect(start.events).toEqual([]);
    await db.sql("INSERT INTO orders (customer) VALUES ('new')");
    const next = await poll('new-row', { connection: db.config, config: { table: 'orders', column: 'id' }, state: start.state });
    expect(next.events.map((e) => (e.new as { customer: string }).customer)).toEqual(['new']);
  });

  test('three rows with the same timestamp split across a poll boundary are all delivered, once', async () => {
    const at = '2026-01-15T10:30:00.123456Z';
    await db.sql("INSERT INTO orders (customer, created_at) VALUES ('a', $1), ('b', $1), ('c', $1), ('d', '2026-01-15T10:30:01Z')", [at]);
    const byTime = { table: 'orders', column: 'created_at', from: 'beginning' as const, batchSize: 2 };
    const first = await poll('new-row', { connection: db.config, config: byTime });
    const second = await poll('new-row', { connection: db.config, config: byTime, state: first.state });
    const third = await poll('new-row', { connection: db.config, config: byTime, state: second.state });
    expect(ids(first.events)).toEqual([1, 2]);
    expect(ids(second.events)).toEqual([3, 4]);
    expect(third.events).toEqual([]);
    expect(first.events[0]!.new).toMatchObject({ created_at: at });
  });

  test('late commit: a lower id committed after a higher one was polled is delivered exactly once', async () => {
    const a = await session(db);
    const b = await session(db);
    try {
      const start = await poll('new-row', { connection: db.config, config });
      await a.query('BEGIN');
      await a.query("INSERT INTO orders (customer) VALUES ('A')"); // id 1, open
      await b.query("INSERT INTO orders (customer) VALUES ('B')"); // id 2, committed
      const during = await poll('new-row', { connection: db.config, config, state: start.state });
      await a.query('COMMIT');
      const after = await poll('new-row', { connection: db.config, config, state: during.state });
      const last = await poll('new-row', { connection: db.config, config, state: after.state });
      const all = [...during.events, ...after.events, ...last.events];
      expect(ids(all).sort()).toEqual([1, 2]);
      expect(ids(during.events)).toEqual([]); // held back while A was writing
    } finally {
      await a.end();
      await b.end();
    }
  });

  test('a rolled-back late transaction releases the rows behind it', async () => {
    const a = await session(db);
    try {
      const start = await poll('new-row', { connection: db.config, config });
      await a.query('BEGIN');
      await a.query("INSERT INTO orders (customer) VALUES ('A')");
      await db.sql("INSERT INTO orders (customer) VALUES ('B')");
      await a.query('ROLLBACK');
      const after = await poll('new-row', { connection: db.config, config, state: start.state });
      expect(ids(after.events)).toEqual([2]);
    } finally {
      await a.end();
    }
  });

  test('a state from another trigger or configuration is a clear error', async () => {
    const { state } = await poll('new-row', { connection: db.config, config });
    const otherColumn = await failureOf(pollTrigger('new-row', { connection: db.config, config: { ...config, column: 'created_at' }, state }));
    expect(otherColumn.code).toBe('TRIGGER_STATE_INVALID');
    expect(otherColumn.message).toMatch(/another configuration/);
    const otherTrigger = await failureOf(pollTrigger('new-or-updated-row', { connection: db.config, config, state }));
    expect(otherTrigger.code).toBe('TRIGGER_STATE_INVALID');
    expect(otherTrigger.message).toMatch(/"new-row"/);
    const garbage = await failureOf(pollTrigger('new-row', { connection: db.config, config, state: 'yesterday' }));
    expect(garbage.code).toBe('TRIGGER_STATE_INVALID');
    // batchSize is not part of the identity: changing it keeps the state usable.
    await expect(pollTrigger('new-row', { connection: db.config, config: { ...config, batchSize: 50 }, state })).resolves.toBeDefined();
  });

  test('config is validated before any connection, naming the field', async () => {
    const nowhere = { host: '127.0.0.1', port: 1, database: 'x', user: 'x' };
    const missing = await failureOf(pollTrigger('new-row', { connection: nowhere, config: { column: 'id' } }));
    expect(missing.code).toBe('INVALID_INPUT');
    expect(missing.problems).toEqual(['config.table is required']);
    const wrong = await failureOf(pollTrigger('new-row', { connection: nowhere, config: { table: 'orders', column: 'id', batchSize: 0, colour: 1 } }));
    expect(wrong.problems).toEqual(expect.arrayContaining(['config.colour is not a known field', 'config.batchSize must be >= 1']));
    const unknown = await failureOf(pollTrigger('old-row', { connection: nowhere, config: {} }));
    expect(unknown.problems).toEqual(['trigger is not a known trigger']);
  });

  test('missing table, column or primary key name the field', async () => {
    await db.sql('CREATE TABLE IF NOT EXISTS nokey (n int)');
    expect((await failureOf(pollTrigger('new-row', { connection: db.config, config: { table: 'nope', column: 'id' } }))).code).toBe('UNDEFINED_TABLE');
    const column = await failureOf(pollTrigger('new-row', { connection: db.config, config: { table: 'orders', column: 'nope' } }));
    expect(column.code).toBe('UNDEFINED_COLUMN');
    expect(column.message).toMatch(/config\.column/);
    const key = await failureOf(pollTrigger('new-row', { connection: db.config, config: { table: 'nokey', column: 'n' } }));
    expect(key.problems).toEqual(['config.table must have a primary key']);
  });

  test('sampleEvents returns recent rows and warns when the column has no index', async () => {
    await db.sql("INSERT INTO orders (customer) VALUES ('a'), ('b')");
    const byTime = await sampleEvents('new-row', { connection: db.config, config: { table: 'orders', column: 'created_at' } });
    expect(byTime.events).toHaveLength(2);
    expect(byTime.warnings.join(' ')).toMatch(/no index starting with created_at/);
    const byId = await sampleEvents('new-row', { connection: db.config, config: { table: 'orders', column: 'id' } });
    expect(byId.warnings).toEqual([]);
  });

  test('subscribeTrigger polls, redelivers a batch whose handler threw with the same ids, then moves on', async () => {
    await db.sql("INSERT INTO orders (customer) VALUES ('a'), ('b')");
    const seen: string[][] = [];
    const states: unknown[] = [];
    let calls = 0;
    const subscription = await subscribeTrigger(
      'new-row',
      { connection: db.config, config: { ...config, batchSize: 10, intervalSeconds: 0.1 }, onState: (state) => void states.push(state), onError: () => undefined },
      async (events: TriggerEvent[]) => {
        seen.push(events.map((e) => e.id));
        if (++calls === 1) throw new Error('flow failed');
      },
    );
    try {
      await waitFor(() => seen.length >= 2, 'redelivery');
      expect(seen[1]).toEqual(seen[0]);
      await db.sql("INSERT INTO orders (customer) VALUES ('c')");
      await waitFor(() => seen.length >= 3, 'the next row');
      expect(seen[2]).toHaveLength(1);
      expect(states.length).toBeGreaterThanOrEqual(2);
    } finally {
      await subscription.close();
    }
  });
});

describe('new-or-updated-row', () => {
  const config = { table: 'tickets', column: 'updated_at', from: 'beginning' as const };

  test('an update that moves the column is a new event with a new id; the same version keeps its id', async () => {
    await db.sql("INSERT INTO tickets VALUES (1, 'open', '2026-01-01T00:00:00Z'), (2, 'open', '2026-01-01T00:00:01Z')");
    const first = await poll('new-or-updated-row', { connection: db.config, config });
    expect(ids(first.events)).toEqual([1, 2]);
    await db.sql("UPDATE tickets SET status = 'closed', updated_at = '2026-01-02T00:00:00Z' WHERE id = 1");
    const second = await poll('new-or-updated-row', { connection: db.config, config, state: first.state });
    expect(second.events).toHaveLength(1);
    expect(second.events[0]).toMatchObject({ op: 'INSERT_OR_UPDATE', key: { id: 1 }, new: { status: 'closed' } });
    expect(second.events[0]!.id).not.toBe(first.events[0]!.id);
  });

  test('late commit: an update with an earlier timestamp committed after a later one was polled is delivered once', async () => {
    await db.sql("INSERT INTO tickets VALUES (1, 'open', '2026-01-01T00:00:00Z'), (2, 'open', '2026-01-01T00:00:00Z')");
    const start = await poll('new-or-updated-row', { connection: db.config, config });
    const a = await session(db);
    try {
      await a.query('BEGIN');
      await a.query("UPDATE tickets SET status = 'A', updated_at = '2026-02-01T00:00:00Z' WHERE id = 1");
      await db.sql("UPDATE tickets SET status = 'B', updated_at = '2026-02-01T00:00:05Z' WHERE id = 2");
      const during = await poll('new-or-updated-row', { connection: db.config, config, state: start.state });
      await a.query('COMMIT');
      const after = await poll('new-or-updated-row', { connection: db.config, config, state: during.state });
      const last = await poll('new-or-updated-row', { connection: db.config, config, state: after.state });
      expect(during.events).toEqual([]);
      expect([...after.events, ...last.events].map((e) => (e.new as { status: string }).status)).toEqual(['A', 'B']);
    } finally {
      await a.end();
    }
  });
});
