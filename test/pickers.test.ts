/**
 * Pickers against real tables: every relation kind a flow author meets, every column flavour
 * (identity, generated, defaulted, NOT NULL, arrays, jsonb), composite and unique keys, and a
 * least-privilege role that must only see what it was granted. Outputs are asserted exactly.
 */
import { randomBytes } from 'node:crypto';
import { listColumns, listSchemas, listTables, type ConnectionConfig } from '../index.js';
import { useTestDatabase } from './harness/use-test-database.js';
import { failure } from './harness/failures.js';
import { watchSecret } from './harness/secrets.js';

const db = useTestDatabase('pickers', {
  beforeDrop: async () => {
    await db.sql(`DROP OWNED BY ${role}`);
    await db.sql(`DROP ROLE ${role}`);
  },
});
const role = `picker_${randomBytes(4).toString('hex')}`;
const rolePassword = 'pw-' + randomBytes(8).toString('hex');
watchSecret(rolePassword);
let asRole: ConnectionConfig;

beforeAll(async () => {
  await db.sql(`CREATE SCHEMA sales`);
  await db.sql(`CREATE TABLE users (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email varchar(255) NOT NULL UNIQUE,
    name text NOT NULL,
    status text NOT NULL DEFAULT 'active',
    nickname text,
    email_lower text GENERATED ALWAYS AS (lower(email)) STORED)`);
  await db.sql(`INSERT INTO users (email, name) SELECT 'u' || g || '@example.com', 'User ' || g FROM generate_series(1, 3) g`);
  await db.sql(`ANALYZE users`);
  await db.sql(`CREATE VIEW active_users AS SELECT id, email FROM users WHERE status = 'active'`);
  await db.sql(`CREATE TABLE sales.order_lines (
    order_id bigint, line_no smallint, sku text NOT NULL, qty integer NOT NULL DEFAULT 1, tags text[], meta jsonb,
    PRIMARY KEY (order_id, line_no), UNIQUE (sku, order_id))`);
  await db.sql(`CREATE TABLE sales.events (id bigserial, at timestamptz NOT NULL, payload jsonb) PARTITION BY RANGE (at)`);
  await db.sql(`CREATE TABLE sales.events_2026 PARTITION OF sales.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`);
  await db.sql(`CREATE MATERIALIZED VIEW sales.daily AS SELECT 1 AS n WITH NO DATA`);
  await db.sql(`CREATE TABLE "Mixed.Case" (x integer)`);
  await db.sql(`CREATE TABLE empty_table ()`);
  await db.sql(`CREATE TABLE hidden (secret text)`);
  // A least-privilege role: one whole table, one column, nothing in schema sales.
  await db.sql(`CREATE ROLE ${role} LOGIN PASSWORD '${rolePassword}'`);
  await db.sql(`GRANT SELECT ON users TO ${role}`);
  await db.sql(`GRANT SELECT (x) ON "Mixed.Case" TO ${role}`);
  asRole = { ...db.config, user: role, password: rolePassword };
}, 60_000);

/** Results must survive JSON unchanged: hosts send them straight to a browser. */
function plainJson<T>(value: T): T {
  expect(JSON.parse(JSON.stringify(value))).toEqual(value);
  return value;
}

describe('listSchemas', () => {
  test('lists user schemas, never pg_catalog, information_schema, pg_toast or pg_temp', async () => {
    expect(plainJson(await listSchemas(db.config))).toEqual([{ name: 'public' }, { name: 'sales' }]);
  });

  test('leaves out schemas the user has no USAGE on', async () => {
    expect(await listSchemas(asRole)).toEqual([{ name: 'public' }]);
  });
});

describe('listTables', () => {
  test('lists every relation kind with its estimated row count; partitions are left to their parent', async () => {
    expect(plainJson(await listTables(db.config))).toEqual([
      { schema: 'public', name: 'Mixed.Case', kind: 'table', estimatedRows: null },
      { schema: 'public', name: 'active_users', kind: 'view', estimatedRows: null },
      { schema: 'public', name: 'empty_table', kind: 'table', estimatedRows: null },
      { schema: 'public', name: 'hidden', kind: 'table', estimatedRows: null },
      { schema: 'public', name: 'users', kind: 'table', estimatedRows: 3 },
      { schema: 'sales', name: 'daily', kind: 'materialized view', estimatedRows: null },
      { schema: 'sales', name: 'events', kind: 'partitioned table', estimatedRows: null },
      { schema: 'sales', name: 'order_lines', kind: 'table', estimatedRows: null },
    ]);
  });

  test('filters by schema; an unknown schema has no tables', async () => {
    expect((await listTables(db.config, { schema: 'sales' })).map((t) => t.name)).toEqual(['daily', 'events', 'order_lines']);
    expect(await listTables(db.config, { schema: 'nope' })).toEqual([]);
  });

  test('shows a role only the tables it holds a table or column privilege on', async () => {
    expect(await listTables(asRole)).toEqual([
      { schema: 'public', name: 'Mixed.Case', kind: 'table', estimatedRows: null },
      { schema: 'public', name: 'users', kind: 'table', estimatedRows: 3 },
    ]);
  });

  test('refuses a schema that is not a non-empty string', async () => {
    const error = await failure(listTables(db.config, { schema: '' }));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.problems).toEqual(['schema must be a non-empty string']);
  });
});

describe('listColumns', () => {
  const base = { category: 'S', isJson: false, isArray: false, nullable: false, default: null, isIdentity: false, isGenerated: false, inPrimaryKey: false, inUniqueKey: false };

  test('describes identity, unique, NOT NULL, defaulted, nullable and generated columns', async () => {
    expect(plainJson(await listColumns(db.config, 'users'))).toEqual([
      { ...base, name: 'id', type: 'integer', category: 'N', isIdentity: true, inPrimaryKey: true, requiredOnInsert: false },
      { ...base, name: 'email', type: 'character varying(255)', inUniqueKey: true, requiredOnInsert: true },
      { ...base, name: 'name', type: 'text', requiredOnInsert: true },
      { ...base, name: 'status', type: 'text', default: "'active'::text", requiredOnInsert: false },
      { ...base, name: 'nickname', type: 'text', nullable: true, requiredOnInsert: false },
      // PostgreSQL keeps a generated column's expression where defaults live.
      { ...base, name: 'email_lower', type: 'text', nullable: true, default: 'lower((email)::text)', isGenerated: true, requiredOnInsert: false },
    ]);
  });

  test('describes a composite primary key, a unique key, arrays and jsonb in a qualified table', async () => {
    expect(await listColumns(db.config, 'sales.order_lines')).toEqual([
      { ...base, name: 'order_id', type: 'bigint', category: 'N', inPrimaryKey: true, inUniqueKey: true, requiredOnInsert: true },
      { ...base, name: 'line_no', type: 'smallint', category: 'N', inPrimaryKey: true, requiredOnInsert: true },
      { ...base, name: 'sku', type: 'text', inUniqueKey: true, requiredOnInsert: true },
      { ...base, name: 'qty', type: 'integer', category: 'N', default: '1', requiredOnInsert: false },
      { ...base, name: 'tags', type: 'text[]', category: 'A', isArray: true, nullable: true, requiredOnInsert: false },
      { ...base, name: 'meta', type: 'jsonb', category: 'U', isJson: true, nullable: true, requiredOnInsert: false },
    ]);
  });

  test('describes a partitioned table, a view, and a name that needs quotes', async () => {
    expect((await listColumns(db.config, 'sales.events')).map((c) => [c.name, c.type, c.default, c.requiredOnInsert])).toEqual([
      ['id', 'bigint', "nextval('sales.events_id_seq'::regclass)", false],
      ['at', 'timestamp with time zone', null, true],
      ['payload', 'jsonb', null, false],
    ]);
    expect((await listColumns(db.config, 'active_users')).map((c) => [c.name, c.nullable])).toEqual([['id', true], ['email', true]]);
    expect((await listColumns(db.config, '"Mixed.Case"')).map((c) => c.name)).toEqual(['x']);
  });

  test('a table without columns has an empty list', async () => {
    expect(await listColumns(db.config, 'empty_table')).toEqual([]);
  });

  test('an unknown table fails with the server\'s own UNDEFINED_TABLE error', async () => {
    const error = await failure(listColumns(db.config, 'sales.nope'));
    expect(error.code).toBe('UNDEFINED_TABLE');
    expect(error.sqlstate).toBe('42P01');
    expect(error.message).toContain('sales');
    expect(error.message).toContain('nope');
    // In a schema the role may not use: the server says so, and pickers pass its answer on.
    expect((await failure(listColumns(asRole, 'sales.order_lines'))).code).toBe('PERMISSION_DENIED');
  });

  test('refuses a malformed table name before touching the database', async () => {
    const error = await failure(listColumns(db.config, '"unclosed'));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.problems).toEqual(['table has an unclosed double quote']);
    expect((await failure(listColumns(db.config, ''))).code).toBe('INVALID_INPUT');
  });
});

test('pickers report connection problems as friendly errors', async () => {
  const error = await failure(listSchemas({ ...db.config, database: 'no_such_database' }));
  expect(error.code).toBe('DATABASE_NOT_FOUND');
  expect(JSON.stringify(error)).not.toContain(db.config.password!);
});
