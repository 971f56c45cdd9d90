/**
 * table-sync's event ids as docs/triggers/table-sync.md gives them: `<hash>:<the text of each key
 * column, as a JSON array of strings>`, also for key texts that JSON escapes (a quote, a backslash,
 * control characters) and those it does not. keyset.ts builds a one-column key's id without
 * JSON.stringify when nothing needs escaping (jsonString): its mutation run (2026-11-30, ks-2) found
 * that fast path unpinned, since every earlier key text was plain; and that no test looked at the
 * events of a batch that reads no row, or at an event's `op`.
 */
import { pollTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('sync_id_format');

// Each of JSON's escapes, alone and inside a word, plus texts it leaves as they are (space, ü, an emoji, '').
const TEXTS = ['plain', 'a"b', '"', 'back\\slash', '\\', 'tab\there', 'line\nbreak', '\u0001', '\u001f', ' ', 'ü', '😀', ''];

beforeAll(async () => {
  await db.sql(`CREATE TABLE one (k text PRIMARY KEY); CREATE TABLE two (a text, b int, PRIMARY KEY (a, b));
    CREATE TABLE empty (k int PRIMARY KEY); CREATE TABLE four (k int PRIMARY KEY); INSERT INTO four SELECT generate_series(1, 4)`);
  await db.sql('INSERT INTO one SELECT pg_catalog.unnest($1::text[])', [TEXTS]);
  await db.sql('INSERT INTO two SELECT t, 1 FROM pg_catalog.unnest($1::text[]) AS t', [TEXTS]);
}, 60_000);

const idsOf = async (table: string): Promise<TriggerEvent[]> => (await pollTrigger('table-sync', { connection: db.config, config: { tables: [table], batchSize: 100 } })).events;
const split = (id: string) => ({ hash: id.slice(0, id.indexOf(':')), key: JSON.parse(id.slice(id.indexOf(':') + 1)) as unknown });

test('a one-column key: the id is the hash, then the key\'s text as a JSON array, whatever JSON escapes in it', async () => {
  const events = await idsOf('one');
  expect(events.map((event) => (event.key as { k: string }).k).sort()).toEqual([...TEXTS].sort());
  for (const event of events) {
    const text = (event.key as { k: string }).k;
    expect(event.id).toBe(`${split(event.id).hash}:${JSON.stringify([text])}`);
    expect(split(event.id).key).toEqual([text]);
  }
  expect(new Set(events.map((event) => split(event.id).hash)).size).toBe(1);
  expect(new Set(events.map((event) => JSON.stringify([event.op, event.schema, event.table])))).toEqual(new Set([JSON.stringify(['READ', 'public', 'one'])]));
});

test('a batch that reads no row delivers no event: an empty table, and the batch after one that filled its batchSize exactly', async () => {
  const empty = await pollTrigger('table-sync', { connection: db.config, config: { tables: ['empty'], batchSize: 2 } });
  expect(empty.events).toEqual([]);
  const counts: number[] = [];
  let state: TriggerState | undefined;
  for (let polls = 0; polls < 4; polls++) {
    const result = await pollTrigger('table-sync', { connection: db.config, config: { tables: ['four'], batchSize: 2 }, state });
    state = result.state;
    counts.push(result.events.length);
  }
  expect(counts).toEqual([2, 2, 0, 0]);
});

test('a two-column key: the same texts, each column\'s text a string of the array', async () => {
  const events = await idsOf('two');
  expect(events).toHaveLength(TEXTS.length);
  for (const event of events) {
    const { a, b } = event.key as { a: string; b: number };
    expect(event.id).toBe(`${split(event.id).hash}:${JSON.stringify([a, String(b)])}`);
  }
});
