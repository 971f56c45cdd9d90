/**
 * REVIEW7 R124: key orders (the key type's btree operators, key-order.ts) are cached by table name for
 * 30 s. A key retyped in that time (ALTER COLUMN … TYPE, the usual migration before "sync it again")
 * was compared with the old type's operators while ORDER BY sorted with the new type's: table-sync
 * skipped rows and repeated others, new-row skipped a row for good. Each statement that compares
 * reads the key's current types too, and a batch read with stale orders is read again.
 */
import { pollTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('key_retyped');

beforeAll(async () => {
  // citext off the search_path and the C collation: text's `>` (case-sensitive) and citext's disagree.
  await db.sql('CREATE SCHEMA ext; CREATE EXTENSION citext SCHEMA ext');
}, 60_000);

const keyOf = (event: TriggerEvent) => String((event as unknown as { key: { k: string } }).key.k);

async function syncKeys(table: string): Promise<string[]> {
  let state: TriggerState | undefined;
  const seen: string[] = [];
  for (let polls = 0; polls < 30; polls++) {
    const result = await pollTrigger('table-sync', { connection: db.config, config: { tables: [table], batchSize: 2 }, state });
    state = result.state;
    if (result.events.length === 0) return seen;
    seen.push(...result.events.map(keyOf));
  }
  throw new Error(`${table}: still delivering after 30 polls: ${seen.join(' ')}`);
}

test('table-sync right after ALTER COLUMN … TYPE on the same connection: every row once, in the new type\'s order', async () => {
  await db.sql(`CREATE TABLE retyped (k text COLLATE "C" PRIMARY KEY);
    INSERT INTO retyped VALUES ('a1'), ('B2'), ('c3'), ('D4'), ('e5'), ('F6'), ('g7'), ('H8')`);
  // The first run caches text's orders (C: upper case first).
  expect(await syncKeys('retyped')).toEqual(['B2', 'D4', 'F6', 'H8', 'a1', 'c3', 'e5', 'g7']);
  await db.sql('ALTER TABLE retyped ALTER COLUMN k TYPE ext.citext COLLATE "C"');
  // Within the cache's 30 s: with text's `>` on a citext ORDER BY, D4, F6 and H8 were never delivered and a1 came twice.
  expect(await syncKeys('retyped')).toEqual(['a1', 'B2', 'c3', 'D4', 'e5', 'F6', 'g7', 'H8']);
}, 120_000);

test('new-row right after ALTER COLUMN … TYPE: a row the old type\'s order puts before the cursor is not skipped', async () => {
  await db.sql(`CREATE TABLE retyped_rows (k text COLLATE "C" PRIMARY KEY); INSERT INTO retyped_rows VALUES ('a'), ('b')`);
  const config = { table: 'retyped_rows', column: 'k', from: 'beginning' as const };
  let state: TriggerState | undefined;
  const poll = async () => {
    const result = await pollTrigger('new-row', { connection: db.config, config, state });
    state = result.state;
    return result.events.map(keyOf);
  };
  const first = await poll();
  expect(first).toEqual(['a', 'b']);
  await db.sql('ALTER TABLE retyped_rows ALTER COLUMN k TYPE ext.citext COLLATE "C"; INSERT INTO retyped_rows VALUES (\'C\'), (\'c2\')');
  // citext orders C before c2, both after b; text's `>` sees only c2 after b, and the cursor then passed C for good.
  const delivered: string[] = [];
  for (let polls = 0; polls < 10 && delivered.length < 2; polls++) delivered.push(...(await poll()));
  expect(delivered).toEqual(['C', 'c2']);
}, 120_000);

/**
 * REVIEW7 R133: the cursor (and the horizon) hold values as events carry them, a bytea as base64; bound
 * back as `$n::bytea`, bytea's input read that text as its own characters, so rows sharing the
 * ordering value were delivered again at every poll and most never were.
 */
describe('new-row over bytea (REVIEW7 R133)', () => {
  const pollAll = async (config: Record<string, unknown>) => {
    let state: TriggerState | undefined;
    const seen: string[] = [];
    for (let polls = 0; polls < 12; polls++) {
      const result = await pollTrigger('new-row', { connection: db.config, config: { ...config, from: 'beginning', batchSize: 2 }, state });
      state = result.state;
      seen.push(...result.events.map((event) => String((event as unknown as { new: { note: string } }).new.note)));
    }
    return seen.sort();
  };

  test('a bytea primary key, rows sharing the ordering value: each row once', async () => {
    await db.sql(`CREATE TABLE bytea_events (id bytea PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), note text);
      INSERT INTO bytea_events (id, note) SELECT decode(md5(i::text), 'hex'), 'row ' || i FROM generate_series(1, 7) i`);
    expect(await pollAll({ table: 'bytea_events', column: 'created_at' })).toEqual(['row 1', 'row 2', 'row 3', 'row 4', 'row 5', 'row 6', 'row 7']);
  }, 120_000);

  test('ordered by a bytea column: each row once', async () => {
    await db.sql(`CREATE TABLE bytea_ordered (id int PRIMARY KEY, b bytea NOT NULL, note text);
      INSERT INTO bytea_ordered SELECT i, decode(md5(i::text), 'hex'), 'row ' || i FROM generate_series(1, 7) i`);
    expect(await pollAll({ table: 'bytea_ordered', column: 'b' })).toEqual(['row 1', 'row 2', 'row 3', 'row 4', 'row 5', 'row 6', 'row 7']);
  }, 120_000);
});

test('new-row on a column without an ordering (json) is refused naming config.column, not a database error', async () => {
  await db.sql(`CREATE TABLE unordered (id int PRIMARY KEY, doc json); INSERT INTO unordered VALUES (1, '{}')`);
  const error = await pollTrigger('new-row', { connection: db.config, config: { table: 'unordered', column: 'doc', from: 'beginning' } }).then(
    () => undefined,
    (e: unknown) => e as { code?: string; message?: string },
  );
  expect(error?.code).toBe('INVALID_INPUT');
  expect(error?.message).toMatch(/^config\.column: the column "doc" has a type without a default btree ordering/);
}, 60_000);
