/**
 * REVIEW8 R145: table-sync and new-row take the primary key's columns from describeTable's 30 s cache
 * by table name. After a migration to a composite key (DROP CONSTRAINT …_pkey, ADD PRIMARY KEY
 * (tenant, id)) a run within those 30 s paged by the old column, no longer unique: rows never
 * delivered, two rows sharing one id, the run "done". The statement that reads the rows also
 * confirms the primary key it was built from (keyTypesSql), and a stale one is read again.
 */
import { pollTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('key_moved');

const rowOf = (event: TriggerEvent) => {
  const row = (event as unknown as { new: { tenant: number; id: number } }).new;
  return `${row.tenant}/${row.id}`;
};

async function run(trigger: 'table-sync' | 'new-row', config: Record<string, unknown>): Promise<TriggerEvent[]> {
  let state: TriggerState | undefined;
  const events: TriggerEvent[] = [];
  for (let polls = 0; polls < 40; polls++) {
    const result = await pollTrigger(trigger, { connection: db.config, config, state });
    state = result.state;
    if (result.events.length === 0) return events;
    events.push(...result.events);
  }
  throw new Error(`${trigger}: still delivering after 40 polls: ${events.map(rowOf).join(' ')}`);
}

/** Every row of the table as tenant/id, in key order. */
async function tableRows(table: string): Promise<string[]> {
  const rows = await db.sql(`SELECT tenant, id FROM ${table} ORDER BY tenant, id`);
  return rows.map((row) => `${row.tenant as number}/${row.id as number}`);
}

/** Keyed by tenant; then the key becomes (tenant, id), and each tenant gets two more rows. */
async function migrate(table: string): Promise<void> {
  await db.sql(`ALTER TABLE ${table} DROP CONSTRAINT ${table}_pkey, ADD PRIMARY KEY (tenant, id);
    INSERT INTO ${table} (tenant, id) SELECT t, i FROM generate_series(1, 8) t, generate_series(2, 3) i`);
}

test('table-sync right after the primary key moved to (tenant, id): every row once, one id per row', async () => {
  await db.sql('CREATE TABLE moved (tenant int NOT NULL, id int NOT NULL, v int, PRIMARY KEY (tenant)); INSERT INTO moved SELECT g, 1, g FROM generate_series(1, 8) g');
  // The first run caches the table's shape: key (tenant).
  expect((await run('table-sync', { tables: ['moved'], batchSize: 2 })).map(rowOf)).toEqual(await tableRows('moved'));
  await migrate('moved');
  // Within the cache's 30 s: paged by tenant alone, 8 of 24 rows were never delivered and 8 ids were shared.
  const events = await run('table-sync', { tables: ['moved'], batchSize: 2 });
  expect(events.map(rowOf)).toEqual(await tableRows('moved'));
  expect(new Set(events.map((event) => event.id)).size).toBe(24);
  expect((events[1] as unknown as { key: unknown }).key).toEqual({ tenant: 1, id: 2 });
}, 120_000);

test('new-row right after the primary key moved to (tenant, id): every row once, one id per row', async () => {
  await db.sql('CREATE TABLE moved_rows (grp int NOT NULL DEFAULT 1, tenant int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant)); INSERT INTO moved_rows SELECT 1, g, 1 FROM generate_series(1, 8) g');
  const config = { table: 'moved_rows', column: 'grp', from: 'beginning', batchSize: 2 };
  expect((await run('new-row', config)).map(rowOf)).toEqual(await tableRows('moved_rows'));
  await migrate('moved_rows');
  // Ordered by (grp, tenant) only, the cursor passed each tenant's other rows.
  const events = await run('new-row', config);
  expect(events.map(rowOf)).toEqual(await tableRows('moved_rows'));
  expect(new Set(events.map((event) => event.id)).size).toBe(24);
}, 120_000);

test('a table-sync state made with the old key is refused once the key moved, not paged by it', async () => {
  await db.sql('CREATE TABLE moved_mid (tenant int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant)); INSERT INTO moved_mid SELECT g, 1 FROM generate_series(1, 8) g');
  const config = { tables: ['moved_mid'], batchSize: 2 };
  const first = await pollTrigger('table-sync', { connection: db.config, config });
  await migrate('moved_mid');
  const error = await pollTrigger('table-sync', { connection: db.config, config, state: first.state }).then(
    () => undefined,
    (e: unknown) => e as { code?: string; message?: string },
  );
  expect(error?.code).toBe('TRIGGER_STATE_INVALID');
  expect(error?.message).toMatch(/^state\.position\.after does not fit the table's primary key/);
}, 120_000);

test('new-row started from "now" right after the primary key moved: its start is a cursor of the new key, and the next row is delivered', async () => {
  await db.sql('CREATE TABLE moved_now (grp int NOT NULL DEFAULT 1, tenant int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant)); INSERT INTO moved_now (tenant, id) SELECT g, 1 FROM generate_series(1, 8) g');
  const config = { table: 'moved_now', column: 'grp', batchSize: 2 };
  await pollTrigger('new-row', { connection: db.config, config }); // caches the shape: key (tenant)
  await migrate('moved_now');
  // Started by the old key: a cursor of 2 values, refused (TRIGGER_STATE_INVALID) once the poll saw the new key.
  const started = await pollTrigger('new-row', { connection: db.config, config });
  expect(started.events).toEqual([]);
  await db.sql('INSERT INTO moved_now VALUES (2, 1, 9)');
  let state = started.state;
  const delivered: string[] = [];
  for (let polls = 0; polls < 10 && delivered.length === 0; polls++) {
    const result = await pollTrigger('new-row', { connection: db.config, config, state });
    state = result.state;
    delivered.push(...result.events.map(rowOf));
  }
  expect(delivered).toEqual(['1/9']);
}, 120_000);
