/**
 * new-row and new-or-updated-row event ids are unique whenever the keys are. The ids were a hash of
 * the key as Query Rows parses it, and a jsonb number a double cannot hold becomes a string of its
 * exact digits: the keys {"n": 12345678901234567891} and {"n": "12345678901234567891"}, two rows of a
 * jsonb primary key, had the same id, so a host de-duplicating by id ran the flow for one of them only.
 * The id is now built from the key's text as PostgreSQL writes it, as table-sync's (REVIEW6 R121).
 * bigint and numeric keys never collided (Query Rows returns them as strings of their digits): pinned too.
 */
import { pollTrigger, sampleEvents, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('new_row_key_ids');

/** Pairs that parse to one value: a number beyond a double, and the same digits as a string. */
const COLLIDING = ['{"n": 12345678901234567891}', '{"n": "12345678901234567891"}', '[1.0000000000000000001]', '["1.0000000000000000001"]', '12345678901234567891', '"12345678901234567891"'];
/** Differ only beyond 2^53, each type's own way: parsed apart already (jsonb keeps such a number as its digits). */
const BEYOND_2_53 = ['9007199254740992', '9007199254740993', '12345678901234567890', '12345678901234567891'];

interface RowEvent {
  id: string;
  key: Record<string, unknown>;
  new: Record<string, unknown>;
}

beforeAll(async () => {
  await db.sql('CREATE TABLE j (seq int NOT NULL, k jsonb PRIMARY KEY)');
  await db.sql(`INSERT INTO j SELECT i::int, k::jsonb FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i)`, [[...COLLIDING, ...BEYOND_2_53.map((n) => `{"m": ${n}}`), '{"n": "a\\"b\\\\c\\td"}', '{"é": "ü"}']]);
  await db.sql('CREATE TABLE n (seq int NOT NULL, k numeric PRIMARY KEY)');
  await db.sql(`INSERT INTO n SELECT i::int, k::numeric FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i)`, [BEYOND_2_53]);
  await db.sql('CREATE TABLE nb (seq int NOT NULL, k bigint PRIMARY KEY)');
  await db.sql(`INSERT INTO nb SELECT i::int, k::bigint FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i)`, [BEYOND_2_53.slice(0, 2)]);
  // Two key columns, one of them jsonb: ties on the ordering column too.
  await db.sql('CREATE TABLE j2 (seq int NOT NULL, k jsonb, i int, PRIMARY KEY (k, i))');
  await db.sql(`INSERT INTO j2 SELECT 1, k::jsonb, i FROM unnest($1::text[]) AS k, generate_series(1, 2) AS i`, [COLLIDING]);
  await db.sql('CREATE TABLE u (version int NOT NULL, k jsonb PRIMARY KEY)');
  await db.sql(`INSERT INTO u SELECT 1, k::jsonb FROM unnest($1::text[]) AS k`, [COLLIDING]);
});

async function pollAll(trigger: 'new-row' | 'new-or-updated-row', table: string, column: string, batchSize: number, from?: TriggerState): Promise<{ events: RowEvent[]; state: TriggerState | undefined }> {
  let state: TriggerState | undefined = from;
  const events: RowEvent[] = [];
  for (let polls = 0; ; polls++) {
    const result = await pollTrigger(trigger, { connection: db.config, config: { table, column, batchSize, from: 'beginning' }, state });
    state = result.state;
    if (result.events.length === 0) return { events, state };
    events.push(...(result.events as unknown as RowEvent[]));
    if (polls > 40) throw new Error(`${table}: still delivering after ${polls} polls`);
  }
}

/** The id's part after its hash: the key's text, a JSON array of strings. */
const keyPart = (event: RowEvent) => JSON.parse(event.id.slice(event.id.indexOf(':') + 1)) as string[];

test.each([1, 2, 1000])('new-row on a jsonb key, batches of %i: one id per row, the key as PostgreSQL writes it', async (batchSize) => {
  const rows = await db.sql<{ t: string }>('SELECT k::text AS t FROM j ORDER BY seq');
  const { events } = await pollAll('new-row', 'j', 'seq', batchSize);
  expect(events).toHaveLength(rows.length);
  expect(new Set(events.map((event) => event.id)).size).toBe(rows.length);
  expect(events.map(keyPart)).toEqual(rows.map((row) => [row.t]));
  // One table, one trigger: every id has the same hash.
  expect(new Set(events.map((event) => event.id.slice(0, event.id.indexOf(':')))).size).toBe(1);
  // The key itself is lossy there (documented): the two rows of a pair carry the same key.
  expect(new Set(events.map((event) => JSON.stringify(event.key))).size).toBe(rows.length - COLLIDING.length / 2);
}, 60_000);

test('numeric and bigint keys that differ only beyond 2^53: distinct keys and ids (they never collided)', async () => {
  for (const table of ['n', 'nb']) {
    const { events } = await pollAll('new-row', table, 'seq', 2);
    const rows = await db.sql<{ t: string }>(`SELECT k::text AS t FROM ${table} ORDER BY seq`);
    expect(events.map((event) => event.key.k)).toEqual(rows.map((row) => row.t));
    expect(events.map(keyPart)).toEqual(rows.map((row) => [row.t]));
    expect(new Set(events.map((event) => event.id)).size).toBe(rows.length);
  }
}, 60_000);

test('a two-column key with a jsonb column, every row tied on the ordering column: one id per row, both columns\' text', async () => {
  const rows = await db.sql<{ k: string; i: number }>('SELECT k::text AS k, i FROM j2 ORDER BY k, i');
  const { events } = await pollAll('new-row', 'j2', 'seq', 3);
  expect(events.map(keyPart)).toEqual(rows.map((row) => [row.k, String(row.i)]));
  expect(new Set(events.map((event) => event.id)).size).toBe(rows.length);
}, 60_000);

test('ids are deterministic: the same rows polled again from the same state, and sampleEvents, give the same ids', async () => {
  const first = await pollAll('new-row', 'j', 'seq', 1000);
  const again = await pollAll('new-row', 'j', 'seq', 1000);
  expect(again.events.map((event) => event.id)).toEqual(first.events.map((event) => event.id));
  const sample = await sampleEvents('new-row', { connection: db.config, config: { table: 'j', column: 'seq' } });
  const byId = new Map(first.events.map((event) => [event.id, event]));
  expect(sample.events).toHaveLength(3);
  for (const event of sample.events as unknown as RowEvent[]) expect(byId.get(event.id)?.new).toEqual(event.new);
}, 60_000);

test('new-or-updated-row on a jsonb key: one id per row version; an update gives the row a new id with the same key text', async () => {
  const { events, state } = await pollAll('new-or-updated-row', 'u', 'version', 2);
  expect(events).toHaveLength(COLLIDING.length);
  expect(new Set(events.map((event) => event.id)).size).toBe(COLLIDING.length);
  await db.sql(`UPDATE u SET version = 2 WHERE k = '{"n": 12345678901234567891}'::jsonb`);
  const next = await pollAll('new-or-updated-row', 'u', 'version', 2, state);
  expect(next.events).toHaveLength(1);
  const before = events.find((event) => keyPart(event)[0] === '{"n": 12345678901234567891}')!;
  expect(keyPart(next.events[0]!)).toEqual(keyPart(before));
  expect(next.events[0]!.id).not.toBe(before.id);
}, 60_000);

describe('the cursor is the key as PostgreSQL writes it (state.position.afterText)', () => {
  // A jsonb key parsed for the event does not always read back: the string "a" is a, not JSON, and a
  // number beyond a double became a string. Before, the poll after such a row failed ("Invalid input
  // syntax for type json") or read the same row again for ever.
  beforeAll(() => db.sql(`CREATE TABLE js (seq int NOT NULL, k jsonb PRIMARY KEY); INSERT INTO js VALUES (1, '12345678901234567891'), (1, '"12345678901234567891"'), (2, '"a"')`));
  const poll = (state: TriggerState | undefined, from?: 'beginning') =>
    pollTrigger('new-row', { connection: db.config, config: { table: 'js', column: 'seq', batchSize: 1, ...(from ? { from } : {}) }, state });

  test('from "now": the start is the last row\'s text, and a row written after it is the one delivered', async () => {
    const start = await poll(undefined);
    expect(start.events).toEqual([]);
    expect((start.state.position as { afterText: string[] }).afterText).toEqual(['2', '"a"']);
    await db.sql(`INSERT INTO js VALUES (2, '"b"')`);
    const next = await poll(start.state);
    expect(next.events.map((event) => (event as unknown as RowEvent).new.k)).toEqual(['b']);
    expect((await poll(next.state)).events).toEqual([]);
    await db.sql(`DELETE FROM js WHERE k = '"b"'`);
  });

  test('a state without afterText (made before it) resumes from `after`; one whose afterText does not fit is TRIGGER_STATE_INVALID', async () => {
    // jsonb orders strings before numbers.
    const first = await poll(undefined, 'beginning');
    expect(keyPart(first.events[0] as unknown as RowEvent)).toEqual(['"12345678901234567891"']);
    const second = await poll(first.state, 'beginning');
    expect(keyPart(second.events[0] as unknown as RowEvent)).toEqual(['12345678901234567891']);
    const legacy = { ...second.state, position: { ...(second.state.position as object), afterText: undefined } };
    const next = await poll(legacy, 'beginning');
    expect(keyPart(next.events[0] as unknown as RowEvent)).toEqual(['"a"']);
    const edited = { ...first.state, position: { ...(first.state.position as object), afterText: ['1'] } };
    await expect(poll(edited, 'beginning')).rejects.toMatchObject({ code: 'TRIGGER_STATE_INVALID' });
  });
});
