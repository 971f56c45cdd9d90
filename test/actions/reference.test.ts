/**
 * Every SQL example of the functional reference (reference 004: "Available Actions",
 * "Advanced Patterns", "Tips & Best Practices", "Common Errors & Fixes") runs through
 * runAction against a real server, with its output asserted exactly, checked against the
 * action's output schema, and its effect on the tables checked with the admin connection.
 */
import { preview } from '../../actions/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { run } from './helpers.js';

const db = useTestDatabase('reference');
const NOW = '2026-01-15T10:30:00.000Z';

beforeAll(async () => {
  await db.sql(`CREATE TABLE users (
    id serial PRIMARY KEY, name text, email text UNIQUE, status text NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz, last_login timestamptz)`);
  await db.sql(`CREATE TABLE sessions (id serial PRIMARY KEY, user_id int, token text NOT NULL, expires_at timestamptz NOT NULL)`);
  await db.sql(`CREATE TABLE orders (
    id serial PRIMARY KEY, customer text, amount numeric(10,2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), synced boolean NOT NULL DEFAULT false)`);
  await db.sql(`CREATE TABLE logs (id serial PRIMARY KEY, level text, message text, created_at timestamp)`);
}, 60_000);

/** Every test starts from the same three users and empty other tables. */
beforeEach(async () => {
  await db.sql('TRUNCATE users, sessions, orders, logs RESTART IDENTITY');
  await db.sql(`INSERT INTO users (name, email, status, created_at) VALUES
    ('John Doe', 'john@example.com', 'active', '2026-01-15T10:30:00Z'),
    ('Jane Roe', 'jane@example.com', 'inactive', '2026-01-10T08:00:00Z'),
    ('Ann Lee', 'ann@example.com', 'active', '2026-01-12T16:45:30.5Z')`);
});

const connection = () => db.config;

describe('Available Actions', () => {
  test('Query Rows: the active users, newest first, timestamps as ISO 8601 text', async () => {
    const output = await run('query-rows', {
      connection: connection(),
      input: {
        query: 'SELECT id, name, email, created_at\nFROM users\nWHERE status = $1\nORDER BY created_at DESC\nLIMIT 10',
        parameters: ['active'],
      },
    });
    expect(output).toEqual({
      rows: [
        { id: 1, name: 'John Doe', email: 'john@example.com', created_at: '2026-01-15T10:30:00Z' },
        { id: 3, name: 'Ann Lee', email: 'ann@example.com', created_at: '2026-01-12T16:45:30.5Z' },
      ],
      rowCount: 2,
    });
  });

  test('Insert Row: templated columns, {{now}} stored as the step time, the row returned', async () => {
    const now = '2026-02-01T09:00:00.123Z';
    const output = await run('insert-row', {
      connection: connection(),
      input: {
        table: 'users',
        columns: { name: '{{trigger.name}}', email: '{{trigger.email}}', status: 'active', created_at: '{{now}}' },
      },
      context: { trigger: { name: 'Mia Wong', email: 'mia@example.com' }, now },
    });
    expect(output).toEqual({
      insertedId: 4,
      rowCount: 1,
      row: {
        id: 4, name: 'Mia Wong', email: 'mia@example.com', status: 'active',
        created_at: '2026-02-01T09:00:00.123Z', updated_at: null, last_login: null,
      },
    });
    const stored = await db.sql('SELECT name, email, status, created_at = $1::timestamptz AS at_now FROM users WHERE id = 4', [now]);
    expect(stored).toEqual([{ name: 'Mia Wong', email: 'mia@example.com', status: 'active', at_now: true }]);
  });

  test('Update Rows: $1 inactive, $2 {{now}}, $3 {{trigger.email}} changes exactly that user', async () => {
    const output = await run('update-rows', {
      connection: connection(),
      input: { query: 'UPDATE users\nSET status = $1, updated_at = $2\nWHERE email = $3', parameters: ['inactive', '{{now}}', '{{trigger.email}}'] },
      context: { trigger: { email: 'john@example.com' }, now: NOW },
    });
    expect(output).toEqual({ rowCount: 1 });
    const rows = await db.sql('SELECT id, status, updated_at = $1::timestamptz AS at_now FROM users ORDER BY id', [NOW]);
    expect(rows).toEqual([
      { id: 1, status: 'inactive', at_now: true },
      { id: 2, status: 'inactive', at_now: null },
      { id: 3, status: 'active', at_now: null },
    ]);
  });

  test('Delete Rows: the sessions that expired before {{now}}, and only those', async () => {
    await db.sql(
      `INSERT INTO sessions (user_id, token, expires_at)
       SELECT 1, 'old-' || g, $1::timestamptz - g * interval '1 hour' FROM generate_series(1, 15) g`,
      [NOW],
    );
    await db.sql(`INSERT INTO sessions (user_id, token, expires_at) VALUES (2, 'at-now', $1), (3, 'fresh', $1::timestamptz + interval '1 day')`, [NOW]);
    const output = await run('delete-rows', {
      connection: connection(),
      input: { query: 'DELETE FROM sessions\nWHERE expires_at < $1', parameters: ['{{now}}'] },
      context: { now: NOW },
    });
    expect(output).toEqual({ rowCount: 15 });
    expect(await db.sql('SELECT token FROM sessions ORDER BY token')).toEqual([{ token: 'at-now' }, { token: 'fresh' }]);
  });

  test('Execute Query: CREATE INDEX IF NOT EXISTS creates the index, and is idempotent', async () => {
    const input = { query: 'CREATE INDEX IF NOT EXISTS idx_users_email\nON users(email)' };
    expect(await db.sql(`SELECT 1 FROM pg_indexes WHERE indexname = 'idx_users_email'`)).toEqual([]);
    expect(await run('execute-query', { connection: connection(), input })).toEqual({ success: true, rowCount: 0 });
    expect(await db.sql(`SELECT tablename, indexdef FROM pg_indexes WHERE indexname = 'idx_users_email'`)).toEqual([
      { tablename: 'users', indexdef: 'CREATE INDEX idx_users_email ON public.users USING btree (email)' },
    ]);
    expect(await run('execute-query', { connection: connection(), input })).toEqual({ success: true, rowCount: 0 });
    expect(await db.sql(`SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'idx_users_email'`)).toEqual([{ n: 1 }]);
  });
});

describe('Advanced Patterns', () => {
  test('Upsert: the second run updates the same row instead of adding one', async () => {
    const query = `INSERT INTO users (email, name, status)
VALUES ($1, $2, $3)
ON CONFLICT (email)
DO UPDATE SET
  name = EXCLUDED.name,
  status = EXCLUDED.status,
  updated_at = NOW()`;
    const first = await run('execute-query', {
      connection: connection(),
      input: { query, parameters: ['{{trigger.email}}', '{{trigger.name}}', 'active'] },
      context: { trigger: { email: 'mia@example.com', name: 'Mia Wong' } },
    });
    expect(first).toEqual({ success: true, rowCount: 1 });
    const [inserted] = await db.sql('SELECT id, name, status, updated_at FROM users WHERE email = $1', ['mia@example.com']);
    expect(inserted).toEqual({ id: 4, name: 'Mia Wong', status: 'active', updated_at: null });

    const second = await run('execute-query', {
      connection: connection(),
      input: { query, parameters: ['{{trigger.email}}', '{{trigger.name}}', 'inactive'] },
      context: { trigger: { email: 'mia@example.com', name: 'Mia Chen' } },
    });
    expect(second).toEqual({ success: true, rowCount: 1 });
    const rows = await db.sql('SELECT id, name, status, updated_at IS NOT NULL AS touched FROM users WHERE email = $1', ['mia@example.com']);
    expect(rows).toEqual([{ id: 4, name: 'Mia Chen', status: 'inactive', touched: true }]);
    expect(await db.sql('SELECT count(*)::int AS n FROM users')).toEqual([{ n: 4 }]);
  });

  test('Bulk Insert: unnest over typed arrays from the trigger inserts every row exactly', async () => {
    const trigger = {
      levels: ['info', 'warn', 'error'],
      // Array-literal metacharacters, a backslash and the word NULL must all arrive as text.
      messages: ['service started', 'disk "sda" at 91%, {check}', 'NULL'],
      times: ['2026-01-15T10:30:00.000Z', '2026-01-15T10:31:00.250Z', '2026-01-15T10:32:00Z'],
    };
    const input = {
      query: 'INSERT INTO logs (level, message, created_at)\nSELECT * FROM unnest(\n  $1::text[],\n  $2::text[],\n  $3::timestamp[]\n)',
      parameters: ['{{trigger.levels}}', '{{trigger.messages}}', '{{trigger.times}}'],
    };
    // The arrays are bound as arrays (typed), not as their text.
    expect((await preview('execute-query', { connection: connection(), input, context: { trigger } })).values).toEqual([
      trigger.levels,
      trigger.messages,
      trigger.times,
    ]);
    expect(await run('execute-query', { connection: connection(), input, context: { trigger } })).toEqual({ success: true, rowCount: 3 });

    // The tip's "Limit Results" query reads them back (timestamp without time zone: no offset).
    const output = await run('query-rows', {
      connection: connection(),
      input: { query: 'SELECT * FROM logs ORDER BY created_at DESC LIMIT 100' },
    });
    expect(output).toEqual({
      rows: [
        { id: 3, level: 'error', message: 'NULL', created_at: '2026-01-15T10:32:00' },
        { id: 2, level: 'warn', message: 'disk "sda" at 91%, {check}', created_at: '2026-01-15T10:31:00.25' },
        { id: 1, level: 'info', message: 'service started', created_at: '2026-01-15T10:30:00' },
      ],
      rowCount: 3,
    });
  });

  test('Conditional Updates: CASE on last_login marks inactive / dormant / active, deleted untouched', async () => {
    await db.sql(`UPDATE users SET last_login = now() - interval '100 days' WHERE id = 1`);
    await db.sql(`UPDATE users SET last_login = now() - interval '45 days' WHERE id = 2`);
    await db.sql(`UPDATE users SET last_login = now() - interval '1 day', status = 'dormant' WHERE id = 3`);
    await db.sql(`INSERT INTO users (name, email, status, last_login) VALUES
      ('Del Gone', 'gone@example.com', 'deleted', now() - interval '200 days'),
      ('Never In', 'never@example.com', 'inactive', NULL)`);
    const output = await run('update-rows', {
      connection: connection(),
      input: {
        query: `UPDATE users
SET status = CASE
  WHEN last_login < NOW() - INTERVAL '90 days' THEN 'inactive'
  WHEN last_login < NOW() - INTERVAL '30 days' THEN 'dormant'
  ELSE 'active'
END
WHERE status != 'deleted'`,
      },
    });
    expect(output).toEqual({ rowCount: 4 });
    expect(await db.sql('SELECT id, status FROM users ORDER BY id')).toEqual([
      { id: 1, status: 'inactive' },
      { id: 2, status: 'dormant' },
      { id: 3, status: 'active' },
      { id: 4, status: 'deleted' },
      { id: 5, status: 'active' }, // NULL last_login: neither WHEN matches
    ]);
  });

  test('Aggregation Queries: per-day count (bigint → string) and AVG(amount) (numeric → exact string)', async () => {
    await db.sql(`INSERT INTO orders (customer, amount, created_at) VALUES
      ('a', 99.99, '2026-01-13T10:00:00Z'),
      ('b', 10.00, '2026-01-14T09:00:00Z'),
      ('c', 10.00, '2026-01-15T08:00:00Z'),
      ('d', 20.50, '2026-01-15T12:00:00Z'),
      ('e', 30.00, '2026-01-15T23:59:59Z')`);
    const output = await run('query-rows', {
      connection: connection(),
      input: {
        query: `SELECT
  DATE_TRUNC('day', created_at) as date,
  COUNT(*) as count,
  AVG(amount) as avg_amount
FROM orders
WHERE created_at >= $1
GROUP BY DATE_TRUNC('day', created_at)
ORDER BY date DESC`,
        parameters: ['{{trigger.since}}'],
      },
      context: { trigger: { since: '2026-01-14T00:00:00Z' } },
    });
    expect(output).toEqual({
      rows: [
        { date: '2026-01-15T00:00:00Z', count: '3', avg_amount: '20.1666666666666667' },
        { date: '2026-01-14T00:00:00Z', count: '1', avg_amount: '10.0000000000000000' },
      ],
      rowCount: 2,
    });
  });
});

describe('Tips & Best Practices', () => {
  test(`"Dangerous" '{{trigger.email}}' in the SQL text is bound as $1, exactly like the safe form`, async () => {
    const dangerous = { query: "SELECT * FROM users WHERE email = '{{trigger.email}}'" };
    const safe = { query: 'SELECT * FROM users WHERE email = $1', parameters: ['{{trigger.email}}'] };
    const context = { trigger: { email: 'john@example.com' } };

    const shown = await preview('query-rows', { connection: connection(), input: dangerous, context });
    expect(shown).toEqual({ text: 'SELECT * FROM users WHERE email = $1', values: ['john@example.com'] });
    expect(await preview('query-rows', { connection: connection(), input: safe, context })).toEqual(shown);

    const john = {
      id: 1, name: 'John Doe', email: 'john@example.com', status: 'active',
      created_at: '2026-01-15T10:30:00Z', updated_at: null, last_login: null,
    };
    expect(await run('query-rows', { connection: connection(), input: dangerous, context })).toEqual({ rows: [john], rowCount: 1 });

    for (const email of ["' OR '1'='1", "x'; DROP TABLE users; --", "john@example.com' --", "' UNION SELECT * FROM users --"]) {
      const hostile = { trigger: { email } };
      const text = await preview('query-rows', { connection: connection(), input: dangerous, context: hostile });
      expect(text).toEqual({ text: 'SELECT * FROM users WHERE email = $1', values: [email] });
      expect(await run('query-rows', { connection: connection(), input: dangerous, context: hostile })).toEqual({ rows: [], rowCount: 0 });
      expect(await run('query-rows', { connection: connection(), input: safe, context: hostile })).toEqual({ rows: [], rowCount: 0 });
    }
    expect(await db.sql('SELECT count(*)::int AS n FROM users')).toEqual([{ n: 3 }]);
  });

  test('Batch Operations: WHERE id = ANY($1::int[]) with an array from the trigger', async () => {
    await db.sql(`UPDATE users SET status = 'pending'`);
    const input = { query: "UPDATE users SET status = 'active'\nWHERE id = ANY($1::int[]);", parameters: ['{{trigger.ids}}'] };
    const context = { trigger: { ids: [1, 3] } };
    expect(await preview('update-rows', { connection: connection(), input, context })).toEqual({ text: input.query, values: [[1, 3]] });
    expect(await run('update-rows', { connection: connection(), input, context })).toEqual({ rowCount: 2 });
    expect(await db.sql('SELECT id, status FROM users ORDER BY id')).toEqual([
      { id: 1, status: 'active' },
      { id: 2, status: 'pending' },
      { id: 3, status: 'active' },
    ]);
  });

  test('Use Indexes: EXPLAIN runs as a read-only Query Rows and returns the plan', async () => {
    const output = await run('query-rows', {
      connection: connection(),
      input: { query: 'EXPLAIN SELECT * FROM users WHERE email = $1;', parameters: ['john@example.com'] },
    });
    expect(output.rowCount).toBe(output.rows.length);
    expect(output.rowCount).toBeGreaterThanOrEqual(1);
    expect(Object.keys(output.rows[0]!)).toEqual(['QUERY PLAN']);
    expect(output.rows.map((row) => row['QUERY PLAN']).join('\n')).toMatch(/on users|users_email_key/);
  });
});

describe('Common Errors & Fixes', () => {
  test('"Permission denied": the GRANT and the privileges check run as documented', async () => {
    const role = `app_user_${db.name}`;
    await db.sql(`CREATE ROLE ${role} NOLOGIN`);
    try {
      const granted = await run('execute-query', {
        connection: connection(),
        input: { query: `GRANT SELECT, INSERT, UPDATE, DELETE ON users TO ${role};` },
      });
      expect(granted).toEqual({ success: true, rowCount: 0 });
      const output = await run('query-rows', {
        connection: connection(),
        input: { query: `SELECT privilege_type FROM information_schema.table_privileges\nWHERE grantee = '${role}' ORDER BY privilege_type;` },
      });
      expect(output).toEqual({
        rows: [{ privilege_type: 'DELETE' }, { privilege_type: 'INSERT' }, { privilege_type: 'SELECT' }, { privilege_type: 'UPDATE' }],
        rowCount: 4,
      });
    } finally {
      await db.sql(`REVOKE ALL ON users FROM ${role}`);
      await db.sql(`DROP ROLE ${role}`);
    }
  });

  test('"Too many connections": the pg_stat_activity count comes back as a bigint string', async () => {
    const output = await run('query-rows', { connection: connection(), input: { query: 'SELECT count(*) FROM pg_stat_activity;' } });
    expect(output.rowCount).toBe(1);
    expect(Object.keys(output.rows[0]!)).toEqual(['count']);
    const count = output.rows[0]!.count;
    expect(typeof count).toBe('string');
    // At least the step's own session and the admin's.
    expect(Number(count)).toBeGreaterThanOrEqual(2);
  });
});
