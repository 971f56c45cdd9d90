/**
 * REVIEW8 R146: new-row keeps a table's key orders (and shape) for 30 s by its name. A table dropped
 * and made again with another key type in that time was polled with the old type's bound parameters
 * (`$n::pg_catalog.int4` for a text key): the statement failed with INVALID_VALUE on a value the user
 * never gave ("d4"), before the key types it reads could show the orders stale. Such a failure now
 * forgets the cached orders and shape and polls once more.
 */
import { pollTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('key_retyped_rebuilt');
const keyOf = (event: TriggerEvent) => String((event as unknown as { key: { id: unknown } }).key.id);

async function newRowKeys(): Promise<string[]> {
  let state: TriggerState | undefined;
  const seen: string[] = [];
  for (let polls = 0; polls < 5; polls++) {
    const result = await pollTrigger('new-row', { connection: db.config, config: { table: 'rebuilt', column: 'id', from: 'beginning', batchSize: 2 }, state });
    state = result.state;
    seen.push(...result.events.map(keyOf));
  }
  return seen;
}

test('new-row right after its table was made again with a text key (int before): every row of the new table', async () => {
  await db.sql('CREATE TABLE rebuilt (id int PRIMARY KEY); INSERT INTO rebuilt SELECT generate_series(1, 3)');
  expect(await newRowKeys()).toEqual(['1', '2', '3']);
  await db.sql("DROP TABLE rebuilt; CREATE TABLE rebuilt (id text PRIMARY KEY); INSERT INTO rebuilt VALUES ('a1'), ('b2'), ('c3'), ('d4')");
  expect(await newRowKeys()).toEqual(['a1', 'b2', 'c3', 'd4']);
}, 60_000);

test('a state made on the table before it was made again (a cursor of two int columns, text columns now) polls on after the retry: the cursor check reads both values', async () => {
  const config = { table: 'rebuilt_pair', column: 'seq', from: 'beginning' as const, batchSize: 2 };
  await db.sql('CREATE TABLE rebuilt_pair (seq int NOT NULL, id int PRIMARY KEY); INSERT INTO rebuilt_pair SELECT g, g FROM generate_series(1, 3) g');
  const first = await pollTrigger('new-row', { connection: db.config, config });
  expect(first.state.position).toMatchObject({ after: [2, 2], afterText: ['2', '2'] });
  // Within the 30 s cache: the poll binds its cursor and horizon as int4, and fails on 'x' (22P02); R146 reads
  // the orders again, R166 checks that the cursor reads as the new types (text, text), and the poll runs again.
  await db.sql("DROP TABLE rebuilt_pair; CREATE TABLE rebuilt_pair (seq text NOT NULL, id text PRIMARY KEY); INSERT INTO rebuilt_pair VALUES ('1', 'a'), ('3', 'c'), ('x', 'x')");
  const next = await pollTrigger('new-row', { connection: db.config, config, state: first.state });
  // After the cursor ('2', '2') in text order: ('3', 'c') and ('x', 'x'); ('1', 'a') is before it.
  expect(next.events.map(keyOf)).toEqual(['c', 'x']);
}, 60_000);
