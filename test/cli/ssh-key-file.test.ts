/**
 * sshTunnel.privateKeyFile of --connection @file.json, through a real OpenSSH server on loopback
 * (test/harness/sshd.ts): the command reads the key file (relative to the connection file's
 * folder, `~` from the home directory), decrypts it with the passphrase from the file or from
 * --ssh-passphrase-env, and logs in with it; every wrong key file is a usage error naming the
 * field and the path, made before any SSH connection. runCli checks stdout and stderr of every
 * run for the keys, the passphrase and the password; each test checks them again explicitly.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { useTestDatabase } from '../harness/use-test-database.js';
import { expectNoSecretIn, watchSecret } from '../harness/secrets.js';
import { describeWithSshd, startSshd, type Sshd } from '../harness/sshd.js';
import { jsonError, runCli, useCliFolder, type CliResult } from './cli.js';

describeWithSshd('CLI connection file: sshTunnel.privateKeyFile (real sshd)', () => {
  const db = useTestDatabase('cli_ssh_key_file');
  let sshd: Sshd;
  const inFolder = useCliFolder('pg-actions-cli-key-file-', { beforeRemove: () => sshd?.dispose() });

  beforeAll(async () => {
    sshd = await startSshd();
    mkdirSync(inFolder('keys'));
    mkdirSync(inFolder('home', '.ssh'), { recursive: true });
    writeFileSync(inFolder('keys', 'id_ed25519'), sshd.encryptedKey, { mode: 0o600 });
    writeFileSync(inFolder('home', '.ssh', 'id_ecdsa'), sshd.plainKey, { mode: 0o600 });
    writeFileSync(inFolder('keys', 'id_ed25519.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq3dL2h2C1c0xJ4o0Xh1rZqY9m0eQe9rG3Yp test\n');
    writeFileSync(inFolder('keys', 'notes.txt'), 'not a key at all\n');
  }, 60_000);

  const logins = () => (sshd.log().match(new RegExp(`Accepted publickey for ${sshd.user} `, 'g')) ?? []).length;
  const attempts = () => (sshd.log().match(/Connection from 127\.0\.0\.1/g) ?? []).length;

  /** A connection file in `folder` (under the test's folder) whose tunnel has these fields besides host, port and user. */
  function connectionFile(name: string, tunnel: Record<string, unknown>, folder = 'configs'): string {
    mkdirSync(inFolder(folder), { recursive: true });
    const file = inFolder(folder, name);
    writeFileSync(file, JSON.stringify({ ...db.config, sshTunnel: { host: sshd.host, port: sshd.port, user: sshd.user, ...tunnel } }));
    return file;
  }

  async function testConnection(file: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    const result = await runCli(['test-connection', '--connection', `@${file}`, ...extra, '--json'], { env });
    expectNoSecretIn(undefined, result.stdout, result.stderr);
    return result;
  }

  test('an encrypted key file named relative to the connection file, its passphrase in the file: logged in with the key, host key verified', async () => {
    const before = logins();
    // The command runs from the repository: "../keys/…" only exists relative to the connection file.
    const file = connectionFile('relative.json', { privateKeyFile: '../keys/id_ed25519', passphrase: sshd.passphrase, hostKeyFingerprint: sshd.fingerprint });
    const result = await testConnection(file);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(result.stdout).sshTunnel).toMatchObject({ host: sshd.host, hostKeyFingerprint: sshd.fingerprint, hostKeyVerified: true });
    expect(logins()).toBeGreaterThan(before);
  }, 60_000);

  test('~/ is the home directory; a step runs through the tunnel with the key file', async () => {
    const before = { logins: logins(), forwards: sshd.forwardsTo(Number(db.config.port)) };
    const file = connectionFile('home.json', { privateKeyFile: '~/.ssh/id_ecdsa' });
    const input = JSON.stringify({ query: 'SELECT 41 + 1 AS answer' });
    const result = await runCli(['run', 'query-rows', '--connection', `@${file}`, '--input', input], { env: { HOME: inFolder('home') } });
    expectNoSecretIn(undefined, result.stdout, result.stderr);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(result.stdout)).toEqual({ rows: [{ answer: 42 }], rowCount: 1 });
    expect(logins()).toBeGreaterThan(before.logins);
    expect(sshd.forwardsTo(Number(db.config.port))).toBeGreaterThan(before.forwards);
  }, 60_000);

  test('the passphrase of the file\'s key from --ssh-passphrase-env', async () => {
    const file = connectionFile('passphrase-from-env.json', { privateKeyFile: inFolder('keys', 'id_ed25519') });
    const result = await testConnection(file, ['--ssh-passphrase-env', 'KEY_PASSPHRASE'], { KEY_PASSPHRASE: sshd.passphrase });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).sshTunnel.host).toBe(sshd.host);
  }, 60_000);

  test('--ssh-key-file replaces the file\'s key file, which is then not read', async () => {
    const file = connectionFile('replaced.json', { privateKeyFile: 'no-such-key' });
    const result = await testConnection(file, ['--ssh-key-file', inFolder('home', '.ssh', 'id_ecdsa')]);
    expect(result.code).toBe(0);
  }, 60_000);

  test('every wrong key file is a usage error naming the field and the path, before any SSH connection, printing no key nor passphrase', async () => {
    const wrongPassphrase = `${sshd.passphrase} but wrong`;
    watchSecret(wrongPassphrase);
    const base64Key = Buffer.from(sshd.plainKey).toString('base64');
    watchSecret(base64Key);
    const misplaced = 'S3cret"pass\\phrase!';
    watchSecret(misplaced);
    // A passphrase written as a sentence, and a line of a key's body that a `/` cuts into short runs (REVIEW6 R113).
    const dotted = 'correct.horse.battery.staple';
    watchSecret(dotted);
    const keyLine = 'AAAEBrGSwxNC2QLyAbDl8xn2JOpIy3FGdn/WoeNbWo8kSXbcx0SjREWx4u7O0aKnyAEZQF';
    watchSecret(keyLine);
    execFileSync('mkfifo', [inFolder('keys', 'fifo')]);
    const field = 'connection.sshTunnel.privateKeyFile';
    const cases: [string, Record<string, unknown>, RegExp][] = [
      // A value that names nothing on disk may be a secret put in the wrong field: only the nearest existing
      // folder is shown, whatever the value looks like (REVIEW5 R104, REVIEW6 R113).
      ['missing.json', { privateKeyFile: './no-such-key' }, new RegExp(`${field} in .*missing\\.json: the path given \\(not shown: .*the nearest existing folder on it is .*/configs\\) does not exist \\(ENOENT\\)`)],
      ['bare.json', { privateKeyFile: 'no-such-key' }, new RegExp(`${field} in .*bare\\.json: the path given \\(not shown: .*\\) does not exist \\(ENOENT\\)`)],
      ['base64.json', { privateKeyFile: base64Key }, new RegExp(`${field} in .*base64\\.json: the path given \\(not shown: .*\\) (does not exist|cannot be read)`)],
      ['misplaced-passphrase.json', { privateKeyFile: misplaced, passphrase: misplaced }, new RegExp(`${field} in .*misplaced-passphrase\\.json: the path given \\(not shown: .*\\) does not exist`)],
      ['dotted-passphrase.json', { privateKeyFile: dotted }, new RegExp(`${field} in .*dotted-passphrase\\.json: the path given \\(not shown: .*\\) does not exist`)],
      ['key-line.json', { privateKeyFile: keyLine }, new RegExp(`${field} in .*key-line\\.json: the path given \\(not shown: .*\\) (does not exist|is not a path)`)],
      // A FIFO would block the read, Ctrl-C unanswered (REVIEW5 R105).
      ['fifo.json', { privateKeyFile: '../keys/fifo' }, new RegExp(`${field} in .*fifo\\.json: \\.\\./keys/fifo \\(.*\\) is not a regular file`)],
      ['folder.json', { privateKeyFile: '../keys' }, new RegExp(`${field} in .*: \\.\\./keys \\(.*/keys\\) is a folder, not a key file \\(EISDIR\\)`)],
      ['public.json', { privateKeyFile: '../keys/id_ed25519.pub' }, /id_ed25519\.pub .* is a public key; the private key is needed/],
      ['not-a-key.json', { privateKeyFile: '../keys/notes.txt' }, /notes\.txt .* is not a private key file/],
      ['no-passphrase.json', { privateKeyFile: '../keys/id_ed25519' }, new RegExp(`connection\\.sshTunnel\\.passphrase is required: the key file \\.\\./keys/id_ed25519 \\(${field} in .*\\) is encrypted`)],
      ['wrong-passphrase.json', { privateKeyFile: '../keys/id_ed25519', passphrase: wrongPassphrase }, /connection\.sshTunnel\.passphrase does not decrypt the key file \.\.\/keys\/id_ed25519/],
      ['both.json', { privateKeyFile: '../keys/id_ed25519', privateKey: sshd.plainKey }, /connection\.sshTunnel has both privateKey and privateKeyFile; give one/],
      ['text.json', { privateKeyFile: sshd.plainKey }, new RegExp(`${field} in .* holds the text of a key, not the path of a key file`)],
      ['number.json', { privateKeyFile: 22 }, new RegExp(`${field} must be a string`)],
    ];
    const before = attempts();
    for (const [name, tunnel, message] of cases) {
      const result = await testConnection(connectionFile(name, tunnel));
      const error = jsonError(result.stderr);
      expect({ name, code: result.code, error: error.code }).toEqual({ name, code: 2, error: 'INVALID_INPUT' });
      expect({ name, message: error.message }).toEqual({ name, message: expect.stringMatching(message) });
      for (const secret of [wrongPassphrase, base64Key, misplaced, JSON.stringify(misplaced).slice(1, -1), dotted, keyLine, 'AAAEBrGSwxNC2QLyAbDl8xn2JOpIy3FGdn', 'WoeNbWo8kSXbcx0SjREWx4u7O0aKnyAEZQF']) expect({ name, printed: (result.stdout + result.stderr).includes(secret) }).toEqual({ name, printed: false });
    }
    // Nothing reached the SSH server.
    expect(attempts()).toBe(before);
  }, 120_000);

  test('the same checks for --ssh-key-file, ~ expanded', async () => {
    const flags = ['--connection', `@${connectionFile('password.json', { password: sshd.password })}`];
    const run = (keyFile: string, env: NodeJS.ProcessEnv = {}) => runCli(['test-connection', ...flags, '--ssh-key-file', keyFile, '--json'], { env });
    const publicKey = await run(inFolder('keys', 'id_ed25519.pub'));
    expect(publicKey.code).toBe(2);
    expect(jsonError(publicKey.stderr).message).toMatch(/test-connection --ssh-key-file: .*id_ed25519\.pub is a public key/);
    const encrypted = await run('~/../keys/id_ed25519', { HOME: inFolder('home') });
    expect(encrypted.code).toBe(2);
    expect(jsonError(encrypted.stderr).message).toMatch(/passphrase is required: the key file ~\/\.\.\/keys\/id_ed25519 \(--ssh-key-file\) is encrypted/);
    const home = await run('~/.ssh/id_ecdsa', { HOME: inFolder('home') });
    expect(home.code).toBe(0);
  }, 60_000);
});
