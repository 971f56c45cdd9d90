/**
 * row-changes' statement-level capture (transition tables, one INSERT … SELECT per statement) on
 * ordinary tables, and the row-level one kept where a statement trigger would miss rows
 * (partitioned tables, partitions, inheritance): multi-row statements keep every row, in order,
 * with old and new paired right even when the key changes; upserts; composite and missing keys.
 */
import { activateTrigger, deactivateTrigger, listActivations, removeActivation } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { poll } from './helpers.js';

const db = useTestDatabase('rcstatements');

beforeEach(async () => {
  for (const activation of await listActivations(db.config)) await removeActivation(db.config, activation.fingerprint);
  await db.sql('DROP TABLE IF EXISTS items, pairs, nokey, events, parent_t, aliases, solo, orders, orders_all, legacy_parent CASCADE');
  await db.sql('CREATE TABLE items (id int PRIMARY KEY, note text NOT NULL)');
  await db.sql('CREATE TABLE pairs (a int, b int, v text, PRIMARY KEY (b, a))');
  await db.sql('CREATE TABLE nokey (v text)');
});

const request = (config: object, state?: unknown) => ({ connection: db.config, config, state });

async function triggersOn(table: string): Promise<string[]> {
  const rows = await db.sql<{ t: string }>(
    `SELECT tgname || CASE WHEN tgtype & 1 = 1 THEN ' (row)' ELSE ' (statement)' END AS t FROM pg_trigger
      WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY tgname`, [table]);
  return rows.map((r) => r.t.replace(/pg_actions_rc_[0-9a-f]{16}/, 'pg_actions_rc_F')).sort();
}

test('an ordinary table gets one statement trigger per chosen operation; deactivation removes them', async () => {
  const config = { tables: ['items'], operations: ['INSERT', 'DELETE'] };
  await activateTrigger('row-changes', request(config));
  expect(await triggersOn('items')).toEqual([
    'pg_actions_rc_F_delete (statement)', 'pg_actions_rc_F_insert (statement)', 'pg_actions_rc_F_partition_guard (row)',
  ]);
  await activateTrigger('row-changes', request({ tables: ['items'] }));
  expect(await triggersOn('items')).toEqual([
    'pg_actions_rc_F_delete (statement)', 'pg_actions_rc_F_delete (statement)', 'pg_actions_rc_F_insert (statement)',
    'pg_actions_rc_F_insert (statement)', 'pg_actions_rc_F_partition_guard (row)', 'pg_actions_rc_F_partition_guard (row)',
    'pg_actions_rc_F_update (statement)',
  ]);
  await deactivateTrigger('row-changes', request(config));
  await deactivateTrigger('row-changes', request({ tables: ['items'] }));
  expect(await triggersOn('items')).toEqual([]);
});

test('multi-row statements: every row, in write order, old and new paired by row even when the key changes', async () => {
  const config = { tables: ['items', 'pairs', 'nokey'], batchSize: 1000 };
  await activateTrigger('row-changes', request(config));
  const start = await poll('row-changes', request(config));
  await db.sql(`INSERT INTO items SELECT g, 'note ' || g FROM generate_series(1, 300) g`);
  await db.sql(`UPDATE items SET id = id + 1000 WHERE id % 3 = 0`);
  await db.sql(`DELETE FROM items WHERE id > 1000 AND id <= 1030`);
  await db.sql(`UPDATE items SET note = note WHERE false`); // no rows: no event
  await db.sql(`INSERT INTO pairs VALUES (1, 2, 'x'), (3, 4, 'y')`);
  await db.sql(`INSERT INTO nokey VALUES ('a')`);
  const { events } = await poll('row-changes', request(config, start.state));
  const inserts = events.filter((e) => e.op === 'INSERT' && e.table === 'items');
  expect(inserts.map((e) => e.key)).toEqual(Array.from({ length: 300 }, (_, i) => ({ id: i + 1 })));
  expect(inserts[41]).toMatchObject({ new: { id: 42, note: 'note 42' }, old: null });
  const updates = events.filter((e) => e.op === 'UPDATE');
  expect(updates).toHaveLength(100);
  for (const update of updates) {
    const old = update.old as { id: number; note: string };
    const now = update.new as { id: number; note: string };
    expect(now.id).toBe(old.id + 1000);
    expect(now.note).toBe(old.note); // the images of one row, not of two
    expect(old.note).toBe(`note ${old.id}`);
    expect(update.key).toEqual({ id: now.id });
  }
  expect(updates.map((e) => (e.old as { id: number }).id)).toEqual(Array.from({ length: 100 }, (_, i) => (i + 1) * 3));
  const deletes = events.filter((e) => e.op === 'DELETE');
  expect(deletes.map((e) => e.key)).toEqual(Array.from({ length: 10 }, (_, i) => ({ id: 1003 + i * 3 })));
  expect(deletes[0]).toMatchObject({ new: null, old: { id: 1003, note: 'note 3' } });
  // Statements arrive in the order they ran.
  expect(events.map((e) => `${e.table}:${e.op}`).filter((v, i, all) => v !== all[i - 1])).toEqual([
    'items:INSERT', 'items:UPDATE', 'items:DELETE', 'pairs:INSERT', 'nokey:INSERT',
  ]);
  expect(events.filter((e) => e.table === 'pairs').map((e) => e.key)).toEqual([{ b: 2, a: 1 }, { b: 4, a: 3 }]);
  expect(events.filter((e) => e.table === 'nokey')).toEqual([expect.objectContaining({ key: null, new: { v: 'a' } })]);
  expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
});

test('an upsert reports the rows it updated and the rows it inserted (as row-level triggers would: the row that conflicted first)', async () => {
  const config = { tables: ['items'] };
  await activateTrigger('row-changes', request(config));
  const start = await poll('row-changes', request(config));
  await db.sql(`INSERT INTO items VALUES (1, 'a')`);
  await db.sql(`INSERT INTO items VALUES (1, 'b'), (2, 'c') ON CONFLICT (id) DO UPDATE SET note = EXCLUDED.note`);
  const { events } = await poll('row-changes', request(config, start.state));
  expect(events.map((e) => [e.op, e.key, (e.new as { note: string }).note, (e.old as { note: string } | null)?.note ?? null])).toEqual([
    ['INSERT', { id: 1 }, 'a', null],
    ['UPDATE', { id: 1 }, 'b', 'a'],
    ['INSERT', { id: 2 }, 'c', null],
  ]);
});

test('partitioned tables and inheritance keep the row-level trigger: rows written through a parent or into a partition are all seen', async () => {
  await db.sql('CREATE TABLE events (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)');
  await db.sql(`CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`);
  await db.sql('CREATE TABLE parent_t (id int PRIMARY KEY, v text)');
  await db.sql('CREATE TABLE child_t () INHERITS (parent_t)');
  const config = { tables: ['events', 'child_t'] };
  await activateTrigger('row-changes', request(config));
  expect(await triggersOn('events')).toEqual(['pg_actions_rc_F (row)']);
  expect(await triggersOn('child_t')).toEqual(['pg_actions_rc_F (row)']);
  const start = await poll('row-changes', request(config));
  await db.sql(`INSERT INTO events VALUES (1, '2026-03-01')`);
  await db.sql(`INSERT INTO events_2026 VALUES (2, '2026-04-01')`);
  await db.sql(`INSERT INTO child_t VALUES (7, 'x')`);
  await db.sql(`UPDATE parent_t SET v = 'y' WHERE id = 7`);
  const { events } = await poll('row-changes', request(config, start.state));
  expect(events.map((e) => [e.op, e.table, e.key])).toEqual([
    ['INSERT', 'events', { id: 1, at: '2026-03-01' }],
    ['INSERT', 'events', { id: 2, at: '2026-04-01' }],
    // An inheritance child has no primary key of its own (INHERITS does not copy it): key is null.
    ['INSERT', 'child_t', null],
    ['UPDATE', 'child_t', null],
  ]);
  await db.sql('DROP TABLE child_t');
});

test('columns named like the aliases of the capture SQL (c, i, j, r, o, k, key_columns…) keep whole-row images and keys', async () => {
  await db.sql(`CREATE TABLE aliases (c int, i int, j text, r text, o text, k text, key_columns text, pg_actions_new text, PRIMARY KEY (c, k))`);
  await db.sql(`CREATE TABLE solo (c numeric PRIMARY KEY, j text)`);
  const config = { tables: ['aliases', 'solo'] };
  await activateTrigger('row-changes', request(config));
  const start = await poll('row-changes', request(config));
  await db.sql(`INSERT INTO aliases VALUES (1, 2, 'j', 'r', 'o', 'k', 'kc', 'n')`);
  await db.sql(`UPDATE aliases SET i = 3`);
  await db.sql(`DELETE FROM aliases`);
  await db.sql(`INSERT INTO solo VALUES (21.5, 'kitchen')`);
  await db.sql(`UPDATE solo SET j = 'hall'`);
  await db.sql(`DELETE FROM solo`);
  const { events } = await poll('row-changes', request(config, start.state));
  const row = { c: 1, i: 2, j: 'j', r: 'r', o: 'o', k: 'k', key_columns: 'kc', pg_actions_new: 'n' };
  expect(events.map((e) => [e.op, e.table, e.key, e.old, e.new])).toEqual([
    ['INSERT', 'aliases', { c: 1, k: 'k' }, null, row],
    ['UPDATE', 'aliases', { c: 1, k: 'k' }, row, { ...row, i: 3 }],
    ['DELETE', 'aliases', { c: 1, k: 'k' }, { ...row, i: 3 }, null],
    ['INSERT', 'solo', { c: 21.5 }, null, { c: 21.5, j: 'kitchen' }],
    ['UPDATE', 'solo', { c: 21.5 }, { c: 21.5, j: 'kitchen' }, { c: 21.5, j: 'hall' }],
    ['DELETE', 'solo', { c: 21.5 }, { c: 21.5, j: 'hall' }, null],
  ]);
});

test('a watched ordinary table cannot silently become a partition or inheritance child; after re-activation rows written through the parent are seen', async () => {
  await db.sql(`CREATE TABLE orders (id int, region text NOT NULL, v text, PRIMARY KEY (id, region))`);
  await db.sql(`CREATE TABLE orders_all (id int, region text NOT NULL, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region)`);
  await db.sql(`CREATE TABLE legacy_parent (id int, region text NOT NULL, v text)`);
  const config = { tables: ['orders'] };
  await activateTrigger('row-changes', request(config));
  // PostgreSQL 12 refuses for any trigger with transition tables (it names the first statement
  // trigger it finds); from 13 only row triggers with them count, and the guard is the one named.
  const version = (await db.sql<{ version: number }>(`SELECT current_setting('server_version_num')::int AS version`))[0]!.version;
  const refusing = version >= 130000 ? '_partition_guard' : '(_partition_guard|_insert|_update|_delete)';
  await expect(db.sql(`ALTER TABLE orders_all ATTACH PARTITION orders FOR VALUES IN ('eu')`))
    .rejects.toThrow(new RegExp(`trigger "pg_actions_rc_[0-9a-f]{16}${refusing}" prevents table "orders" from becoming a partition`));
  await expect(db.sql(`ALTER TABLE orders INHERIT legacy_parent`))
    .rejects.toThrow(new RegExp(`trigger "pg_actions_rc_[0-9a-f]{16}${refusing}" prevents table "orders" from becoming an inheritance child`));
  const start = await poll('row-changes', request(config));
  await db.sql(`INSERT INTO orders VALUES (1, 'eu', 'direct')`);
  // The documented way: drop the guard (on PostgreSQL 12 every trigger of the activation on the table) and attach in one transaction, then activate again.
  const dropped = await db.sql<{ tgname: string }>(
    `SELECT tgname FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND tgname ~ $1`, [`^pg_actions_rc_[0-9a-f]{16}${refusing}$`]);
  expect(dropped.length).toBe(version >= 130000 ? 1 : 4);
  await db.sql(`BEGIN; ${dropped.map(({ tgname }) => `DROP TRIGGER ${tgname} ON orders; `).join('')}ALTER TABLE orders_all ATTACH PARTITION orders FOR VALUES IN ('eu'); COMMIT`);
  await activateTrigger('row-changes', request(config));
  expect(await triggersOn('orders')).toEqual(['pg_actions_rc_F (row)']);
  await db.sql(`INSERT INTO orders_all VALUES (2, 'eu', 'via parent')`);
  await db.sql(`UPDATE orders_all SET v = 'updated via parent' WHERE id = 1`);
  const { events } = await poll('row-changes', request(config, start.state));
  expect(events.map((e) => [e.op, e.table, e.key])).toEqual([
    ['INSERT', 'orders', { id: 1, region: 'eu' }],
    ['INSERT', 'orders', { id: 2, region: 'eu' }],
    ['UPDATE', 'orders', { id: 1, region: 'eu' }],
  ]);
});

test('numbers a double cannot hold exactly (bigint, numeric) arrive as strings of their exact digits, never rounded', async () => {
  await db.sql('DROP TABLE IF EXISTS exact_numbers');
  await db.sql('CREATE TABLE exact_numbers (id bigint PRIMARY KEY, n numeric, f float8, small int)');
  const config = { tables: ['exact_numbers'], operations: ['INSERT'] };
  await activateTrigger('row-changes', request(config));
  const start = await poll('row-changes', request(config));
  await db.sql(`INSERT INTO exact_numbers VALUES (9007199254740993, 12345678901234567890.123, 0.1, 7)`);
  const { events } = await poll('row-changes', request(config, start.state));
  expect(events.map((e) => [e.key, e.new])).toEqual([
    [{ id: '9007199254740993' }, { id: '9007199254740993', n: '12345678901234567890.123', f: 0.1, small: 7 }],
  ]);
  await deactivateTrigger('row-changes', request(config));
});
