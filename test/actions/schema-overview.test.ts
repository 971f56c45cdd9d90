/**
 * Schema Overview against real tables: estimates (never-analysed honesty included) against exact
 * counts, empty and missing schemas, a least-privilege role, names that need quoting, partitions,
 * views and materialized views, and the step timeout bounding an exact count.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { preview } from '../../actions/index.js';
import type { ConnectionConfig } from '../../connection/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { watchSecret } from '../harness/secrets.js';
import { failure, ident, run } from './helpers.js';

const db = useTestDatabase('overview', {
  beforeDrop: async () => {
    await db.sql(`DROP OWNED BY ${role}`).catch(() => {});
    await db.sql(`DROP ROLE IF EXISTS ${role}`).catch(() => {});
  },
});
const role = `overview_${randomBytes(4).toString('hex')}`;
const rolePassword = 'pw-' + randomBytes(8).toString('hex');
watchSecret(rolePassword);
let asRole: ConnectionConfig;
const WEIRD_SCHEMA = 'We"ird Sch.ema';
const WEIRD_TABLES = ['Mixed Case', 'quo"te', 'semi; DROP TABLE x; --', 'a.b', 'lower'];

beforeAll(async () => {
  await db.sql(`CREATE SCHEMA shop`);
  await db.sql(`CREATE TABLE shop.orders (id bigserial PRIMARY KEY, total numeric)`);
  await db.sql(`INSERT INTO shop.orders (total) SELECT g FROM generate_series(1, 1000) g`);
  await db.sql(`CREATE TABLE shop.lines (order_id bigint, line int, sku text, PRIMARY KEY (order_id, line))`);
  await db.sql(`INSERT INTO shop.lines SELECT g, 1, 'x' FROM generate_series(1, 30) g`);
  await db.sql(`CREATE TABLE shop.secret (v text)`);
  await db.sql(`INSERT INTO shop.secret VALUES ('a'), ('b')`);
  await db.sql(`CREATE TABLE shop.hidden (v text)`);
  await db.sql(`CREATE VIEW shop.big_orders AS SELECT * FROM shop.orders WHERE total > 500`);
  await db.sql(`CREATE MATERIALIZED VIEW shop.order_stats AS SELECT count(*) AS n FROM shop.orders`);
  await db.sql(`CREATE MATERIALIZED VIEW shop.never_refreshed AS SELECT 1 AS n WITH NO DATA`);
  await db.sql(`CREATE TABLE shop.events (id int, at date) PARTITION BY RANGE (at)`);
  await db.sql(`CREATE TABLE shop.events_2025 PARTITION OF shop.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`);
  await db.sql(`CREATE TABLE shop.events_2026 PARTITION OF shop.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY RANGE (id)`);
  await db.sql(`CREATE TABLE shop.events_2026_low PARTITION OF shop.events_2026 FOR VALUES FROM (0) TO (100)`);
  await db.sql(`INSERT INTO shop.events SELECT g, '2025-06-01' FROM generate_series(1, 40) g`);
  await db.sql(`INSERT INTO shop.events SELECT g, '2026-06-01' FROM generate_series(1, 25) g`);
  await db.sql(`CREATE SCHEMA empty_schema`);
  await db.sql(`CREATE SCHEMA ${ident(WEIRD_SCHEMA)}`);
  for (const [i, table] of WEIRD_TABLES.entries()) {
    await db.sql(`CREATE TABLE ${ident(WEIRD_SCHEMA)}.${ident(table)} (${ident('Key "col"')} int PRIMARY KEY)`);
    await db.sql(`INSERT INTO ${ident(WEIRD_SCHEMA)}.${ident(table)} SELECT generate_series(1, ${i + 1})`);
  }
  // Least privilege: SELECT on orders and lines, INSERT only on secret, nothing on hidden.
  await db.sql(`CREATE ROLE ${role} LOGIN PASSWORD '${rolePassword}'`);
  await db.sql(`GRANT USAGE ON SCHEMA shop TO ${role}`);
  await db.sql(`GRANT SELECT ON shop.orders, shop.lines TO ${role}`);
  await db.sql(`GRANT INSERT ON shop.secret TO ${role}`);
  asRole = { ...db.config, user: role, password: rolePassword };
}, 60_000);

const byName = <T extends { name: string }>(tables: T[]) => Object.fromEntries(tables.map((t) => [t.name, t]));

test('estimates are null before ANALYZE (with a note), follow ANALYZE, and lag behind writes; exact counts do not', async () => {
  await db.sql(`CREATE SCHEMA lag`);
  await db.sql(`CREATE TABLE lag.t (id int PRIMARY KEY)`);
  await db.sql(`INSERT INTO lag.t SELECT generate_series(1, 1000)`);
  const before = await run('schema-overview', { connection: db.config, input: { schema: 'lag' } });
  expect(before.tables).toEqual([
    expect.objectContaining({ name: 't', rows: null, rowsExact: false, note: expect.stringContaining('never been analyzed') }),
  ]);
  await db.sql(`ANALYZE lag.t`);
  const analysed = await run('schema-overview', { connection: db.config, input: { schema: 'lag' } });
  expect(analysed.rowCounts).toEqual({ t: 1000 });
  expect(analysed.tables[0]).not.toHaveProperty('note');
  await db.sql(`DELETE FROM lag.t WHERE id > 400`);
  expect((await run('schema-overview', { connection: db.config, input: { schema: 'lag' } })).rowCounts).toEqual({ t: 1000 });
  const exact = await run('schema-overview', { connection: db.config, input: { schema: 'lag', exact: true } });
  expect(exact.tables).toEqual([
    { name: 't', kind: 'table', rows: 400, rowsExact: true, columns: ['id'], primaryKey: ['id'], sizeBytes: expect.any(Number) },
  ]);
  expect(exact.tables[0]!.sizeBytes).toBeGreaterThan(8192);
});

test('exact: every table, materialized view and partitioned table counted; partitions folded into their parent; views left out', async () => {
  const output = await run('schema-overview', { connection: db.config, input: { schema: 'shop', exact: true } });
  expect(output.tables.map((t) => t.name)).toEqual(['events', 'hidden', 'lines', 'never_refreshed', 'order_stats', 'orders', 'secret']);
  expect(output.tableCount).toBe(7);
  expect(output.rowCounts).toEqual({ events: 65, hidden: 0, lines: 30, never_refreshed: null, order_stats: 1, orders: 1000, secret: 2 });
  const tables = byName(output.tables);
  expect(tables.events).toMatchObject({ kind: 'partitioned table', rowsExact: true, columns: ['id', 'at'], primaryKey: [] });
  expect(tables.lines).toMatchObject({ kind: 'table', primaryKey: ['order_id', 'line'], columns: ['order_id', 'line', 'sku'] });
  expect(tables.order_stats).toMatchObject({ kind: 'materialized view', rowsExact: true });
  expect(tables.never_refreshed).toMatchObject({ rowsExact: false, note: expect.stringContaining('never refreshed') });
  // A partitioned table's size is its partitions' size, from the catalog (none has been analysed yet).
  const partitions = await db.sql<{ size: string }>(
    `SELECT sum(c.relpages) * current_setting('block_size')::int AS size FROM pg_partition_tree('shop.events') p JOIN pg_class c ON c.oid = p.relid`);
  expect(tables.events!.sizeBytes).toBe(Number(partitions[0]!.size));
});

test("a partitioned table's estimate adds up its leaf partitions, and is null while one leaf was never analysed", async () => {
  await db.sql(`ANALYZE shop.events_2025`);
  expect(byName((await run('schema-overview', { connection: db.config, input: { schema: 'shop' } })).tables).events!.rows).toBeNull();
  await db.sql(`ANALYZE shop.events_2026_low`);
  const events = byName((await run('schema-overview', { connection: db.config, input: { schema: 'shop' } })).tables).events!;
  expect(events.rows).toBe(65);
  // Once analysed, the catalog size is the partitions' heap (at least) and no more than pg_total_relation_size.
  const [disk] = await db.sql<{ heap: string; total: string }>(
    `SELECT sum(pg_relation_size(relid)) AS heap, sum(pg_total_relation_size(relid)) AS total FROM pg_partition_tree('shop.events')`);
  expect(events.sizeBytes).toBeGreaterThanOrEqual(Number(disk!.heap));
  expect(events.sizeBytes).toBeGreaterThan(0);
  expect(events.sizeBytes).toBeLessThanOrEqual(Number(disk!.total));
});

test('views only when asked, never counted, with a note', async () => {
  const output = await run('schema-overview', { connection: db.config, input: { schema: 'shop', exact: true, includeViews: true } });
  expect(byName(output.tables).big_orders).toEqual({
    name: 'big_orders', kind: 'view', rows: null, rowsExact: false, columns: ['id', 'total'], primaryKey: [], sizeBytes: null,
    note: 'Views are not counted: counting one runs its query.',
  });
  expect(output.tableCount).toBe(8);
});

test('a schema with no tables is an empty overview; a schema that does not exist names input.schema', async () => {
  for (const exact of [false, true]) {
    expect(await run('schema-overview', { connection: db.config, input: { schema: 'empty_schema', exact } })).toEqual({ tables: [], tableCount: 0, rowCounts: {} });
    const missing = await failure('schema-overview', { connection: db.config, input: { schema: 'Empty_Schema', exact } });
    expect(missing.code).toBe('INVALID_INPUT');
    expect(missing.problems).toEqual([expect.stringMatching(/^input\.schema names a schema that does not exist: "Empty_Schema"/)]);
  }
});

test('names with quotes, spaces, dots, semicolons and mixed case are counted through quoted identifiers', async () => {
  const output = await run('schema-overview', { connection: db.config, input: { schema: WEIRD_SCHEMA, exact: true } });
  expect(output.rowCounts).toEqual({ 'Mixed Case': 1, 'quo"te': 2, 'semi; DROP TABLE x; --': 3, 'a.b': 4, lower: 5 });
  for (const table of output.tables) expect(table).toMatchObject({ rowsExact: true, primaryKey: ['Key "col"'], columns: ['Key "col"'] });
  const sent = await preview('schema-overview', { connection: db.config, input: { schema: WEIRD_SCHEMA, exact: true } });
  expect(sent.text).toContain('FROM "We""ird Sch.ema"."quo""te"');
  expect(sent.text).toContain('FROM "We""ird Sch.ema"."semi; DROP TABLE x; --"');
  expect(sent.values).toEqual([WEIRD_SCHEMA, false, 'Mixed Case', 'a.b', 'lower', 'quo"te', 'semi; DROP TABLE x; --']);
});

test('a least-privilege role: tables it cannot see are left out, tables it cannot read keep their estimate with a note', async () => {
  await db.sql(`ANALYZE shop.secret`);
  const output = await run('schema-overview', { connection: asRole, input: { schema: 'shop', exact: true } });
  expect(output.tables.map((t) => t.name)).toEqual(['lines', 'orders', 'secret']);
  expect(output.rowCounts).toEqual({ lines: 30, orders: 1000, secret: 2 });
  expect(byName(output.tables).secret).toMatchObject({
    rowsExact: false, note: 'Not counted: the role may not SELECT from this table (or use its schema); the estimate is shown.',
  });
  expect(byName(output.tables).orders).toMatchObject({ rowsExact: true });
});

/** Another session holding `lockSql` in an open transaction for the length of `body`. */
async function whileLocked<T>(lockSql: string[], body: (pid: number) => Promise<T>): Promise<T> {
  const locker = new pg.Client({ ...db.config, ssl: false });
  await locker.connect();
  try {
    const [{ pid }] = (await locker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
    await locker.query('BEGIN');
    for (const sql of lockSql) await locker.query(sql);
    return await body(pid);
  } finally {
    await locker.query('ROLLBACK').catch(() => {});
    await locker.end();
  }
}

const LOCKED_NOTE = /^Not counted: another session holds or waits for an ACCESS EXCLUSIVE lock on it \(server process (\d+)\)/;

test('exact: a table locked ACCESS EXCLUSIVE by another session keeps its estimate with a note naming the process; the rest is counted at once', async () => {
  await db.sql(`ANALYZE shop.lines`);
  await whileLocked(['LOCK TABLE shop.lines IN ACCESS EXCLUSIVE MODE'], async (pid) => {
    const started = Date.now();
    // Without the check this waits for the lock until the step timeout (QUERY_TIMEOUT after 30 s).
    const output = await run('schema-overview', { connection: db.config, input: { schema: 'shop', exact: true, timeoutMs: 30_000 } });
    expect(Date.now() - started).toBeLessThan(15_000);
    const tables = byName(output.tables);
    expect(tables.lines).toMatchObject({ rows: 30, rowsExact: false, note: expect.stringMatching(LOCKED_NOTE) });
    expect(tables.lines!.note!.match(LOCKED_NOTE)![1]).toBe(String(pid));
    expect(tables.orders).toMatchObject({ rows: 1000, rowsExact: true });
    expect(tables.orders).not.toHaveProperty('note');
    expect(tables.events).toMatchObject({ rows: 65, rowsExact: true });
  });
  // The overview counts it once the lock is gone, and it never wrote anything.
  expect((await run('schema-overview', { connection: db.config, input: { schema: 'shop', exact: true } })).rowCounts.lines).toBe(30);
});

test('a locked partition: its partitioned parent keeps its estimate (exact) and the estimate overview does not wait for it', async () => {
  await db.sql(`ANALYZE shop.events`);
  await whileLocked(['LOCK TABLE shop.events_2026_low IN ACCESS EXCLUSIVE MODE'], async (pid) => {
    const started = Date.now();
    const exact = byName((await run('schema-overview', { connection: db.config, input: { schema: 'shop', exact: true, timeoutMs: 30_000 } })).tables);
    expect(exact.events).toMatchObject({ rows: 65, rowsExact: false, note: expect.stringContaining(`server process ${pid}`) });
    expect(exact.orders).toMatchObject({ rowsExact: true });
    const estimated = byName((await run('schema-overview', { connection: db.config, input: { schema: 'shop', timeoutMs: 30_000 } })).tables);
    expect(estimated.events).toMatchObject({ rows: 65, rowsExact: false });
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});

test('exact: an index locked by another session (REINDEX in its transaction) keeps its table out of the count', async () => {
  await whileLocked(['REINDEX INDEX shop.orders_pkey'], async (pid) => {
    const output = await run('schema-overview', { connection: db.config, input: { schema: 'shop', exact: true, timeoutMs: 30_000 } });
    expect(byName(output.tables).orders).toMatchObject({ rowsExact: false, note: expect.stringContaining(`server process ${pid}`) });
    expect(byName(output.tables).lines).toMatchObject({ rows: 30, rowsExact: true });
  });
});

test('exact: a session WAITING for an ACCESS EXCLUSIVE lock (queued behind a reader) is seen too: counting would queue behind it', async () => {
  await whileLocked(['SELECT count(*) FROM shop.orders'], async () => {
    const waiter = new pg.Client({ ...db.config, ssl: false });
    await waiter.connect();
    try {
      const [{ pid }] = (await waiter.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
      await waiter.query('BEGIN');
      const waiting = waiter.query('LOCK TABLE shop.orders IN ACCESS EXCLUSIVE MODE').catch((error: unknown) => error);
      for (let i = 0; i < 200; i++) {
        const rows = await db.sql(`SELECT 1 FROM pg_locks WHERE pid = ${pid} AND NOT granted`);
        if (rows.length) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const output = await run('schema-overview', { connection: db.config, input: { schema: 'shop', exact: true, timeoutMs: 30_000 } });
      expect(byName(output.tables).orders).toMatchObject({ rowsExact: false, note: expect.stringContaining(`server process ${pid}`) });
      expect(byName(output.tables).lines).toMatchObject({ rowsExact: true });
      await db.sql(`SELECT pg_cancel_backend(${pid})`);
      await waiting;
    } finally {
      await waiter.query('ROLLBACK').catch(() => {});
      await waiter.end();
    }
  });
});

test('exact: a lock the check cannot see (a table a row-level security policy reads) fails fast with LOCK_NOT_AVAILABLE naming the way out, not at the step timeout', async () => {
  await db.sql(`CREATE SCHEMA gate`);
  await db.sql(`CREATE TABLE gate.open (ok boolean)`);
  await db.sql(`CREATE TABLE shop.guarded (v int)`);
  await db.sql(`ALTER TABLE shop.guarded ENABLE ROW LEVEL SECURITY`);
  await db.sql(`CREATE POLICY guarded_read ON shop.guarded USING (EXISTS (SELECT 1 FROM gate.open))`);
  await db.sql(`GRANT USAGE ON SCHEMA gate TO ${role}`);
  await db.sql(`GRANT SELECT ON gate.open, shop.guarded TO ${role}`);
  try {
    await whileLocked(['LOCK TABLE gate.open IN ACCESS EXCLUSIVE MODE'], async () => {
      const started = Date.now();
      const error = await failure('schema-overview', { connection: asRole, input: { schema: 'shop', exact: true, timeoutMs: 30_000 } });
      expect(error.code).toBe('LOCK_NOT_AVAILABLE');
      expect(error.message).toMatch(/^Schema Overview could not count exactly: .* \d+ ms for another session's lock/);
      expect(error.fixes.join(' ')).toContain('exact');
      expect(Date.now() - started).toBeLessThan(15_000);
    });
    expect((await run('schema-overview', { connection: asRole, input: { schema: 'shop', exact: true } })).rowCounts.guarded).toBe(0);
  } finally {
    await db.sql(`DROP TABLE shop.guarded`);
  }
});

test('the estimate overview takes no lock: a table locked ACCESS EXCLUSIVE by another session does not block it', async () => {
  await db.sql(`ANALYZE shop.secret`);
  const locker = new pg.Client({ ...db.config, ssl: false });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE shop.secret IN ACCESS EXCLUSIVE MODE');
    for (const connection of [db.config, asRole]) {
      const output = await run('schema-overview', { connection, input: { schema: 'shop', timeoutMs: 10_000 } });
      expect(byName(output.tables).secret).toMatchObject({ rows: 2 });
      expect(byName(output.tables).secret!.sizeBytes).toBeGreaterThanOrEqual(8192);
    }
  } finally {
    await locker.query('ROLLBACK');
    await locker.end();
  }
});

test('without a schema it describes the first schema of the search_path', async () => {
  await db.sql(`CREATE TABLE public.here (id int)`);
  expect((await run('schema-overview', { connection: db.config, input: {} })).tables.map((t) => t.name)).toContain('here');
  await db.sql(`ALTER ROLE ${role} IN DATABASE ${db.name} SET search_path = shop, public`);
  // A new pool (another application name): the role's setting applies to new sessions.
  const fresh = { ...asRole, applicationName: 'overview-search-path' };
  expect((await run('schema-overview', { connection: fresh, input: { exact: true } })).rowCounts).toEqual({ lines: 30, orders: 1000, secret: 2 });
});
