/**
 * The polling cursor's position and delivery horizon (triggers/table-cursor.ts, horizon.ts) as a
 * host stores them: what a poll returns, what a damaged or outdated state gets, and the exact
 * SQL-visible rules — rows equal on the ordering column are told apart by the key, a composite
 * key keeps its order, NULLs are never delivered, an empty table waits, "now" starts at the last
 * row, and an open transaction holds the horizon back until it ends.
 */
import { randomBytes } from 'node:crypto';
import { closeAll } from '../../connection/index.js';
import { pollTrigger, sampleEvents } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf, poll, session } from './helpers.js';

const db = useTestDatabase('cursor_state');

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
  expect(first.state.position).toEqual({ after: [10, 1], afterText: ['10', '1'], horizon: { through: 10 } });
  const second = await poll('new-or-updated-row', { connection: db.config, config, state: first.state });
  expect(keys(second.events)).toEqual([{ id: 2 }]); // NULL is never delivered
  expect(second.state.position).toEqual({ after: [10, 2], afterText: ['10', '2'], horizon: { through: 10 } });
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
  expect((state as { position: unknown }).position).toEqual({ after: [7, 2, 1], afterText: ['7', '2', '1'], horizon: { through: 7 } });
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
    expect({ horizon, code: error.code, message: error.message, problems: error.problems }).toEqual({
      horizon, code: 'TRIGGER_STATE_INVALID', message: 'state.position.horizon is not what a previous poll returned', problems: ['state.position.horizon is malformed'],
    });
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
  expect(sample.notes).toEqual([]);
  expect(sample.warnings).toEqual(['public.events has no index starting with at: every poll reads the whole table. Create one: CREATE INDEX ON "public"."events" ("at");']);
  await db.sql('CREATE INDEX ON events (at)');
  expect((await sampleEvents('new-or-updated-row', { connection: db.config, config: { table: 'events', column: 'at' } })).warnings).toEqual([]);
});

test('a wrong table, column or key: the code, the message and the problem name config.table or config.column, with the fix', async () => {
  await db.sql('DROP TABLE IF EXISTS nokey; CREATE TABLE nokey (n int)');
  const config = (table: string, column = 'at') => ({ connection: db.config, config: { table, column } });
  const table = await failureOf(pollTrigger('new-or-updated-row', config('nope')));
  expect({ code: table.code, message: table.message, problems: table.problems }).toEqual({
    code: 'UNDEFINED_TABLE', message: 'config.table: no table "nope" is visible to this user', problems: ['config.table does not exist'],
  });
  const name = await failureOf(pollTrigger('new-or-updated-row', config('a.b.c')));
  expect(name.problems).toEqual(['config.table must be "table" or "schema.table"']);
  const column = await failureOf(pollTrigger('new-or-updated-row', config('events', 'nope')));
  expect({ code: column.code, message: column.message, problems: column.problems }).toEqual({
    code: 'UNDEFINED_COLUMN', message: 'config.column: public.events has no column "nope"', problems: ['config.column is not a column of config.table'],
  });
  const key = await failureOf(sampleEvents('new-or-updated-row', config('nokey', 'n')));
  expect({ code: key.code, message: key.message, problems: key.problems, fixes: key.fixes }).toEqual({
    code: 'INVALID_INPUT',
    message: 'config.table: public.nokey has no primary key; the cursor needs one to tell rows with equal n apart',
    problems: ['config.table must have a primary key'],
    fixes: ['Add a primary key to the table, or use the row-changes trigger.'],
  });
  const { state } = await poll('new-or-updated-row', { ...config('events'), config: { table: 'events', column: 'at', from: 'beginning' } });
  const wrongSize = await failureOf(pollTrigger('new-or-updated-row', { ...config('events'), config: { table: 'events', column: 'at', from: 'beginning' }, state: { ...(state as object), position: { after: [1] } } }));
  expect(wrongSize.message).toBe('state.position does not fit the table\'s primary key (it changed since the state was made)');
});

test('start, horizon, poll and sample only read: a write hidden in the table\'s row security fails (READ_ONLY_VIOLATION) and leaves nothing', async () => {
  // The policy writes when it is checked against row 1 or 20. In "trapped" an index on "at"
  // (sequential scans off for the role) lets the horizon's read stop at the highest row, 2, so the
  // poll fails at its own read; in "trapped_top" the horizon's read meets row 20 itself.
  // A role of this run's own: one left behind by an interrupted run (a mutation run's) cannot fail the next.
  const reader = `tc_reader_${randomBytes(4).toString('hex')}`;
  await db.sql(`DROP TABLE IF EXISTS trapped, trapped_top, trap_log;
    CREATE TABLE trap_log (id int); CREATE TABLE trapped (id int PRIMARY KEY, at int); CREATE INDEX ON trapped (at);
    CREATE TABLE trapped_top (id int PRIMARY KEY, at int);
    CREATE OR REPLACE FUNCTION trap(id int) RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER AS
      $$ BEGIN IF id IN (1, 20) THEN INSERT INTO trap_log VALUES (id); END IF; RETURN true; END $$;
    ALTER TABLE trapped ENABLE ROW LEVEL SECURITY; CREATE POLICY everyone ON trapped USING (trap(id));
    ALTER TABLE trapped_top ENABLE ROW LEVEL SECURITY; CREATE POLICY everyone ON trapped_top USING (trap(id));
    INSERT INTO trapped VALUES (1, 1), (2, 2); INSERT INTO trapped_top VALUES (20, 20);
    CREATE ROLE ${reader} LOGIN PASSWORD 'tc-reader-pw'; ALTER ROLE ${reader} SET enable_seqscan = off;
    GRANT CONNECT ON DATABASE "${db.name}" TO ${reader}; GRANT USAGE ON SCHEMA public TO ${reader}; GRANT SELECT ON trapped, trapped_top TO ${reader}`);
  const connection = { ...db.config, user: reader, password: 'tc-reader-pw' };
  try {
    const start = await failureOf(pollTrigger('new-or-updated-row', { connection, config: { table: 'trapped', column: 'at' } }));
    const read = await failureOf(pollTrigger('new-or-updated-row', { connection, config: { table: 'trapped', column: 'at', from: 'beginning' } }));
    const sample = await failureOf(sampleEvents('new-or-updated-row', { connection, config: { table: 'trapped', column: 'at' } }));
    const horizon = await failureOf(pollTrigger('new-or-updated-row', { connection, config: { table: 'trapped_top', column: 'at', from: 'beginning' } }));
    expect([start.code, read.code, sample.code, horizon.code]).toEqual(['READ_ONLY_VIOLATION', 'READ_ONLY_VIOLATION', 'READ_ONLY_VIOLATION', 'READ_ONLY_VIOLATION']);
    expect(await db.sql('SELECT * FROM trap_log')).toEqual([]);
  } finally {
    await closeAll();
    await db.sql(`DROP OWNED BY ${reader}; DROP ROLE ${reader}`);
  }
});
