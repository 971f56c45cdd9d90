/** `pg-actions run`: output JSON and exit codes of the real binary against the suite's server. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../harness/servers.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { databaseUrl, expectNoPasswordPrinted, jsonError, runCli, runCliOnTerminal, serverPassword } from './cli.js';

const db = useTestDatabase('cli_run');
let url: string;
let files: string;

beforeAll(async () => {
  url = databaseUrl(db);
  files = mkdtempSync(join(tmpdir(), 'pg-actions-cli-'));
  await db.sql(`CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL,
                status text NOT NULL DEFAULT 'active', created_at timestamptz NOT NULL DEFAULT now())`);
  await db.sql(`INSERT INTO users (name, email, status, created_at) VALUES
                ('John Doe', 'john@example.com', 'active', '2026-01-15T10:30:00Z'),
                ('Jane Roe', 'jane@example.com', 'inactive', '2026-01-10T08:00:00Z')`);
}, 60_000);
afterAll(async () => {
  expectNoPasswordPrinted();
}, 30_000);

function file(name: string, content: unknown): string {
  const path = join(files, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

test('run query-rows prints the output JSON and exits 0', async () => {
  const input = { query: 'SELECT id, name, email, created_at FROM users WHERE status = $1 ORDER BY id', parameters: ['active'] };
  const result = await runCli(['run', 'query-rows', '--connection', url, '--input', JSON.stringify(input)]);
  expect(result).toEqual({
    code: 0,
    stdout: JSON.stringify({ rows: [{ id: 1, name: 'John Doe', email: 'john@example.com', created_at: '2026-01-15T10:30:00Z' }], rowCount: 1 }, null, 2) + '\n',
    stderr: '',
  });
});

test('run insert-row reads --input and --context from @files and renders the templates', async () => {
  const input = file('insert.json', { table: 'users', columns: { name: '{{trigger.name}}', email: '{{trigger.email}}', created_at: '{{now}}' } });
  const context = file('context.json', { trigger: { name: 'Ann O\'Hara', email: 'ann@example.com' }, now: '2026-02-01T12:00:00.000Z' });
  const result = await runCli(['run', 'insert-row', '--connection', url, '--input', `@${input}`, '--context', `@${context}`]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(JSON.parse(result.stdout)).toEqual({
    insertedId: 3,
    rowCount: 1,
    row: { id: 3, name: "Ann O'Hara", email: 'ann@example.com', status: 'active', created_at: '2026-02-01T12:00:00Z' },
  });
  expect(await db.sql('SELECT name FROM users WHERE id = 3')).toEqual([{ name: "Ann O'Hara" }]);
});

test('on a terminal, a large result shows a progress line on stderr; stdout still gets only the JSON', async () => {
  const input = file('large.json', { query: `SELECT g, repeat('x', 1000) AS filler FROM generate_series(1, 4000) g`, maxResultBytes: 20 * 1048576 });
  const out = join(files, 'large-output.json');
  const { code, terminal } = await runCliOnTerminal(['run', 'query-rows', '--connection', url, '--input', `@${input}`], out);
  expect(code).toBe(0);
  expect(terminal).toMatch(/› receiving the result: [\d,]+ rows, [1-4] MB/);
  expect(terminal).not.toContain(serverPassword());
  const output = JSON.parse(readFileSync(out, 'utf8'));
  expect(output.rowCount).toBe(4000);
  // Without a terminal (every other test here) nothing but errors reaches stderr.
  const piped = await runCli(['run', 'query-rows', '--connection', url, '--input', `@${input}`]);
  expect(piped.stderr).toBe('');
});

test('the password may come from PGPASSWORD when the URL has none', async () => {
  const withoutPassword = new URL(url);
  withoutPassword.password = '';
  const input = JSON.stringify({ query: 'SELECT count(*)::int AS n FROM users' });
  const result = await runCli(['run', 'query-rows', '--connection', withoutPassword.toString(), '--input', input], { env: { PGPASSWORD: serverPassword() } });
  expect(result.stderr).toBe('');
  expect(JSON.parse(result.stdout)).toEqual({ rows: [{ n: expect.any(Number) }], rowCount: 1 });
});

describe('exit 2: the invocation or the input is wrong', () => {
  test('input missing the required query, with every problem named', async () => {
    const result = await runCli(['run', 'query-rows', '--connection', url, '--input', '{}']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('Invalid input (INVALID_INPUT)');
    expect(result.stderr).toContain('query');
    expect(result.stderr).toMatch(/How to fix it:\n {2}1\. /);
  });

  test('unknown action', async () => {
    const result = await runCli(['run', 'drop-database', '--connection', url, '--input', '{}']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown action "drop-database"');
  });

  test('unknown flag', async () => {
    const result = await runCli(['run', 'query-rows', '--connection', url, '--input', '{"query":"SELECT 1"}', '--verbose']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Unknown option '--verbose'");
  });

  test('unknown command', async () => {
    const result = await runCli(['frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown command "frobnicate"');
  });

  test('--input that is not JSON', async () => {
    const result = await runCli(['run', 'query-rows', '--connection', url, '--input', '{query: SELECT 1}']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--input is not valid JSON');
  });

  test('a malformed --connection file never echoes its text (it holds the password): only where the mistake is', async () => {
    const secret = 'Hunter2-' + Math.random().toString(36).slice(2);
    const broken = file('broken-connection.json', `{\n  "host": "127.0.0.1",\n  "password": ${secret}\n}`);
    for (const extra of [[], ['--json']]) {
      const result = await runCli(['run', 'query-rows', '--connection', `@${broken}`, '--input', '{"query": "SELECT 1"}', ...extra]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`--connection file ${broken} is not valid JSON (line 3, column 15)`);
      expect(result.stderr).toContain('--connection @connection.json');
      expect(result.stderr + result.stdout).not.toContain(secret.slice(0, 6));
    }
  });

  test('--input @file that does not exist', async () => {
    const result = await runCli(['run', 'query-rows', '--connection', url, '--input', `@${join(files, 'missing.json')}`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('cannot read the file (ENOENT)');
  });

  test('a template that cannot render (TEMPLATE_ERROR)', async () => {
    const input = JSON.stringify({ query: 'SELECT $1::text AS v', parameters: ['{{trigger.missing.deeper}}'] });
    const result = await runCli(['run', 'query-rows', '--connection', url, '--input', input, '--json']);
    expect(result.code).toBe(2);
    expect(jsonError(result.stderr).code).toBe('TEMPLATE_ERROR');
  });
});

describe('exit 1: the database or the runtime failed', () => {
  test('SQL syntax error, with where it is and how to fix it', async () => {
    const result = await runCli(['run', 'query-rows', '--connection', url, '--input', JSON.stringify({ query: 'SELECT id\n  FORM users' })]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('Syntax error in SQL query (SYNTAX_ERROR)');
    expect(result.stderr).toContain('at line 2, column');
  });

  test('nothing listens on the port (CONNECTION_REFUSED)', async () => {
    const refused = new URL(url);
    refused.port = String(await freePort());
    const result = await runCli(['run', 'query-rows', '--connection', refused.toString(), '--input', '{"query":"SELECT 1"}', '--json']);
    expect(result.code).toBe(1);
    expect(jsonError(result.stderr).code).toBe('CONNECTION_REFUSED');
  });

  test('--json: stderr is exactly one JSON object with code, title, message and fixes', async () => {
    const result = await runCli(['run', 'query-rows', '--connection', url, '--input', '{"query":"SELECT * FROM no_such_table"}', '--json']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const error = jsonError(result.stderr);
    expect(error).toMatchObject({ code: 'UNDEFINED_TABLE', title: expect.any(String), message: expect.any(String), sqlstate: '42P01' });
    expect(error.fixes.length).toBeGreaterThan(0);
  });

  test('--json usage errors have the same shape', async () => {
    const result = await runCli(['run', 'query-rows', '--nope', '--json']);
    expect(result.code).toBe(2);
    expect(jsonError(result.stderr)).toMatchObject({ code: 'INVALID_INPUT', title: 'Invalid input', fixes: [expect.stringContaining('pg-actions help run')] });
  });
});
