/**
 * table-sync's event ids are unique whenever the keys are (REVIEW6 R121). Events carry key values
 * as Query Rows parses them, and a jsonb number a double cannot hold becomes a string of its exact
 * digits: the keys {"n": 12345678901234567891} and {"n": "12345678901234567891"}, two rows of a
 * jsonb primary key, carried the same `key` and had the same id, so a consumer that drops repeated
 * ids kept one of them. The id is now the key's text as PostgreSQL wrote it.
 */
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('sync_key_ids');

/** Pairs that parse to one value: a number beyond a double, and the same digits as a string. */
const COLLIDING = ['{"n": 12345678901234567891}', '{"n": "12345678901234567891"}', '[1.0000000000000000001]', '["1.0000000000000000001"]', '12345678901234567891', '"12345678901234567891"'];

interface SyncEvent {
  id: string;
  key: Record<string, unknown>;
}

beforeAll(async () => {
  await db.sql('CREATE TABLE j (k jsonb PRIMARY KEY, v int)');
  // Rows around them, so the pairs fall inside and across batches of 2.
  await db.sql(`INSERT INTO j SELECT k::jsonb, i::int FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i)`, [[...COLLIDING, '{"n": 1}', '{"n": "a\\"b\\\\c\\td"}', '[]', '[1, "1"]', 'null', '{"é": "ü"}']]);
  // Two columns, one of them jsonb: the JSON array of both texts.
  await db.sql('CREATE TABLE j2 (k jsonb, i int, PRIMARY KEY (k, i))');
  await db.sql(`INSERT INTO j2 SELECT k::jsonb, i FROM unnest($1::text[]) AS k, generate_series(1, 2) AS i`, [COLLIDING]);
});

async function syncAll(table: string, batchSize: number): Promise<{ events: SyncEvent[]; states: (TriggerState | undefined)[] }> {
  let state: TriggerState | undefined;
  const events: SyncEvent[] = [];
  const states: (TriggerState | undefined)[] = [];
  for (let polls = 0; ; polls++) {
    states.push(state);
    const result = await pollTrigger('table-sync', { connection: db.config, config: { tables: [table], batchSize }, state });
    state = result.state;
    if (result.events.length === 0) return { events, states };
    events.push(...(result.events as unknown as SyncEvent[]));
    if (polls > 40) throw new Error(`${table}: still delivering after ${polls} polls`);
  }
}

/** The id's part after the run and table's hash. */
const keyPart = (event: SyncEvent) => JSON.parse(event.id.slice(event.id.indexOf(':') + 1)) as string[];

test.each([1, 2, 3, 1000])('a jsonb key, batches of %i: one id per row, the key as PostgreSQL writes it', async (batchSize) => {
  const rows = await db.sql('SELECT k::text AS t FROM j ORDER BY k');
  const { events } = await syncAll('j', batchSize);
  expect(events).toHaveLength(rows.length);
  expect(new Set(events.map((event) => event.id)).size).toBe(rows.length);
  expect(events.map(keyPart)).toEqual(rows.map((row) => [row.t]));
  // One run: every id has the same prefix.
  expect(new Set(events.map((event) => event.id.slice(0, event.id.indexOf(':')))).size).toBe(1);
  // The key itself is lossy there (documented): the two rows of a pair carry the same key.
  const keys = events.map((event) => JSON.stringify(event.key));
  expect(new Set(keys).size).toBe(rows.length - COLLIDING.length / 2);
}, 60_000);

test('a two-column key with a jsonb column: one id per row, both columns\' text', async () => {
  const rows = await db.sql('SELECT k::text AS t, i::text AS u FROM j2 ORDER BY k, i');
  const { events } = await syncAll('j2', 3);
  expect(rows).toHaveLength(COLLIDING.length * 2);
  expect(new Set(events.map((event) => event.id)).size).toBe(rows.length);
  expect(events.map(keyPart)).toEqual(rows.map((row) => [row.t, row.u]));
}, 60_000);

test('a resumed sync repeats the ids of the batch it reads again', async () => {
  const { events, states } = await syncAll('j', 2);
  // Each stored state, polled again, gives the batch it gave before: the same ids.
  let at = 0;
  for (const state of states.slice(0, -1)) {
    if (state === undefined) {
      at += 2; // the first poll starts a run: a new one, with other ids
      continue;
    }
    const again = await pollTrigger('table-sync', { connection: db.config, config: { tables: ['j'], batchSize: 2 }, state });
    const ids = (again.events as unknown as SyncEvent[]).map((event) => event.id);
    expect(ids).toEqual(events.slice(at, at + ids.length).map((event) => event.id));
    at += ids.length;
  }
  expect(at).toBe(events.length);
}, 60_000);
