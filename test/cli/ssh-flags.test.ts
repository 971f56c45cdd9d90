/**
 * The --ssh-* flags of every command that takes --connection, through a real OpenSSH server on
 * loopback (test/harness/sshd.ts): password and key logins with the secrets in environment
 * variables the flags name (never argument values), the host key check, flags merged over an
 * @file.json tunnel, and each wrong invocation as a usage error that prints no secret. runCli
 * checks stdout and stderr of every run for the SSH password, the key and its passphrase.
 */
import { writeFileSync } from 'node:fs';
import { useTestDatabase } from '../harness/use-test-database.js';
import { watchSecret } from '../harness/secrets.js';
import { describeWithSshd, startSshd, type Sshd } from '../harness/sshd.js';
import { databaseUrl, jsonError, runCli, useCliFolder } from './cli.js';

describeWithSshd('CLI --ssh-* flags (real sshd)', () => {
  const db = useTestDatabase('cli_ssh');
  let sshd: Sshd;
  const inFolder = useCliFolder('pg-actions-cli-ssh-', { beforeRemove: () => sshd?.dispose() });
  let keyFile: string;
  let encryptedKeyFile: string;

  beforeAll(async () => {
    await db.sql('CREATE TABLE orders (id int PRIMARY KEY)');
    sshd = await startSshd();
    keyFile = inFolder('id_ecdsa');
    encryptedKeyFile = inFolder('id_ed25519');
    writeFileSync(keyFile, sshd.plainKey, { mode: 0o600 });
    writeFileSync(encryptedKeyFile, sshd.encryptedKey, { mode: 0o600 });
  }, 60_000);

  const dbPort = () => Number(db.config.port);
  const sshFlags = (extra: string[] = []) => ['--ssh-host', sshd.host, '--ssh-port', String(sshd.port), '--ssh-user', sshd.user, ...extra];
  const byPassword = () => sshFlags(['--ssh-password-env', 'BASTION_PASSWORD']);
  const passwordEnv = () => ({ BASTION_PASSWORD: sshd.password });
  const logins = (kind: 'password' | 'publickey') => (sshd.log().match(new RegExp(`Accepted ${kind} for ${sshd.user} `, 'g')) ?? []).length;

  test('test-connection with the password in a named variable: the diagnosis shows the tunnel and its host key; sshd forwarded the connection', async () => {
    const before = sshd.forwardsTo(dbPort());
    const passwordLogins = logins('password');
    const result = await runCli(['test-connection', '--connection', databaseUrl(db), ...byPassword(), '--json'], { env: passwordEnv() });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).sshTunnel).toEqual({ host: sshd.host, port: sshd.port, hostKeyFingerprint: sshd.fingerprint, hostKeyVerified: false });
    expect(sshd.forwardsTo(dbPort()) - before).toBeGreaterThanOrEqual(1);
    expect(logins('password')).toBeGreaterThan(passwordLogins);
    const text = await runCli(['test-connection', '--connection', databaseUrl(db), ...byPassword()], { env: passwordEnv() });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`The SSH host key of ${sshd.host}:${sshd.port} is not verified: it presented ${sshd.fingerprint}`);
  }, 60_000);

  test('an encrypted key from --ssh-key-file with its passphrase in a named variable, and the host key given: verified', async () => {
    const keyLogins = logins('publickey');
    const args = ['--ssh-key-file', encryptedKeyFile, '--ssh-passphrase-env', 'KEY_PASSPHRASE', '--ssh-host-key', sshd.fingerprint];
    const result = await runCli(['test-connection', '--connection', databaseUrl(db), ...sshFlags(args), '--json'], { env: { KEY_PASSPHRASE: sshd.passphrase } });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).sshTunnel).toMatchObject({ hostKeyFingerprint: sshd.fingerprint, hostKeyVerified: true });
    expect(logins('publickey')).toBeGreaterThan(keyLogins);
  }, 60_000);

  test('run, check-replication and test-connection --cdc-tables take the same flags', async () => {
    const before = sshd.forwardsTo(dbPort());
    const run = await runCli(['run', 'query-rows', '--connection', databaseUrl(db), ...sshFlags(['--ssh-key-file', keyFile]), '--input', JSON.stringify({ query: 'SELECT 7 AS seven' })]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ rows: [{ seven: 7 }], rowCount: 1 });
    const check = await runCli(['check-replication', '--connection', databaseUrl(db), ...byPassword(), '--tables', 'orders', '--json'], { env: passwordEnv() });
    // The suite's server has wal_level replica: not ready, but diagnosed through the tunnel.
    expect(check.code).toBe(1);
    expect(JSON.parse(check.stdout).checks.map((c: { code: string }) => c.code)).toContain('WAL_LEVEL_NOT_LOGICAL');
    const cdc = await runCli(['test-connection', '--connection', databaseUrl(db), ...byPassword(), '--cdc-tables', 'orders', '--json'], { env: passwordEnv() });
    expect(cdc.code).toBe(1);
    expect(JSON.parse(cdc.stdout).changeCapture.checks.map((c: { code: string }) => c.code)).toContain('WAL_LEVEL_NOT_LOGICAL');
    expect(sshd.forwardsTo(dbPort()) - before).toBeGreaterThanOrEqual(3);
  }, 90_000);

  test('flags are merged over the sshTunnel of --connection @file.json (the password from a variable)', async () => {
    const file = inFolder('connection.json');
    writeFileSync(file, JSON.stringify({ ...db.config, sshTunnel: { host: sshd.host, port: sshd.port, user: sshd.user, password: 'not-the-password' } }));
    watchSecret('not-the-password');
    const wrong = await runCli(['test-connection', '--connection', `@${file}`, '--json']);
    expect(wrong.code).toBe(1);
    expect(jsonError(wrong.stderr).code).toBe('SSH_AUTH_FAILED');
    const fixed = await runCli(['test-connection', '--connection', `@${file}`, '--ssh-password-env', 'BASTION_PASSWORD', '--json'], { env: passwordEnv() });
    expect(fixed.code).toBe(0);
    expect(JSON.parse(fixed.stdout).sshTunnel.host).toBe(sshd.host);
  }, 60_000);

  test('SSH failures keep their codes: a wrong password from the variable, another host key', async () => {
    const wrongPassword = `${sshd.password}-but-wrong`;
    watchSecret(wrongPassword);
    const auth = await runCli(['test-connection', '--connection', databaseUrl(db), ...byPassword(), '--json'], { env: { BASTION_PASSWORD: wrongPassword } });
    expect(auth.code).toBe(1);
    expect(jsonError(auth.stderr).code).toBe('SSH_AUTH_FAILED');
    const other = 'SHA256:' + Buffer.alloc(32, 9).toString('base64').replace(/=+$/, '');
    const mismatch = await runCli(['test-connection', '--connection', databaseUrl(db), ...sshFlags(['--ssh-key-file', keyFile, '--ssh-host-key', other]), '--json']);
    expect(mismatch.code).toBe(1);
    expect(jsonError(mismatch.stderr)).toMatchObject({ code: 'SSH_HOST_KEY_MISMATCH', message: expect.stringContaining(sshd.fingerprint) });
  }, 60_000);

  test('wrong invocations are usage errors (exit 2) that name the flag and print no secret', async () => {
    const secret = `typed-${sshd.password}`;
    watchSecret(secret);
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['--ssh-user', sshd.user, '--ssh-password-env', 'BASTION_PASSWORD'], passwordEnv(), /--ssh-user needs --ssh-host/],
      [['--ssh-host', sshd.host, '--ssh-password-env', 'BASTION_PASSWORD'], passwordEnv(), /--ssh-host needs --ssh-user/],
      [sshFlags(), {}, /needs a password \(--ssh-password-env <VAR>\) or a private key \(--ssh-key-file <path>\)/],
      [sshFlags(['--ssh-password-env', 'NOT_SET_ANYWHERE']), {}, /--ssh-password-env names an environment variable that is not set/],
      // Someone passing the secret itself where the variable's name goes: it is not echoed.
      [sshFlags(['--ssh-password-env', secret]), {}, /--ssh-password-env names an environment variable that is not set/],
      [sshFlags(['--ssh-key-file', inFolder('missing-key')]), {}, /--ssh-key-file: the path given \(not shown: .*the nearest existing folder on it is \/tmp\/pg-actions-cli-ssh-[^)]*\) does not exist \(ENOENT\)/],
      [[...byPassword().filter((arg) => arg !== String(sshd.port) && arg !== '--ssh-port'), '--ssh-port', 'twenty-two'], passwordEnv(), /--ssh-port must be a port number/],
      // The natural guess --ssh-password=<secret> is an unknown flag, and the value is not printed.
      [[...sshFlags(), `--ssh-password=${secret}`], {}, /Unknown option '--ssh-password'/],
    ];
    for (const [flags, env, message] of cases) {
      const result = await runCli(['test-connection', '--connection', databaseUrl(db), ...flags, '--json'], { env });
      expect({ flags, code: result.code }).toEqual({ flags, code: 2 });
      expect(jsonError(result.stderr).message).toMatch(message);
      expect(result.stdout + result.stderr).not.toContain(secret);
    }
  }, 120_000);

  test('--help of every command that takes --connection documents the SSH flags', async () => {
    for (const command of ['test-connection', 'run', 'check-replication', 'watch', 'serve', 'demo']) {
      const help = await runCli([command, '--help']);
      expect({ command, code: help.code }).toEqual({ command, code: 0 });
      for (const flag of ['--ssh-host', '--ssh-port', '--ssh-user', '--ssh-key-file', '--ssh-passphrase-env', '--ssh-password-env', '--ssh-host-key']) expect(help.stdout).toContain(flag);
    }
  }, 60_000);
});
