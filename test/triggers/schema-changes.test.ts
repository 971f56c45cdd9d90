/** schema-changes: created, altered (column added, renamed table) and dropped tables in watched schemas only. */
import { sampleEvents } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { poll } from './helpers.js';

const db = useTestDatabase('schemachanges');
beforeAll(async () => {
  await db.sql('CREATE SCHEMA elsewhere');
});

test('CREATE_TABLE, ALTER_TABLE and DROP_TABLE, with columns; other schemas are ignored; nothing twice', async () => {
  const config = { schemas: ['public'] };
  const start = await poll('schema-changes', { connection: db.config, config });
  expect(start.events).toEqual([]);
  await db.sql('CREATE TABLE invoices (id int PRIMARY KEY, total numeric(10,2))');
  await db.sql('CREATE TABLE elsewhere.hidden (id int)');
  const created = await poll('schema-changes', { connection: db.config, config, state: start.state });
  expect(created.events).toEqual([
    expect.objectContaining({ op: 'CREATE_TABLE', schema: 'public', table: 'invoices', columns: [{ name: 'id', type: 'integer' }, { name: 'total', type: 'numeric(10,2)' }] }),
  ]);
  await db.sql('ALTER TABLE invoices ADD COLUMN paid boolean');
  const altered = await poll('schema-changes', { connection: db.config, config, state: created.state });
  expect(altered.events).toHaveLength(1);
  expect(altered.events[0]).toMatchObject({ op: 'ALTER_TABLE', table: 'invoices', previousColumns: [{ name: 'id' }, { name: 'total' }] });
  expect((altered.events[0]!.columns as unknown[]).length).toBe(3);
  await db.sql('DROP TABLE invoices');
  const dropped = await poll('schema-changes', { connection: db.config, config, state: altered.state });
  expect(dropped.events.map((e) => [e.op, e.table])).toEqual([['DROP_TABLE', 'invoices']]);
  expect((await poll('schema-changes', { connection: db.config, config, state: dropped.state })).events).toEqual([]);
  // replaying a state gives the same ids
  const again = await poll('schema-changes', { connection: db.config, config, state: created.state });
  expect(again.events.map((e) => e.op)).toEqual(['DROP_TABLE']);
});

test('sampleEvents says which mode runs', async () => {
  const sample = await sampleEvents('schema-changes', { connection: db.config, config: {} });
  expect(sample.notes.join(' ')).toMatch(/catalog snapshots/);
});
