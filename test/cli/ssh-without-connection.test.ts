/**
 * --ssh-* flags without --connection: a tunnel leads to the database --connection names, so each
 * command that takes the flags stops with the catalogued usage error SSH_TUNNEL_WITHOUT_CONNECTION
 * (exit 2), before any database is opened: serve and demo would otherwise start the embedded
 * database on this machine, which no tunnel reaches. No sshd needed: nothing connects.
 */
import { CLI_FAILURES } from '../../cli/failure-catalogue.js';
import { jsonError, runCli } from './cli.js';

const COMMANDS: [string, string[]][] = [
  ['serve', ['serve', '--port', '0']],
  ['demo', ['demo']],
  ['test-connection', ['test-connection']],
  ['run', ['run', 'query-rows', '--input', '{"query": "SELECT 1"}']],
  ['check-replication', ['check-replication', '--tables', 'orders']],
  ['watch', ['watch', 'listen', '--config', '{"channel": "c"}']],
];

test.each(COMMANDS)('%s with --ssh-* flags and no --connection: SSH_TUNNEL_WITHOUT_CONNECTION, exit 2, nothing started', async (command, args) => {
  const started = Date.now();
  const result = await runCli([...args, '--ssh-host', 'bastion.example', '--ssh-user', 'deploy', '--json'], { timeoutMs: 60_000 });
  expect(result.code).toBe(2);
  const error = jsonError(result.stderr);
  expect(error).toMatchObject({ code: 'SSH_TUNNEL_WITHOUT_CONNECTION', title: CLI_FAILURES.sshWithoutConnection.title });
  expect(error.message).toMatch(new RegExp(`^${command}: --ssh-host --ssh-user need --connection`));
  expect(error.fixes).toEqual(CLI_FAILURES.sshWithoutConnection.fixes);
  expect(result.stdout).toBe('');
  if (command === 'serve' || command === 'demo') expect(error.message).toContain('embedded database');
  expect(Date.now() - started).toBeLessThan(30_000);
}, 90_000);

test('one flag alone is named too, and the person-readable form shows the title and the fixes', async () => {
  const result = await runCli(['serve', '--ssh-key-file', '/nonexistent/id_ed25519']);
  expect(result.code).toBe(2);
  expect(result.stderr).toContain(CLI_FAILURES.sshWithoutConnection.title);
  expect(result.stderr).toMatch(/serve: --ssh-key-file needs --connection/);
  expect(result.stderr).toContain('--connection postgres://');
  // The key file is not read: the flag's value is not even looked at.
  expect(result.stderr).not.toMatch(/cannot be read/);
}, 60_000);
