/**
 * table-sync's keyset reader (triggers/sync/keyset.ts) at its edges, from the suite's server: what
 * its mutation run found unpinned by the files that reach it without a replication server. A
 * table missing or without a key, a state whose cursor does not fit the key, a state made before
 * the cursor was kept as text, the next batch's size kept in the state (and dropped when a table
 * ends), progress across tables, a read that fails with or without a cursor, and ids and keys of
 * composite and text keys.
 */
import { randomBytes } from 'node:crypto';
import { pollTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf } from './helpers.js';

const ROLE = `sync_edges_${randomBytes(4).toString('hex')}`;
const PASSWORD = 'edges-pass-123';
const db = useTestDatabase('sync_keyset_edges', { beforeDrop: () => db.sql(`DROP OWNED BY ${ROLE}; DROP ROLE IF EXISTS ${ROLE}`).then(() => undefined) });

type Position = Record<string, unknown>;
const poll = (tables: string[], state?: TriggerState, config: Record<string, unknown> = {}, connection: object = db.config) =>
  pollTrigger('table-sync', { connection, config: { tables, ...config }, state });
const positionOf = (state: TriggerState) => (state as unknown as { position: Position }).position;
const edited = (state: TriggerState, edit: Position) => {
  const copy = JSON.parse(JSON.stringify(state)) as TriggerState;
  Object.assign(positionOf(copy), edit);
  for (const [name, value] of Object.entries(edit)) if (value === undefined) delete positionOf(copy)[name];
  return copy;
};
const keys = (events: TriggerEvent[]) => events.map((event) => event.key);

beforeAll(async () => {
  await db.sql(`CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 10) i;
    CREATE TABLE keyless (a int);
    CREATE TABLE bin (k bytea PRIMARY KEY); INSERT INTO bin SELECT decode(lpad(to_hex(i * 37), 4, '0'), 'hex') FROM generate_series(1, 6) i;
    CREATE TABLE pairs (a int, b text, PRIMARY KEY (a, b)); INSERT INTO pairs VALUES (1, 'x'), (1, 'y'), (2, 'x');
    CREATE TABLE quoted (k text PRIMARY KEY); INSERT INTO quoted VALUES ('a'), ('"a"'), ('1'), ('[1]');
    CREATE TABLE docs (k jsonb PRIMARY KEY); INSERT INTO docs VALUES ('{"a": 1}'), ('{"a": 2}'), ('[1]'), ('"s"'), ('2');
    CREATE TABLE wide (id int PRIMARY KEY, v text); INSERT INTO wide SELECT i, repeat('x', 100) FROM generate_series(1, 1300) i;
    CREATE TABLE narrow (id int PRIMARY KEY); INSERT INTO narrow SELECT generate_series(1, 3000);
    CREATE DOMAIN posint AS int CHECK (VALUE > 0); CREATE TABLE arr (k posint[] PRIMARY KEY); INSERT INTO arr SELECT ARRAY[i, i + 1]::posint[] FROM generate_series(1, 6) i;
    CREATE TABLE guarded (id int PRIMARY KEY, v text); INSERT INTO guarded VALUES (1, '5'), (2, 'five');
    ALTER TABLE guarded ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON guarded FOR SELECT USING (v::int > 0);
    CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}'; GRANT SELECT ON guarded TO ${ROLE};
    CREATE TABLE big (id int PRIMARY KEY, v text); INSERT INTO big VALUES (1, 'small'), (2, repeat('y', 9000));
    ANALYZE t, pairs`);
}, 60_000);

test('a table that does not exist, and one without a primary key: the code, the table\'s own field, the fix', async () => {
  const first = await poll(['t', 'nope'], undefined, { batchSize: 20 });
  expect(first.events).toHaveLength(10);
  const missing = await failureOf(poll(['t', 'nope'], first.state, { batchSize: 20 }));
  expect(missing.code).toBe('UNDEFINED_TABLE');
  expect(missing.message).toBe('config.tables[1]: no table "nope" is visible to this user');
  expect(missing.problems).toEqual(['config.tables[1] does not exist']);
  const keyless = await failureOf(poll(['keyless']));
  expect(keyless.code).toBe('INVALID_INPUT');
  expect(keyless.message).toBe('config.tables[0]: public.keyless has no primary key to copy it in order');
  expect(keyless.problems).toEqual(['config.tables[0] must have a primary key']);
  expect(keyless.fixes).toEqual(['ALTER TABLE "public"."keyless" ADD PRIMARY KEY (<column>);']);
});

test.each([
  [{ after: [1, 2] }, 'state.position.after does not fit', 'state.position.after has the wrong number of values'],
  [{ after: 3 }, 'state.position.after does not fit', 'state.position.after has the wrong number of values'],
  [{ afterText: ['1', '2'] }, 'state.position.afterText does not fit', 'state.position.afterText must hold one text per primary key column'],
  [{ afterText: [2] }, 'state.position.afterText does not fit', 'state.position.afterText must hold one text per primary key column'],
  [{ afterText: '2' }, 'state.position.afterText does not fit', 'state.position.afterText must hold one text per primary key column'],
])('a cursor %j that does not fit the key is TRIGGER_STATE_INVALID', async (edit, message, problem) => {
  const { state } = await poll(['t'], undefined, { batchSize: 2 });
  const failure = await failureOf(poll(['t'], edited(state, edit), { batchSize: 2 }));
  expect(failure.code).toBe('TRIGGER_STATE_INVALID');
  expect(failure.message).toContain(message);
  expect(failure.problems).toEqual([problem]);
});

test.each([0, Number.POSITIVE_INFINITY])('a rowBytes of %d is not a size table-sync writes: TRIGGER_STATE_INVALID, not a batch of one row', async (rowBytes) => {
  const { state } = await poll(['t'], undefined, { batchSize: 2 });
  const kept = { ...state, position: { ...positionOf(state), rowBytes } } as TriggerState; // a host keeps the object, not its JSON
  const failure = await failureOf(poll(['t'], kept, { batchSize: 2 }));
  expect(failure.code).toBe('TRIGGER_STATE_INVALID');
  expect(failure.message).toContain('state.position holds counts table-sync never writes');
  expect(failure.problems).toEqual(['state.position.rowBytes must be a positive number when present']);
});

test('a state made before the cursor was kept as text (after only) resumes after its key: an int key, and a bytea key through its base64', async () => {
  for (const table of ['t', 'bin']) {
    const all = await poll([table], undefined, { batchSize: 100 });
    const first = await poll([table], undefined, { batchSize: 2 });
    const old = edited(first.state, { afterText: undefined });
    expect(positionOf(old).after).toEqual(Object.values(first.events[1]!.key as object));
    const rest = await poll([table], old, { batchSize: 100 });
    expect(keys(rest.events)).toEqual(keys(all.events).slice(2));
  }
});

test('progress: rowsDone counts on across tables, estimatedTotal is the planner\'s count of all of them', async () => {
  const seen: TriggerEvent[] = [];
  let state: TriggerState | undefined;
  for (let polls = 0; polls < 10; polls++) {
    const result = await poll(['t', 'pairs'], state, { batchSize: 4 });
    state = result.state;
    if (result.events.length === 0) break;
    seen.push(...result.events);
  }
  expect(seen.map((event) => event.progress)).toEqual(Array.from({ length: 13 }, (_, i) => ({ rowsDone: i + 1, estimatedTotal: 13 })));
  expect(positionOf(state!)).toMatchObject({ table: 2, after: null, afterText: null, rowsDone: 13 });
});

test('the next batch\'s size: the last batch\'s COPY text per row plus the event\'s overhead, under batchBytes and half of maxResultBytes; dropped when a table ends', async () => {
  // Each row of wide is "<id>\t<100 x>\n" in COPY text: the first 1,000 rows' bytes, per row, plus 256 for the event and 32 per column.
  const text = await db.sql<{ bytes: string }>("SELECT sum(length(id::text) + 102)::text AS bytes FROM wide WHERE id <= 1000");
  const rowBytes = Math.ceil(Number(text[0]!.bytes) / 1000) + 256 + 32 * 2;
  const first = await poll(['wide', 'narrow']);
  expect(first.events).toHaveLength(1000);
  expect(positionOf(first.state).rowBytes).toBe(rowBytes);
  const byBatchBytes = await poll(['wide', 'narrow'], first.state, { batchBytes: 65536 });
  expect(byBatchBytes.events).toHaveLength(Math.floor(65536 / rowBytes));
  const byResultCap = await poll(['wide', 'narrow'], first.state, {}, { ...db.config, maxResultBytes: 2 * 60_000 });
  expect(byResultCap.events).toHaveLength(Math.floor(60_000 / rowBytes));
  const byBatchSize = await poll(['wide', 'narrow'], first.state, { batchSize: 7 });
  expect(byBatchSize.events).toHaveLength(7);
  // The rest of wide (300 rows), then narrow: its first batch is 1,000 rows again, not sized by wide's rows.
  const endOfWide = await poll(['wide', 'narrow'], first.state);
  expect(endOfWide.events).toHaveLength(300);
  expect(positionOf(endOfWide.state).rowBytes).toBeUndefined();
  const narrow = await poll(['wide', 'narrow'], endOfWide.state);
  expect(narrow.events).toHaveLength(1000);
  // A state's huge rowBytes still reads one row a batch.
  expect((await poll(['wide', 'narrow'], edited(first.state, { rowBytes: 1e12 }))).events).toHaveLength(1);
});

test('a read that fails with no cursor keeps its own error; a cursor that no longer passes its domain\'s check is TRIGGER_STATE_INVALID, the database\'s error kept as its cause', async () => {
  // The policy casts "five" to int for the flow role: the first batch itself fails, and it is no state's fault.
  const policy = await failureOf(poll(['guarded'], undefined, {}, { ...db.config, user: ROLE, password: PASSWORD }));
  expect(policy.code).toBe('INVALID_VALUE');

  const first = await poll(['arr'], undefined, { batchSize: 2 });
  await db.sql('ALTER DOMAIN posint ADD CONSTRAINT above_two CHECK (VALUE > 2) NOT VALID');
  try {
    const stale = await failureOf(poll(['arr'], first.state, { batchSize: 2 }));
    expect(stale.code).toBe('TRIGGER_STATE_INVALID');
    expect(stale.message).toContain('state.position\'s cursor no longer reads as the primary key of config.tables[0]');
    expect(stale.problems).toEqual(['state.position.afterText is not a value of the key type any more']);
    const cause = (stale as Error & { cause?: { code?: string } }).cause;
    expect(cause?.code).toBe('CHECK_VIOLATION');
    expect(Object.keys(stale)).not.toContain('cause'); // kept for debugging, not part of what hosts serialise
  } finally {
    await db.sql('ALTER DOMAIN posint DROP CONSTRAINT above_two');
  }
});

test('ids and keys: each column of a composite key, text keys that look like JSON or numbers, jsonb keys; one id per row', async () => {
  const pairs = await poll(['pairs'], undefined, { batchSize: 10 });
  expect(keys(pairs.events)).toEqual([{ a: 1, b: 'x' }, { a: 1, b: 'y' }, { a: 2, b: 'x' }]);
  const quoted = await poll(['quoted'], undefined, { batchSize: 10 });
  expect(keys(quoted.events)).toEqual((await db.sql('SELECT k FROM quoted ORDER BY k')).map((row) => ({ k: row.k })));
  // The same key in two tables of one run: two rows, two ids.
  const both = await poll(['t', 'narrow'], undefined, { batchSize: 11 });
  const second = await poll(['t', 'narrow'], both.state, { batchSize: 11 });
  const ids = [...both.events, ...second.events].map((event) => event.id);
  expect([...both.events, ...second.events].map((event) => (event.key as { id: number }).id)).toEqual([...Array.from({ length: 10 }, (_, i) => i + 1), ...Array.from({ length: 11 }, (_, i) => i + 1)]);
  expect(new Set(ids).size).toBe(21);
  const docs = await poll(['docs'], undefined, { batchSize: 10 });
  expect(keys(docs.events)).toEqual((await db.sql('SELECT k FROM docs ORDER BY k')).map((row) => ({ k: row.k })));
  for (const events of [pairs.events, quoted.events, docs.events]) expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
});

test('a name that is not "table" or "schema.table" is refused naming its own config.tables entry, before any batch', async () => {
  const failure = await failureOf(poll(['t', 'a.b.c']));
  expect(failure.code).toBe('INVALID_INPUT');
  expect(failure.problems?.join(' ')).toContain('config.tables[1]');
});

test('a batch after the cursor that fails for another reason (one row past maxResultBytes) keeps its own code, not TRIGGER_STATE_INVALID', async () => {
  const first = await poll(['big'], undefined, { batchSize: 1 });
  expect(first.events).toHaveLength(1);
  const failure = await failureOf(poll(['big'], first.state, { batchSize: 1 }, { ...db.config, maxResultBytes: 4096 }));
  expect(failure.code).toBe('RESULT_TOO_LARGE');
});
