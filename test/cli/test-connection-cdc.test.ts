/**
 * `pg-actions test-connection --cdc-tables`: Test connection's change-capture section (what the
 * button shows with table-changes-cdc chosen) from a terminal, on a real wal_level=logical server:
 * ready tables exit 0, a failed check exits 1 with its fix, wrong flags exit 2.
 */
import { writeFileSync } from 'node:fs';
import { useReplicationServer } from '../harness/replication-server.js';
import { jsonError, runCli, useCliFolder } from './cli.js';

const server = useReplicationServer();
const inFolder = useCliFolder('pg-actions-cli-cdc-');
let connection: string;

beforeAll(async () => {
  await server.sql('CREATE TABLE orders (id int PRIMARY KEY, note text); CREATE TABLE loose (a int)');
  connection = `@${inFolder('connection.json')}`;
  writeFileSync(connection.slice(1), JSON.stringify(server.config()));
}, 60_000);

test('--cdc-tables of ready tables: exit 0, the diagnosis carries the change-capture section', async () => {
  const result = await runCli(['test-connection', '--connection', connection, '--cdc-tables', 'orders', '--json']);
  expect(result.code).toBe(0);
  const diagnosis = JSON.parse(result.stdout);
  expect(diagnosis).toMatchObject({ ok: true, changeCapture: { ready: true, database: 'postgres', user: diagnosis.user } });
  expect(diagnosis.changeCapture.checks.filter((check: { level: string }) => check.level === 'failed')).toEqual([]);
  const text = await runCli(['test-connection', '--connection', connection, '--cdc-tables', ' public.orders ']);
  expect(text.code).toBe(0);
  expect(text.stdout).toMatch(/^Connected to PostgreSQL /);
  expect(text.stdout).toContain('Ready for change data capture');
  expect(text.stdout).toContain('Least-privilege set-up:');
});

test('a table that cannot be captured: exit 1, the failed check and its fix printed after the connection diagnosis', async () => {
  const result = await runCli(['test-connection', '--connection', connection, '--cdc-tables', 'orders,loose']);
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/^Connected to PostgreSQL /);
  expect(result.stdout).toContain('Not ready for change data capture: 1 problem');
  expect(result.stdout).toMatch(/FAILED  TABLE_WITHOUT_REPLICA_IDENTITY: .*loose/);
  expect(result.stdout).toMatch(/fix: .*REPLICA IDENTITY/);
  const json = await runCli(['test-connection', '--connection', connection, '--cdc-tables', 'orders,loose', '--json']);
  expect(json.code).toBe(1);
  expect(JSON.parse(json.stdout).changeCapture.checks.filter((c: { level: string }) => c.level === 'failed').map((c: { code: string }) => c.code)).toEqual(['TABLE_WITHOUT_REPLICA_IDENTITY']);
});

test('--cdc-publication names the publication to check; without --cdc-tables there is no change-capture section', async () => {
  const missing = await runCli(['test-connection', '--connection', connection, '--cdc-tables', 'orders', '--cdc-publication', 'no_such_publication', '--json']);
  const checks = JSON.parse(missing.stdout).changeCapture.checks.map((c: { code: string }) => c.code);
  expect(missing.code).toBe(1);
  expect(checks).toContain('PUBLICATION_NOT_FOUND');
  const plain = await runCli(['test-connection', '--connection', connection, '--json']);
  expect(plain.code).toBe(0);
  expect('changeCapture' in JSON.parse(plain.stdout)).toBe(false);
});

test('wrong --cdc-* flags are usage errors (exit 2)', async () => {
  const alone = await runCli(['test-connection', '--connection', connection, '--cdc-publication', 'pub', '--json']);
  expect(alone.code).toBe(2);
  expect(jsonError(alone.stderr).message).toBe('test-connection: --cdc-publication needs --cdc-tables');
  const empty = await runCli(['test-connection', '--connection', connection, '--cdc-tables', ' , ', '--json']);
  expect(empty.code).toBe(2);
  expect(jsonError(empty.stderr).message).toBe('test-connection: --cdc-tables names no table');
  const help = await runCli(['test-connection', '--help']);
  expect(help.stdout).toContain('--cdc-tables');
});
