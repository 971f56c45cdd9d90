/**
 * A primary key column named "__proto__" (a legal PostgreSQL name): table-sync's event key holds it as
 * an own property, as the row does (connection/row-field.ts). Found by the mutation run of keyset.ts'
 * rowKeyOf (2026-11-30, mk-3): its one-column path assigned `key[column] = …`, which for "__proto__"
 * sets the object's prototype instead (an int: dropped, the key read `{}`; a jsonb object: made the
 * key's prototype), while the many-column path (Object.fromEntries) kept it.
 */
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('sync_proto_key');

beforeAll(async () => {
  await db.sql(`CREATE TABLE protos ("__proto__" int PRIMARY KEY, v text); INSERT INTO protos SELECT g, 'v' || g FROM generate_series(1, 3) g;
    CREATE TABLE proto_docs ("__proto__" jsonb PRIMARY KEY); INSERT INTO proto_docs VALUES ('{"polluted": 1}'), ('{"polluted": 2}')`);
}, 60_000);

async function keys(table: string): Promise<Record<string, unknown>[]> {
  const seen: Record<string, unknown>[] = [];
  let state: TriggerState | undefined;
  for (let polls = 0; polls < 4; polls++) {
    const result = await pollTrigger('table-sync', { connection: db.config, config: { tables: [table], batchSize: 2 }, state });
    state = result.state;
    seen.push(...result.events.map((event) => event.key as Record<string, unknown>));
  }
  return seen;
}

test('a one-column key named "__proto__": each event\'s key holds it as an own property, the key\'s prototype untouched', async () => {
  const ints = await keys('protos');
  expect(ints.map((key) => JSON.stringify(key))).toEqual(['{"__proto__":1}', '{"__proto__":2}', '{"__proto__":3}']);
  const docs = await keys('proto_docs');
  expect(docs.map((key) => JSON.stringify(key))).toEqual(['{"__proto__":{"polluted":1}}', '{"__proto__":{"polluted":2}}']);
  for (const key of [...ints, ...docs]) {
    expect(Object.getPrototypeOf(key)).toBe(Object.prototype);
    expect(Object.keys(key)).toEqual(['__proto__']);
  }
}, 60_000);
