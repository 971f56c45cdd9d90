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
