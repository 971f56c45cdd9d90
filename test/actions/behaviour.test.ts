/**
 * How the five actions behave beyond the happy path, against a real server: read-only Query
 * Rows, statement-kind checks of Update/Delete Rows, Insert Row's handling of names, keys and
 * types, atomic multi-row writes, input validation, template errors, per-step limits, preview.
 */
import { preview, runAction, validateInput } from '../../actions/index.js';
import { runningStatement, stoppedRunning } from '../harness/activity.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failure, run } from './helpers.js';

const db = useTestDatabase('behaviour');

beforeAll(async () => {
  await db.sql(`CREATE TABLE users (
    id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL, status text NOT NULL DEFAULT 'active')`);
}, 30_000);

beforeEach(async () => {
  await db.sql('TRUNCATE users RESTART IDENTITY');
  await db.sql(`INSERT INTO users (name, email, status) VALUES
    ('John Doe', 'john@example.com', 'active'), ('Jane Roe', 'jane@example.com', 'inactive'), ('Ann Lee', 'ann@example.com', 'active')`);
});

const users = () => db.sql('SELECT * FROM users ORDER BY id');
const tableExists = async (name: string) => (await db.sql<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [name]))[0]!.r !== null;

describe('Query Rows runs READ ONLY', () => {
  const writes: [string, string][] = [
    ['UPDATE', "UPDATE users SET status = 'hacked'"],
    ['DELETE', 'DELETE FROM users'],
    ['INSERT', "INSERT INTO users (name, email) VALUES ('x', 'x@example.com')"],
    // PostgreSQL refuses row locks in a read-only transaction too (SQLSTATE 25006).
    ['SELECT … FOR UPDATE', 'SELECT * FROM users FOR UPDATE'],
    ['SELECT … FOR SHARE', 'SELECT * FROM users WHERE id = $1 FOR SHARE'],
    ['a data-modifying CTE', 'WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d'],
    ['nextval()', "SELECT nextval('users_id_seq')"],
    ['CREATE TABLE', 'CREATE TABLE sneaky (id int)'],
  ];
  test.each(writes)('%s fails with READ_ONLY_VIOLATION and changes nothing', async (_kind, query) => {
    const before = await users();
    const sequence = await db.sql('SELECT last_value, is_called FROM users_id_seq');
    const error = await failure('query-rows', { connection: db.config, input: { query, parameters: query.includes('$1') ? [1] : [] } });
    expect(error.code).toBe('READ_ONLY_VIOLATION');
    expect(error.sqlstate).toBe('25006');
    expect(error.message).toMatch(/read-only transaction/);
    expect(await users()).toEqual(before);
    expect(await db.sql('SELECT last_value, is_called FROM users_id_seq')).toEqual(sequence);
    expect(await tableExists('sneaky')).toBe(false);
  });

  test('a plain SELECT still works on the same pooled connection afterwards', async () => {
    await failure('query-rows', { connection: db.config, input: { query: 'DELETE FROM users' } });
    expect(await run('query-rows', { connection: db.config, input: { query: 'SELECT count(*)::int AS n FROM users' } })).toEqual({ rows: [{ n: 3 }], rowCount: 1 });
  });
});

describe('Update Rows and Delete Rows run only their own kind of statement', () => {
  const refusals: [string, string, string, string][] = [
    ['update-rows', 'DELETE', 'DELETE FROM users', 'an UPDATE'],
    ['update-rows', 'INSERT', "INSERT INTO users (name, email) VALUES ('x', 'x@example.com')", 'an UPDATE'],
    ['update-rows', 'SELECT', 'SELECT * FROM users', 'an UPDATE'],
    ['update-rows', 'CREATE TABLE', 'CREATE TABLE sneaky (id int)', 'an UPDATE'],
    ['delete-rows', 'UPDATE', "UPDATE users SET status = 'hacked'", 'a DELETE'],
    ['delete-rows', 'INSERT', "INSERT INTO users (name, email) VALUES ('x', 'x@example.com')", 'a DELETE'],
    ['delete-rows', 'CREATE TABLE', 'CREATE TABLE sneaky (id int)', 'a DELETE'],
  ];
  test.each(refusals)('%s refuses %s with INVALID_INPUT before it runs', async (key, kind, query, expected) => {
    const before = await users();
    const error = await failure(key, { connection: db.config, input: { query } });
    expect(error.code).toBe('INVALID_INPUT');
    const name = key === 'update-rows' ? 'Update Rows' : 'Delete Rows';
    const only = key === 'update-rows' ? 'UPDATE' : 'DELETE';
    expect(error.message).toBe(`${name} only runs ${only} statements; this one is ${/^[AEIOU]/.test(kind) ? 'an' : 'a'} ${kind}. Nothing was run.`);
    expect(error.problems).toEqual([`input.query must be ${expected} statement`]);
    expect(await users()).toEqual(before);
    expect(await tableExists('sneaky')).toBe(false);
  });

  test('their own statements commit', async () => {
    expect(await run('update-rows', { connection: db.config, input: { query: "UPDATE users SET status = 'gone' WHERE id = $1", parameters: [2] } })).toEqual({ rowCount: 1 });
    expect(await run('delete-rows', { connection: db.config, input: { query: "DELETE FROM users WHERE status = 'gone'" } })).toEqual({ rowCount: 1 });
    expect((await users()).map((u) => u.id)).toEqual([1, 3]);
  });
});

describe('a step never leaves a transaction open for the next one', () => {
  test.each([
    ['BEGIN', 'BEGIN'],
    ['START TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'START TRANSACTION'],
  ])('Execute Query with %s is refused and rolled back; the next step commits on its own', async (query, command) => {
    const error = await failure('execute-query', { connection: db.config, input: { query } });
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(`${command} leaves a transaction open after the step. Each step runs as its own transaction, so it was rolled back: its changes were undone.`);
    expect(error.problems).toEqual(['input.query must not open a transaction (BEGIN / START TRANSACTION): a step commits on its own']);
    // Steps run one after another reuse the same pooled session: this insert must not land in a
    // transaction that nobody commits. Another session sees it at once.
    await run('execute-query', { connection: db.config, input: { query: "INSERT INTO users (name, email) VALUES ('Tx Test', 'tx@example.com')" } });
    expect(await db.sql("SELECT name FROM users WHERE email = 'tx@example.com'")).toEqual([{ name: 'Tx Test' }]);
  });
});

describe('a session setting made by one step does not follow into later steps', () => {
  test.each([
    ['SET search_path TO nowhere', 'SELECT count(*)::int AS n FROM users', [{ n: 3 }]],
    ['SET statement_timeout = 0', 'SHOW statement_timeout', [{ statement_timeout: '1min' }]],
    ["SET TIME ZONE 'Asia/Kolkata'", "SELECT '2026-01-15 10:30:00+00'::timestamptz::text AS t", [{ t: '2026-01-15 10:30:00+00' }]],
  ])('after Execute Query ran %s', async (setting, query, rows) => {
    await run('execute-query', { connection: db.config, input: { query: setting } });
    expect(await run('query-rows', { connection: db.config, input: { query } })).toEqual({ rows, rowCount: 1 });
  });

  test('also when Query Rows ran the SET (allowed in a read-only transaction)', async () => {
    await run('query-rows', { connection: db.config, input: { query: 'SET search_path TO nowhere' } });
    expect(await run('query-rows', { connection: db.config, input: { query: 'SELECT count(*)::int AS n FROM users' } })).toEqual({ rows: [{ n: 3 }], rowCount: 1 });
  });
});

describe('Insert Row', () => {
  beforeAll(async () => {
    await db.sql('CREATE SCHEMA audit');
    await db.sql('CREATE TABLE audit.events (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL)');
    await db.sql('CREATE TABLE public.events (id serial PRIMARY KEY, other text)'); // same name, other schema
    await db.sql('CREATE TABLE memberships (org_id int, user_id int, role text NOT NULL, PRIMARY KEY (user_id, org_id))');
    await db.sql('CREATE TABLE notes (body text, at timestamptz)');
    await db.sql('CREATE TABLE big (id bigint PRIMARY KEY, v text)');
    await db.sql('CREATE TABLE bigserial_t (id bigserial PRIMARY KEY, v text)');
    await db.sql('CREATE TABLE docs (id serial PRIMARY KEY, body jsonb, list jsonb, plain json, note jsonb)');
    await db.sql('CREATE TABLE tagged (id serial PRIMARY KEY, tags text[], nums int[])');
    await db.sql(`CREATE TABLE "odd table" (id serial PRIMARY KEY, "first name" text, "say ""hi""" text, "ünïcødé ✓" text, "MixedCase" text, "a.b" text)`);
    await db.sql(`CREATE TABLE defaults (id serial PRIMARY KEY, status text NOT NULL DEFAULT 'new', n int DEFAULT 7, note text)`);
  }, 60_000);

  const insert = (table: string, columns: Record<string, unknown>, context?: { trigger?: unknown; now?: string }) =>
    run('insert-row', { connection: db.config, input: { table, columns }, context });

  test('a schema-qualified table gets the row; the same name in public does not', async () => {
    const output = await insert('audit.events', { kind: 'login' });
    expect(output).toEqual({ insertedId: 1, rowCount: 1, row: { id: 1, kind: 'login' } });
    expect(await db.sql('SELECT * FROM audit.events')).toEqual([{ id: 1, kind: 'login' }]);
    expect(await db.sql('SELECT * FROM public.events')).toEqual([]);
  });

  test('a composite primary key gives an object in key order', async () => {
    const output = await insert('memberships', { org_id: 3, user_id: 7, role: 'admin' });
    expect(output).toEqual({ insertedId: { user_id: 7, org_id: 3 }, rowCount: 1, row: { org_id: 3, user_id: 7, role: 'admin' } });
    expect(Object.keys(output.insertedId as object)).toEqual(['user_id', 'org_id']);
  });

  test('a table without a primary key gives insertedId null', async () => {
    const output = await insert('notes', { body: 'hello', at: '{{now}}' }, { now: '2026-01-15T10:30:00.000Z' });
    expect(output).toEqual({ insertedId: null, rowCount: 1, row: { body: 'hello', at: '2026-01-15T10:30:00Z' } });
  });

  test('a bigint key comes back as an exact string', async () => {
    const beyondDouble = '9007199254740993'; // 2^53 + 1: not representable as a JS number
    expect(await insert('big', { id: beyondDouble, v: 'x' })).toEqual({ insertedId: beyondDouble, rowCount: 1, row: { id: beyondDouble, v: 'x' } });
    expect(await db.sql('SELECT id::text AS id FROM big')).toEqual([{ id: beyondDouble }]);
    expect(await insert('bigserial_t', { v: 'y' })).toEqual({ insertedId: '1', rowCount: 1, row: { id: '1', v: 'y' } });
  });

  test('jsonb takes an object and an array (typed from the trigger or given directly); json too', async () => {
    const trigger = { doc: { a: 1, nested: { b: [true, null, 'x'] }, quote: `it's "q"` }, list: [1, 'two', { three: 3 }] };
    const output = await insert('docs', { body: '{{trigger.doc}}', list: '{{trigger.list}}', plain: { k: ['v'] }, note: 'just text' }, { trigger });
    expect(output).toEqual({
      insertedId: 1,
      rowCount: 1,
      row: { id: 1, body: trigger.doc, list: trigger.list, plain: { k: ['v'] }, note: 'just text' },
    });
    expect(
      await db.sql(`SELECT jsonb_typeof(body) AS b, jsonb_typeof(list) AS l, json_typeof(plain) AS p, jsonb_typeof(note) AS n, body, list FROM docs`),
    ).toEqual([{ b: 'object', l: 'array', p: 'object', n: 'string', body: trigger.doc, list: trigger.list }]);
    // A top-level array given directly (not through a template) is a JSON array too.
    const direct = await insert('docs', { list: [{ id: 1 }, { id: 2 }] });
    expect(direct.row.list).toEqual([{ id: 1 }, { id: 2 }]);
  });

  test('an array column takes an array, element text kept exactly', async () => {
    const tags = ['plain', 'with "quotes"', 'comma, brace } {', 'back\\slash', 'NULL', null, ''];
    const output = await insert('tagged', { tags: '{{trigger.tags}}', nums: [3, 1, 2] }, { trigger: { tags } });
    expect(output).toEqual({ insertedId: 1, rowCount: 1, row: { id: 1, tags, nums: [3, 1, 2] } });
    expect(await db.sql('SELECT tags, nums, tags[6] IS NULL AS real_null, tags[5] AS word FROM tagged')).toEqual([
      { tags, nums: [3, 1, 2], real_null: true, word: 'NULL' },
    ]);
  });

  test('column names with spaces, quotes, dots, unicode and capitals are quoted, not mangled', async () => {
    const columns = { 'first name': 'Zoë', 'say "hi"': `'hi'`, 'ünïcødé ✓': '✓', MixedCase: 'Mc', 'a.b': 'dot' };
    const shown = await preview('insert-row', { connection: db.config, input: { table: 'odd table', columns } });
    expect(shown).toEqual({
      text: 'INSERT INTO "odd table" ("first name", "say ""hi""", "ünïcødé ✓", "MixedCase", "a.b") VALUES ($1, $2, $3, $4, $5) RETURNING *',
      values: ['Zoë', `'hi'`, '✓', 'Mc', 'dot'],
    });
    const output = await insert('odd table', columns);
    expect(output).toEqual({ insertedId: 1, rowCount: 1, row: { id: 1, ...columns } });
    expect(await db.sql('SELECT * FROM "odd table"')).toEqual([{ id: 1, ...columns }]);
    // The quoted form of the table name works too.
    expect((await insert('"odd table"', { MixedCase: 'again' })).insertedId).toBe(2);
  });

  test('empty columns inserts a row of defaults', async () => {
    expect(await preview('insert-row', { connection: db.config, input: { table: 'defaults', columns: {} } })).toEqual({
      text: 'INSERT INTO "defaults" DEFAULT VALUES RETURNING *',
      values: [],
    });
    expect(await insert('defaults', {})).toEqual({ insertedId: 1, rowCount: 1, row: { id: 1, status: 'new', n: 7, note: null } });
  });

  test('an unknown table is UNDEFINED_TABLE', async () => {
    const error = await failure('insert-row', { connection: db.config, input: { table: 'no_such_table', columns: { a: 1 } } });
    expect(error.code).toBe('UNDEFINED_TABLE');
    expect(error.message).toContain('no_such_table');
    const qualified = await failure('insert-row', { connection: db.config, input: { table: 'nowhere.users', columns: { name: 'x' } } });
    expect(qualified.code).toBe('UNDEFINED_TABLE');
  });

  test('an unknown column is UNDEFINED_COLUMN naming it, and nothing is inserted', async () => {
    const error = await failure('insert-row', { connection: db.config, input: { table: 'users', columns: { name: 'x', email: 'x@example.com', emial: 'typo' } } });
    expect(error.code).toBe('UNDEFINED_COLUMN');
    expect(error.message).toContain('"emial"');
    expect(await users()).toHaveLength(3);
  });

  test('a missing NOT NULL column is NOT_NULL_VIOLATION naming the column', async () => {
    const error = await failure('insert-row', { connection: db.config, input: { table: 'users', columns: { name: 'No Mail' } } });
    expect(error.code).toBe('NOT_NULL_VIOLATION');
    expect(error.column).toBe('email');
    expect(error.table).toBe('users');
    expect(error.message).toContain('"email"');
    expect(await users()).toHaveLength(3);
  });

  test('a duplicate key is UNIQUE_VIOLATION with the key and value in plain words', async () => {
    const error = await failure('insert-row', { connection: db.config, input: { table: 'users', columns: { name: 'Dup', email: 'john@example.com' } } });
    expect(error.code).toBe('UNIQUE_VIOLATION');
    expect(error.constraint).toBe('users_email_key');
    expect(error.message).toBe('A row with email = john@example.com already exists (constraint users_email_key).');
  });
});

describe('a failed multi-row write writes nothing', () => {
  test('unnest bulk insert with one row breaking a CHECK: CHECK_VIOLATION naming the constraint, zero rows', async () => {
    await db.sql(`CREATE TABLE logs (id serial PRIMARY KEY, level text CONSTRAINT logs_level_known CHECK (level IN ('info', 'warn', 'error')),
      message text, created_at timestamp)`);
    const input = {
      query: 'INSERT INTO logs (level, message, created_at)\nSELECT * FROM unnest(\n  $1::text[],\n  $2::text[],\n  $3::timestamp[]\n)',
      parameters: ['{{trigger.levels}}', '{{trigger.messages}}', '{{trigger.times}}'],
    };
    const trigger = {
      levels: ['info', 'fatal', 'warn'],
      messages: ['one', 'two', 'three'],
      times: ['2026-01-15T10:30:00Z', '2026-01-15T10:31:00Z', '2026-01-15T10:32:00Z'],
    };
    const error = await failure('execute-query', { connection: db.config, input, context: { trigger } });
    expect(error.code).toBe('CHECK_VIOLATION');
    expect(error.constraint).toBe('logs_level_known');
    expect(error.message).toContain('logs_level_known');
    expect(await db.sql('SELECT count(*)::int AS n FROM logs')).toEqual([{ n: 0 }]);
    // The same batch with the bad level fixed goes in whole.
    trigger.levels[1] = 'error';
    expect(await run('execute-query', { connection: db.config, input, context: { trigger } })).toEqual({ success: true, rowCount: 3 });
    expect(await db.sql('SELECT level FROM logs ORDER BY id')).toEqual([{ level: 'info' }, { level: 'error' }, { level: 'warn' }]);
  });

  test('an UPDATE that fails on its last row leaves every row as it was', async () => {
    const before = await users();
    // Every email becomes the same text: the second row updated collides with the first.
    const error = await failure('update-rows', { connection: db.config, input: { query: "UPDATE users SET email = 'same@example.com'" } });
    expect(error.code).toBe('UNIQUE_VIOLATION');
    expect(await users()).toEqual(before);
  });
});

describe('INVALID_INPUT names every problem by its field, before anything runs', () => {
  const problemsOf = async (key: string, input: unknown, connection: unknown = db.config) => {
    const error = await failure(key, { connection: connection as never, input });
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(error.problems!.join('; '));
    if (connection === db.config) expect(validateInput(key, input)).toEqual(error.problems);
    return error.problems;
  };

  test('missing query', async () => {
    expect(await problemsOf('query-rows', {})).toEqual(['input.query is required']);
    expect(await problemsOf('update-rows', { parameters: [] })).toEqual(['input.query is required']);
  });

  test('parameters that are not an array', async () => {
    expect(await problemsOf('delete-rows', { query: 'DELETE FROM users', parameters: 'john@example.com' })).toEqual(['input.parameters must be an array']);
    expect(await users()).toHaveLength(3);
  });

  test('an unknown field', async () => {
    expect(await problemsOf('execute-query', { query: 'SELECT 1', limit: 10, 'bad key': 1 })).toEqual([
      'input.limit is not a known field',
      'input["bad key"] is not a known field',
    ]);
  });

  test('insert-row without table, and with columns of the wrong type', async () => {
    expect(await problemsOf('insert-row', { columns: { name: 'x' } })).toEqual(['input.table is required']);
    expect(await problemsOf('insert-row', { table: 'users', columns: ['name'] })).toEqual(['input.columns must be an object']);
    expect(await problemsOf('insert-row', { table: '', columns: {} })).toEqual(['input.table must NOT have fewer than 1 characters']);
  });

  test('wrong types are all reported together', async () => {
    expect(await problemsOf('query-rows', { query: 42, timeoutMs: 'soon', maxResultBytes: 4096.5 })).toEqual([
      'input.query must be a string (text)',
      'input.timeoutMs must be a whole number',
      'input.maxResultBytes must be a whole number',
    ]);
    expect(await problemsOf('query-rows', { query: 'SELECT 1', timeoutMs: 0, maxResultBytes: 10 })).toEqual([
      'input.timeoutMs must be >= 1',
      'input.maxResultBytes must be >= 1024',
    ]);
    expect(await problemsOf('query-rows', null)).toEqual(['input must be an object']);
  });

  test('a bad connection and a bad input are reported in one error', async () => {
    const connection = { ...db.config, port: 'five', sslMode: 'sometimes' };
    const problems = await problemsOf('update-rows', { query: "UPDATE users SET status = 'x'", params: [] }, connection);
    expect(problems).toEqual([
      'connection.port must be a whole number',
      'connection.sslMode must be one of: "disable", "allow", "prefer", "require", "verify-ca", "verify-full"',
      'input.params is not a known field',
    ]);
    expect((await users()).map((u) => u.status)).toEqual(['active', 'inactive', 'active']);
  });

  test('an unknown action key', async () => {
    const error = await failure('drop-everything', { connection: db.config, input: { query: 'DROP TABLE users' } });
    expect(error.code).toBe('INVALID_INPUT');
    const expected = 'action "drop-everything" does not exist; it must be one of: query-rows, insert-row, update-rows, delete-rows, execute-query, schema-overview';
    expect(error.problems).toEqual([expected]);
    expect(validateInput('drop-everything', {})).toEqual([expected]);
    expect(await tableExists('users')).toBe(true);
  });
});

describe('templates', () => {
  // Found by the 10,000-input fuzz run: Update/Delete Rows read the SQL's keywords before the
  // templates were checked, so an unclosed "{{" escaped as a raw exception.
  test.each(['query-rows', 'update-rows', 'delete-rows', 'execute-query'])('%s: an unclosed {{ in the SQL is TEMPLATE_ERROR', async (key) => {
    const error = await failure(key, { connection: db.config, input: { query: 'WITH x AS (SELECT 1) {{>' } });
    expect(error.code).toBe('TEMPLATE_ERROR');
    expect(error.message).toMatch(/^input\.query: "\{\{" is not closed with "\}\}"/);
  });

  test('a missing path is TEMPLATE_ERROR naming the path and the field', async () => {
    const context = { trigger: { email: 'john@example.com' } };
    const inParameter = await failure('query-rows', {
      connection: db.config,
      input: { query: 'SELECT * FROM users WHERE email = $1', parameters: ['{{trigger.emial}}'] },
      context,
    });
    expect(inParameter.code).toBe('TEMPLATE_ERROR');
    expect(inParameter.message).toBe('input.parameters[0]: trigger.emial is not in the trigger data or earlier steps');

    const inQuery = await failure('update-rows', {
      connection: db.config,
      input: { query: "UPDATE users SET status = 'x' WHERE email = {{steps.lookup.email}}" },
      context,
    });
    expect(inQuery.code).toBe('TEMPLATE_ERROR');
    expect(inQuery.message).toBe('input.query: steps.lookup.email is not in the trigger data or earlier steps');

    const inColumn = await failure('insert-row', {
      connection: db.config,
      input: { table: 'users', columns: { name: 'x', email: '{{trigger.user.email}}' } },
      context,
    });
    expect(inColumn.code).toBe('TEMPLATE_ERROR');
    expect(inColumn.message).toBe('input.columns.email: trigger.user.email is not in the trigger data or earlier steps');
    expect((await users()).map((u) => u.status)).toEqual(['active', 'inactive', 'active']);
  });

  test('the default helper fills a missing or null value, and keeps a present one', async () => {
    const input = { query: 'SELECT $1::text AS who, {{default trigger.tier "free"}}::text AS tier', parameters: ['{{default trigger.nickname "anonymous"}}'] };
    const ask = (trigger: unknown) => run('query-rows', { connection: db.config, input, context: { trigger } });
    expect(await ask({})).toEqual({ rows: [{ who: 'anonymous', tier: 'free' }], rowCount: 1 });
    expect(await ask({ nickname: null })).toEqual({ rows: [{ who: 'anonymous', tier: 'free' }], rowCount: 1 });
    expect(await ask({ nickname: 'jd', tier: 'pro' })).toEqual({ rows: [{ who: 'jd', tier: 'pro' }], rowCount: 1 });
  });
});

describe('per-step overrides', () => {
  test('timeoutMs: 200 cancels a pg_sleep with QUERY_TIMEOUT, and the next step gets the normal timeout back', async () => {
    const started = Date.now();
    const connection = { ...db.config, applicationName: 'behaviour-timeout' };
    const failed = failure('execute-query', { connection, input: { query: `SELECT pg_sleep(5), 'behaviour-timeout'`, timeoutMs: 200 } });
    const backend = await runningStatement(db.sql, db.name, 'behaviour-timeout', `'behaviour-timeout'`);
    const error = await failed;
    expect(error.code).toBe('QUERY_TIMEOUT');
    expect(error.message).toBe('The statement did not finish within 200 ms and was cancelled on the server.');
    expect(Date.now() - started).toBeLessThan(2000);
    // cancelled on the server, as the message says: the backend no longer runs it
    expect(await stoppedRunning(db.sql, db.name, backend.pid, 2000)).toEqual({ stopped: true, state: expect.any(String) });
    // Without the override, the same kind of statement (shorter) finishes on the pooled connections.
    for (let i = 0; i < 3; i++) {
      expect(await run('execute-query', { connection: db.config, input: { query: 'SELECT pg_sleep(0.3)' } })).toEqual({ success: true, rowCount: 1 });
    }
  });

  test('a timed-out Update Rows changes nothing', async () => {
    const error = await failure('update-rows', {
      connection: db.config,
      input: { query: "UPDATE users SET status = 'slow' FROM (SELECT pg_sleep(3)) AS s", timeoutMs: 200 },
    });
    expect(error.code).toBe('QUERY_TIMEOUT');
    expect((await users()).map((u) => u.status)).toEqual(['active', 'inactive', 'active']);
  });

  test('maxResultBytes: 2048 stops a larger result with RESULT_TOO_LARGE; without it the rows come', async () => {
    // ~1 MB of rows: far more than one network read, so reading really has to stop.
    const query = "SELECT g AS n, repeat('x', 500) AS pad FROM generate_series(1, 2000) g";
    const error = await failure('query-rows', { connection: db.config, input: { query, maxResultBytes: 2048 } });
    expect(error.code).toBe('RESULT_TOO_LARGE');
    expect(error.message).toBe('The result passed the 2 KB cap; reading stopped and the query was aborted.');
    // Execute Query outputs only a count: its rows are counted and dropped, never held, so no cap.
    expect(await run('execute-query', { connection: db.config, input: { query, maxResultBytes: 2048 } })).toEqual({ success: true, rowCount: 2000 });
    const output = await run('query-rows', { connection: db.config, input: { query } });
    expect(output.rowCount).toBe(2000);
    expect(output.rows[1999]).toEqual({ n: 2000, pad: 'x'.repeat(500) });
    // A small result under the same cap is fine.
    expect(await run('query-rows', { connection: db.config, input: { query: 'SELECT 1 AS one', maxResultBytes: 2048 } })).toEqual({ rows: [{ one: 1 }], rowCount: 1 });
  });

  // Regression: a response that arrives in one network read, ReadyForQuery included, after the cap.
  test('query-rows: a small result over maxResultBytes (one network read) is RESULT_TOO_LARGE, not truncated', async () => {
    const query = "SELECT g AS n, repeat('x', 500) AS pad FROM generate_series(1, 5) g"; // ~2.6 KB
    const error = await failure('query-rows', { connection: db.config, input: { query, maxResultBytes: 2048 } });
    expect(error.code).toBe('RESULT_TOO_LARGE');
  });

  test('execute-query keeps no rows (its output is a count), so the cap does not apply and the count is exact', async () => {
    const query = "SELECT g AS n, repeat('x', 500) AS pad FROM generate_series(1, 5) g";
    expect(await run('execute-query', { connection: db.config, input: { query, maxResultBytes: 2048 } })).toEqual({ success: true, rowCount: 5 });
  });

  test('insert-row: a returned row over maxResultBytes is RESULT_TOO_LARGE, and the insert is rolled back', async () => {
    await db.sql('CREATE TABLE IF NOT EXISTS wide (id serial PRIMARY KEY, v text)');
    const error = await failure('insert-row', { connection: db.config, input: { table: 'wide', columns: { v: 'y'.repeat(5000) }, maxResultBytes: 1024 } });
    expect(error.code).toBe('RESULT_TOO_LARGE');
    expect(await db.sql('SELECT count(*)::int AS n FROM wide')).toEqual([{ n: 0 }]);
  });
});

describe('preview', () => {
  test('query actions: the exact text ($n for templates, numbered after the parameters) and values', async () => {
    const input = {
      query: "SELECT id, name FROM users WHERE status = $1 AND email <> '{{trigger.skip}}' AND id > {{trigger.minId}} ORDER BY id",
      parameters: ['{{trigger.status}}'],
    };
    const context = { trigger: { status: 'active', skip: 'ann@example.com', minId: 0 } };
    const shown = await preview('query-rows', { connection: db.config, input, context });
    expect(shown).toEqual({
      text: 'SELECT id, name FROM users WHERE status = $1 AND email <> $2 AND id > $3::pg_catalog.int8 ORDER BY id',
      values: ['active', 'ann@example.com', 0],
    });
    // Running the previewed statement directly gives exactly what the step gives.
    const direct = await db.sql(shown.text, [...(shown.values ?? [])]);
    const output = await run('query-rows', { connection: db.config, input, context });
    expect(output).toEqual({ rows: direct, rowCount: direct.length });
    expect(output.rows).toEqual([{ id: 1, name: 'John Doe' }]);
  });

  test('write actions: preview changes nothing; running the same input has the previewed effect', async () => {
    const update = { query: 'UPDATE users SET status = $1 WHERE id = ANY({{trigger.ids}}::int[])', parameters: ['{{trigger.status}}'] };
    const context = { trigger: { ids: [1, 2], status: 'archived' } };
    expect(await preview('update-rows', { connection: db.config, input: update, context })).toEqual({
      text: 'UPDATE users SET status = $1 WHERE id = ANY($2::int[])',
      values: ['archived', [1, 2]],
    });
    expect(await preview('delete-rows', { connection: db.config, input: { query: 'DELETE FROM users WHERE id = {{trigger.id}}' }, context: { trigger: { id: 3 } } })).toEqual({
      text: 'DELETE FROM users WHERE id = $1::pg_catalog.int8',
      values: [3],
    });
    const before = await users();
    expect(before.map((u) => u.status)).toEqual(['active', 'inactive', 'active']);
    expect(await run('update-rows', { connection: db.config, input: update, context })).toEqual({ rowCount: 2 });
    expect((await users()).map((u) => u.status)).toEqual(['archived', 'archived', 'active']);
  });

  test('insert-row: quoted identifiers and $n, nothing inserted until it runs', async () => {
    const input = { table: 'public.users', columns: { name: '{{trigger.name}}', email: 'zed@example.com', status: 'trial' } };
    const context = { trigger: { name: 'Zed' } };
    const shown = await preview('insert-row', { connection: db.config, input, context });
    expect(shown).toEqual({
      text: 'INSERT INTO "public"."users" ("name", "email", "status") VALUES ($1, $2, $3) RETURNING *',
      values: ['Zed', 'zed@example.com', 'trial'],
    });
    expect(await users()).toHaveLength(3);
    const output = await run('insert-row', { connection: db.config, input, context });
    expect(output).toEqual({ insertedId: 4, rowCount: 1, row: { id: 4, name: 'Zed', email: 'zed@example.com', status: 'trial' } });
  });

  test('preview validates like runAction', async () => {
    await expect(preview('query-rows', { connection: db.config, input: { query: '' } })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      problems: ['input.query must NOT have fewer than 1 characters'],
    });
    await expect(runAction('query-rows', { connection: db.config, input: { query: 'SELECT {{trigger.x}}' } })).rejects.toMatchObject({ code: 'TEMPLATE_ERROR' });
  });
});

describe('a write of another kind hidden in a WITH clause', () => {
  test('Update Rows refuses WITH … DELETE … UPDATE before running it; nothing changes', async () => {
    const before = await db.sql('SELECT count(*)::int AS n FROM users');
    const query = `WITH gone AS (DELETE FROM users RETURNING id) UPDATE users SET status = 'x' WHERE id IN (SELECT id FROM gone)`;
    const error = await failure('update-rows', { connection: db.config, input: { query } });
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(/^Update Rows only runs UPDATE statements; this one also contains a DELETE inside a WITH clause\. Nothing was run\.$/);
    expect(await db.sql('SELECT count(*)::int AS n FROM users')).toEqual(before);
  });

  test('Delete Rows refuses WITH … UPDATE … DELETE, but allows FOR UPDATE row locks and words in strings', async () => {
    const hidden = `WITH t AS (UPDATE users SET status = 'x' RETURNING id) DELETE FROM users WHERE id IN (SELECT id FROM t)`;
    expect((await failure('delete-rows', { connection: db.config, input: { query: hidden } })).code).toBe('INVALID_INPUT');
    const locked = `DELETE FROM users WHERE id IN (SELECT id FROM users WHERE email = 'insert-update@example.com' FOR UPDATE) /* update */`;
    expect(await run('delete-rows', { connection: db.config, input: { query: locked } })).toEqual({ rowCount: 0 });
  });
});
