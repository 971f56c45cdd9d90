/**
 * The polling cursor's position and delivery horizon (triggers/table-cursor.ts, horizon.ts) as a
 * host stores them: what a poll returns, what a damaged or outdated state gets, and the exact
 * SQL-visible rules — rows equal on the ordering column are told apart by the key, a composite
 * key keeps its order, NULLs are never delivered, an empty table waits, "now" starts at the last
 * row, and an open transaction holds the horizon back until it ends.
 */
import { closeAll } from '../../connection/index.js';
import { pollTrigger, sampleEvents } from '../../triggers/index.js';
import { createTestDatabase, type TestDatabase } from '../harness/db.js';
import { failureOf, poll, session } from './helpers.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('cursor_state');
}, 60_000);

afterAll(async () => {
  await closeAll();
  await db?.drop();
}, 60_000);

beforeEach(async () => {
  await db.sql('DROP TABLE IF EXISTS events, pairs');
  await db.sql('CREATE TABLE events (id int PRIMARY KEY, at int)');
  await db.sql('CREATE TABLE pairs (a int, b int, at int, PRIMARY KEY (b, a))');
});

const keys = (events: Record<string, unknown>[]) => events.map((e) => e.key);

test('the position is the last row\'s (column, key) values and the horizon; an empty table from the beginning waits with a null horizon', async () => {
  const config = { table: 'events', column: 'at', from: 'beginning' as const, batchSize: 2 };
  const empty = await poll('new-or-updated-row', { connection: db.config, config });
  expect(empty.events).toEqual([]);
  expect(empty.state.position).toEqual({ after: null, horizon: { through: null } });
  await db.sql('INSERT INTO events VALUES (1, 10), (2, 10), (3, 5), (4, NULL)');
  const first = await poll('new-or-updated-row', { connection: db.config, config, state: empty.state });
  expect(keys(first.events)).toEqual([{ id: 3 }, { id: 1 }]);
  expect(first.state.position).toEqual({ after: [10, 1], horizon: { through: 10 } });
  const second = await poll('new-or-updated-row', { connection: db.config, config, state: first.state });
  expect(keys(second.events)).toEqual([{ id: 2 }]); // NULL is never delivered
  expect(second.state.position).toEqual({ after: [10, 2], horizon: { through: 10 } });
  const idle = await poll('new-or-updated-row', { connection: db.config, config, state: second.state });
  expect(idle.events).toEqual([]);
  expect(idle.state).toEqual(second.state);
});

test('a composite key: rows equal on the column come in key order (the key\'s own column order), across poll boundaries', async () => {
  await db.sql('INSERT INTO pairs VALUES (2, 1, 7), (1, 2, 7), (1, 1, 7), (9, 9, 6)');
  const config = { table: 'pairs', column: 'at', from: 'beginning' as const, batchSize: 1 };
  const seen: unknown[] = [];
  let state: unknown;
  for (let i = 0; i < 6; i++) {
    const batch = await poll('new-or-updated-row', { connection: db.config, config, ...(state ? { state } : {}) });
    seen.push(...keys(batch.events));
    state = batch.state;
  }
  expect(seen).toEqual([{ b: 9, a: 9 }, { b: 1, a: 1 }, { b: 1, a: 2 }, { b: 2, a: 1 }]);
  expect((state as { position: unknown }).position).toEqual({ after: [7, 2, 1], horizon: { through: 7 } });
});

test('from "now" starts after the last row (highest value, then highest key); a table with only NULLs starts at the beginning', async () => {
  await db.sql('INSERT INTO events VALUES (1, 3), (2, 3), (5, 1), (6, NULL)');
  const start = await poll('new-or-updated-row', { connection: db.config, config: { table: 'events', column: 'at' } });
  expect(start.events).toEqual([]);
  expect((start.state.position as { after: unknown }).after).toEqual([3, 2]);
  await db.sql('INSERT INTO events VALUES (0, 3), (3, 3), (7, 2)');
  const next = await poll('new-or-updated-row', { connection: db.config, config: { table: 'events', column: 'at' }, state: start.state });
  expect(keys(next.events)).toEqual([{ id: 3 }]); // (3, 0) and (2, 7) sort before the start
  await db.sql('DELETE FROM events; INSERT INTO events VALUES (1, NULL)');
  const nulls = await poll('new-or-updated-row', { connection: db.config, config: { table: 'events', column: 'at' } });
  expect((nulls.state.position as { after: unknown }).after).toBeNull();
});

test('an open transaction that took a value holds the horizon back (pending), a later poll releases it once it ends', async () => {
  const config = { table: 'events', column: 'at', from: 'beginning' as const };
  await db.sql('INSERT INTO events VALUES (1, 1)');
  const first = await poll('new-or-updated-row', { connection: db.config, config });
  expect(keys(first.events)).toEqual([{ id: 1 }]);
  const writer = await session(db);
  try {
    await writer.query('BEGIN');
    await writer.query('INSERT INTO events VALUES (2, 2)'); // not committed: invisible, but its transaction is open
    await db.sql('INSERT INTO events VALUES (3, 3)');
    const held = await poll('new-or-updated-row', { connection: db.config, config, state: first.state });
    expect(held.events).toEqual([]);
    const position = held.state.position as { after: unknown; horizon: { through: unknown; pending?: { through: unknown; waitFor: string[] } } };
    expect(position.after).toEqual([1, 1]);
    expect(position.horizon.through).toBe(1);
    expect(position.horizon.pending?.through).toBe(3);
    expect(position.horizon.pending?.waitFor.length).toBeGreaterThanOrEqual(1);
    const stillHeld = await poll('new-or-updated-row', { connection: db.config, config, state: held.state });
    expect(stillHeld.events).toEqual([]);
    expect((stillHeld.state.position as typeof position).horizon.pending?.through).toBe(3);
    await writer.query('COMMIT');
    const released = await poll('new-or-updated-row', { connection: db.config, config, state: stillHeld.state });
    expect(keys(released.events)).toEqual([{ id: 2 }, { id: 3 }]);
    expect((released.state.position as typeof position).horizon).toEqual({ through: 3 });
  } finally {
    await writer.end();
  }
});

test('a damaged position or horizon is TRIGGER_STATE_INVALID saying which; a state from before the horizon existed still works', async () => {
  const config = { table: 'events', column: 'at', from: 'beginning' as const };
  await db.sql('INSERT INTO events VALUES (1, 1), (2, 2)');
  const { state } = await poll('new-or-updated-row', { connection: db.config, config });
  const withPosition = (position: unknown) => ({ ...(state as object), position });
  const horizonProblems = [
    'yesterday',
    null,
    {},
    { through: 1, pending: 'soon' },
    { through: 1, pending: null },
    { through: 1, pending: { through: 2 } },
    { through: 1, pending: { through: 2, waitFor: [1] } },
  ];
  for (const horizon of horizonProblems) {
    const error = await failureOf(pollTrigger('new-or-updated-row', { connection: db.config, config, state: withPosition({ after: [1, 1], horizon }) }));
    expect({ horizon, code: error.code, problems: error.problems }).toEqual({ horizon, code: 'TRIGGER_STATE_INVALID', problems: ['state.position.horizon is malformed'] });
  }
  for (const after of [[1], [1, 1, 1], 'x']) {
    const error = await failureOf(pollTrigger('new-or-updated-row', { connection: db.config, config, state: withPosition({ after, horizon: { through: 1 } }) }));
    expect({ after, code: error.code, problems: error.problems }).toEqual({ after, code: 'TRIGGER_STATE_INVALID', problems: ['state.position.after has the wrong number of values'] });
  }
  // a pending horizon with nothing left to wait for is released at once
  const pending = await pollTrigger('new-or-updated-row', { connection: db.config, config, state: withPosition({ after: [1, 1], horizon: { through: 1, pending: { through: 2, waitFor: [] } } }) });
  expect(pending.events.map((e) => (e as unknown as { key: unknown }).key)).toEqual([{ id: 2 }]);
  // states made before the horizon existed: no horizon at all
  const old = await pollTrigger('new-or-updated-row', { connection: db.config, config, state: withPosition({ after: [1, 1] }) });
  expect(old.events.map((e) => (e as unknown as { key: unknown }).key)).toEqual([{ id: 2 }]);
});

test('sampleEvents: the three latest rows, newest first, NULLs left out; the index warning names the table and the fix', async () => {
  await db.sql('INSERT INTO events VALUES (1, 1), (2, 4), (3, 3), (4, 2), (5, NULL)');
  const sample = await sampleEvents('new-or-updated-row', { connection: db.config, config: { table: 'events', column: 'at' } });
  expect(sample.events.map((e) => (e as unknown as { key: unknown }).key)).toEqual([{ id: 2 }, { id: 3 }, { id: 4 }]);
  expect(sample.warnings).toEqual(['public.events has no index starting with at: every poll reads the whole table. Create one: CREATE INDEX ON "public"."events" ("at");']);
  await db.sql('CREATE INDEX ON events (at)');
  expect((await sampleEvents('new-or-updated-row', { connection: db.config, config: { table: 'events', column: 'at' } })).warnings).toEqual([]);
});
