/** --connection handling (sslmode, @config.json) and `pg-actions test-connection`. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useTestDatabase } from '../harness/use-test-database.js';
import { databaseUrl, expectNoPasswordPrinted, jsonError, runCli } from './cli.js';

const db = useTestDatabase('cli_connection');
let serverVersion: string;

beforeAll(async () => {
  serverVersion = (await db.sql<{ v: string }>(`SELECT current_setting('server_version') AS v`))[0]!.v;
}, 60_000);
afterAll(async () => {
  expectNoPasswordPrinted();
}, 30_000);

const SELECT_ONE = JSON.stringify({ query: 'SELECT 1 AS one' });

test('sslmode=require in the URL against a server without TLS: exit 1, SSL_NOT_SUPPORTED', async () => {
  const result = await runCli(['run', 'query-rows', '--connection', databaseUrl(db, { sslmode: 'require' }), '--input', SELECT_ONE, '--json']);
  expect(result.code).toBe(1);
  expect(jsonError(result.stderr).code).toBe('SSL_NOT_SUPPORTED');
});

test('sslmode=disable in the URL works', async () => {
  const result = await runCli(['run', 'query-rows', '--connection', databaseUrl(db, { sslmode: 'disable' }), '--input', SELECT_ONE]);
  expect(result.code).toBe(0);
  expect(JSON.parse(result.stdout)).toEqual({ rows: [{ one: 1 }], rowCount: 1 });
});

test('--connection @config.json takes a ConnectionConfig', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'pg-actions-cli-')), 'connection.json');
  writeFileSync(path, JSON.stringify({ ...db.config, sslMode: 'disable' }));
  const result = await runCli(['run', 'query-rows', '--connection', `@${path}`, '--input', SELECT_ONE]);
  expect(result.code).toBe(0);
  expect(JSON.parse(result.stdout)).toEqual({ rows: [{ one: 1 }], rowCount: 1 });
});

test('an invalid ConnectionConfig is exit 2, every bad field named', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'pg-actions-cli-')), 'connection.json');
  writeFileSync(path, JSON.stringify({ host: 'localhost', port: 'five', sslMode: 'sometimes' }));
  const result = await runCli(['test-connection', '--connection', `@${path}`, '--json']);
  expect(result.code).toBe(2);
  const error = jsonError(result.stderr);
  expect(error.code).toBe('INVALID_INPUT');
  expect(error.message).toContain('connection.port');
  expect(error.message).toContain('connection.sslMode');
});

test('test-connection prints the diagnosis for people: server version, TLS, user, database, latency, warnings', async () => {
  const result = await runCli(['test-connection', '--connection', databaseUrl(db, { sslmode: 'disable' })]);
  expect(result.code).toBe(0);
  expect(result.stdout).toContain(`Connected to PostgreSQL ${serverVersion}`);
  expect(result.stdout).toMatch(/TLS +not encrypted/);
  expect(result.stdout).toMatch(new RegExp(`database +${db.name}`));
  expect(result.stdout).toMatch(/latency +[\d.]+ ms/);
  expect(result.stdout).toContain('Warnings:');
  // The target is echoed with its password masked.
  expect(result.stdout).toMatch(/target +postgres:\/\/[^:]+:\*\*\*@/);
});

test('test-connection --json prints the diagnosis object', async () => {
  const result = await runCli(['test-connection', '--connection', databaseUrl(db, { sslmode: 'disable' }), '--json']);
  expect(result.code).toBe(0);
  expect(JSON.parse(result.stdout)).toMatchObject({
    ok: true,
    serverVersion,
    ssl: { enabled: false, protocol: null, cipher: null },
    database: db.name,
    latencyMs: expect.any(Number),
    warnings: expect.any(Array),
  });
});

test('test-connection with a wrong password: exit 1, AUTHENTICATION_FAILED, the wrong password not shown', async () => {
  const wrong = new URL(databaseUrl(db));
  wrong.password = 'not-the-password-42';
  const result = await runCli(['test-connection', '--connection', wrong.toString()]);
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('(AUTHENTICATION_FAILED)');
  expect(result.stderr).not.toContain('not-the-password-42');
});

test('actions lists all six actions with their input fields', async () => {
  const result = await runCli(['actions']);
  expect(result.code).toBe(0);
  for (const key of ['query-rows', 'insert-row', 'update-rows', 'delete-rows', 'execute-query', 'schema-overview']) expect(result.stdout).toContain(key);
  expect(result.stdout).toContain('query (string, required)');
  expect(result.stdout).toContain('exact (boolean)');
});

test('actions --json prints every action with its input and output schemas', async () => {
  const result = await runCli(['actions', '--json']);
  const listed = JSON.parse(result.stdout) as { key: string; input: { properties: object }; output: object }[];
  expect(listed.map((action) => action.key)).toEqual(['query-rows', 'insert-row', 'update-rows', 'delete-rows', 'execute-query', 'schema-overview']);
  expect(listed[0]!.input.properties).toHaveProperty('query');
});

test('help and --help print usage on stdout with exit 0; no command is exit 2', async () => {
  const help = await runCli(['help', 'run']);
  expect(help.code).toBe(0);
  expect(help.stdout).toContain('pg-actions run <action>');
  expect((await runCli(['serve', '--help'])).stdout).toContain('pg-actions serve');
  const none = await runCli([]);
  expect(none.code).toBe(2);
  expect(none.stderr).toContain('Usage: pg-actions <command>');
});
