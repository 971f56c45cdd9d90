/**
 * Through a real OpenSSH server on loopback (test/harness/sshd.ts) as the bastion: password and
 * key logins, the host key fingerprint, each SSH failure as its own code, a dropped SSH
 * connection, closeAll, the CancelRequest and pg_terminate_backend paths, and TLS to PostgreSQL
 * inside the tunnel. sshd's log names every forwarded connection, so a test can tell a
 * connection that went through the tunnel from one that went straight to the server.
 */
import { closeAll, execute, type ConnectionConfig } from '../../connection/index.js';
import { runningStatement, stoppedRunning, terminateBackendsOf } from '../harness/activity.js';
import { createTestPki } from '../harness/certs.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { eventually, failure, refusedPort, sleep, startSilentServer, testConnectionChecked } from '../harness/failures.js';
import { expectNoSecretIn } from '../harness/secrets.js';
import { disposeStartedServers, startTlsServer } from '../harness/servers.js';
import { describeWithSshd, startSshd, TEST_USER, type Sshd } from '../harness/sshd.js';
import { runCli } from '../cli/cli.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describeWithSshd('through an SSH tunnel (real sshd)', () => {
  const db = useTestDatabase('ssh');
  let sshd: Sshd;
  let dbPort: number;

  beforeAll(async () => {
    dbPort = Number(db.config.port);
    await db.sql('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)');
    sshd = await startSshd();
  }, 60_000);

  afterAll(async () => {
    await sshd?.dispose();
    await disposeStartedServers();
  }, 30_000);

  afterEach(async () => {
    await closeAll();
  });

  /** The test database, reached through the tunnel (host and port as sshd sees them). */
  const through = (ssh: Partial<NonNullable<ConnectionConfig['sshTunnel']>> = {}, extra: Partial<ConnectionConfig> = {}): ConnectionConfig => ({
    ...db.config,
    sshTunnel: sshd.tunnel(ssh),
    connectTimeoutMs: 5000,
    ...extra,
  });

  test('a query runs through the tunnel with password login: sshd forwarded it, one SSH connection serves the pool', async () => {
    const before = sshd.forwardsTo(dbPort);
    const config = through();
    const inserted = await execute(config, { text: 'INSERT INTO notes (body) VALUES ($1) RETURNING body', values: ['via bastion'] });
    expect(inserted.rows).toEqual([{ body: 'via bastion' }]);
    // Five at once: five pooled connections, each a channel of the one SSH connection.
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => execute(config, { text: 'SELECT $1::int AS i, pg_sleep(0.1) IS NULL AS slept', values: [i] })));
    expect(results.map((r) => r.rows[0]!.i)).toEqual([0, 1, 2, 3, 4]);
    expect(sshd.forwardsTo(dbPort) - before).toBeGreaterThanOrEqual(2);
    expect(sshd.sessions()).toHaveLength(1);
  });

  test('key login: a PEM key without passphrase, and an encrypted OpenSSH key with its passphrase (no password given)', async () => {
    const plain = through({ password: undefined, privateKey: sshd.plainKey });
    expect((await execute(plain, { text: 'SELECT current_user AS who' })).rows).toEqual([{ who: db.config.user }]);
    const encrypted = through({ password: undefined, privateKey: sshd.encryptedKey, passphrase: sshd.passphrase });
    expect((await execute(encrypted, { text: 'SELECT 2 AS two' })).rows).toEqual([{ two: 2 }]);
    expect(sshd.log()).toMatch(new RegExp(`Accepted publickey for ${TEST_USER} .*ECDSA`));
    expect(sshd.log()).toMatch(new RegExp(`Accepted publickey for ${TEST_USER} .*ED25519`));
  });

  test('bad SSH settings are INVALID_INPUT naming the field, before any connection; no key text or passphrase in the message', async () => {
    const problemsOf = async (ssh: Record<string, unknown>) => (await failure(execute({ ...db.config, sshTunnel: ssh } as ConnectionConfig, { text: 'SELECT 1' }))).problems;
    const base = { host: sshd.host, user: sshd.user };
    expect(await problemsOf(base)).toEqual(['connection.sshTunnel needs password or privateKey']);
    expect(await problemsOf({ ...base, privateKey: sshd.encryptedKey })).toEqual(['connection.sshTunnel.passphrase is required: connection.sshTunnel.privateKey is encrypted']);
    expect(await problemsOf({ ...base, privateKey: sshd.encryptedKey, passphrase: 'not it' })).toEqual(['connection.sshTunnel.passphrase does not decrypt connection.sshTunnel.privateKey']);
    const mangled = sshd.plainKey.replace(/\n[A-Za-z0-9+/]{20}/, '\nAAAAAAAAAAAAAAAAAAAA');
    expect((await problemsOf({ ...base, privateKey: mangled }))![0]).toMatch(/^connection\.sshTunnel\.privateKey is not a private key/);
    expect(await problemsOf({ ...base, password: 'x', passphrase: 'y' })).toEqual(['connection.sshTunnel.passphrase is given without connection.sshTunnel.privateKey']);
    expect(await problemsOf({ ...base, password: 'x', port: 0, hostKeyFingerprint: 'MD5:aa:bb', agent: true })).toEqual(
      expect.arrayContaining(['connection.sshTunnel.agent is not a known field', 'connection.sshTunnel.port must be >= 1', 'connection.sshTunnel.hostKeyFingerprint is not in the expected format']),
    );
    expect(await problemsOf({ password: 'x' })).toEqual(expect.arrayContaining(['connection.sshTunnel.host is required', 'connection.sshTunnel.user is required']));
    expect(sshd.sessions()).toHaveLength(0);
  });

  describe('host key', () => {
    test('with the right fingerprint (as ssh-keygen -l prints it, or without SHA256:) the connection is made', async () => {
      for (const fingerprint of [sshd.fingerprint, sshd.fingerprint.replace(/^SHA256:/, '')]) {
        expect((await execute(through({ hostKeyFingerprint: fingerprint }), { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
        await closeAll();
      }
    });

    test('with another fingerprint: SSH_HOST_KEY_MISMATCH naming both, before any password is sent', async () => {
      const other = 'SHA256:' + Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '');
      const logins = () => (sshd.log().match(/(Accepted|Failed) (password|publickey)/g) ?? []).length;
      const before = logins();
      const error = await failure(execute(through({ hostKeyFingerprint: other }), { text: 'SELECT 1' }));
      expect(error.code).toBe('SSH_HOST_KEY_MISMATCH');
      expect(error.message).toContain(`presented host key ${sshd.fingerprint}, not the expected ${other}`);
      await sleep(200);
      expect(logins()).toBe(before);
    });

    test('without a fingerprint, Test connection shows the one presented and warns; with it, no SSH warning', async () => {
      const unverified = await testConnectionChecked(through());
      if (!unverified.ok) throw unverified.error;
      expect(unverified.sshTunnel).toEqual({ host: sshd.host, port: sshd.port, hostKeyFingerprint: sshd.fingerprint, hostKeyVerified: false });
      expect(unverified.warnings.find((w) => w.startsWith('The SSH host key'))).toContain(`is not verified: it presented ${sshd.fingerprint}`);
      const verified = await testConnectionChecked(through({ hostKeyFingerprint: sshd.fingerprint }));
      if (!verified.ok) throw verified.error;
      expect(verified.sshTunnel).toMatchObject({ hostKeyFingerprint: sshd.fingerprint, hostKeyVerified: true });
      expect(verified.warnings.filter((w) => w.includes('SSH'))).toEqual([]);
    });
  });

  describe('failures, each its own code', () => {
    test('wrong password, or a key the server does not know: SSH_AUTH_FAILED naming the SSH user', async () => {
      const wrong = await failure(execute(through({ password: `${sshd.password}-wrong` }), { text: 'SELECT 1' }));
      expect(wrong.code).toBe('SSH_AUTH_FAILED');
      expect(wrong.message).toBe(`The SSH host ${sshd.host}:${sshd.port} rejected user "${sshd.user}" with the password or key given.`);
      const stranger = await startSshd();
      try {
        // The same user, a key that is in the other server's authorized_keys only.
        const unknownKey = await failure(execute(through({ password: undefined, privateKey: stranger.plainKey }), { text: 'SELECT 1' }));
        expect(unknownKey.code).toBe('SSH_AUTH_FAILED');
      } finally {
        await stranger.dispose();
      }
    });

    test('nothing listening, or a host that never answers: SSH_HOST_UNREACHABLE naming the SSH host', async () => {
      const port = await refusedPort();
      const refused = await failure(execute(through({ port }), { text: 'SELECT 1' }));
      expect(refused.code).toBe('SSH_HOST_UNREACHABLE');
      expect(refused.message).toBe(`Could not reach the SSH host 127.0.0.1:${port}: the connection was refused.`);
      const silent = await startSilentServer();
      try {
        const started = Date.now();
        const mute = await failure(execute(through({ port: silent.port }, { connectTimeoutMs: 1500 }), { text: 'SELECT 1' }));
        expect(mute.code).toBe('SSH_HOST_UNREACHABLE');
        expect(mute.message).toMatch(new RegExp(`^The SSH host 127\\.0\\.0\\.1:${silent.port} did not complete the SSH handshake within \\d+ ms\\.$`));
        expect(Date.now() - started).toBeLessThan(10_000);
      } finally {
        await silent.close();
      }
    });

    test.each([
      ['AllowTcpForwarding no', { AllowTcpForwarding: 'no' }],
      ['PermitOpen to another port only', { PermitOpen: '127.0.0.1:1' }],
    ])('sshd refusing to forward (%s): SSH_FORWARDING_REFUSED after a successful login', async (_, settings) => {
      const strict = await startSshd({ settings });
      try {
        const error = await failure(execute({ ...db.config, sshTunnel: strict.tunnel() }, { text: 'SELECT 1' }));
        expect(error.code).toBe('SSH_FORWARDING_REFUSED');
        expect(error.message).toContain(`refused to forward a connection to ${db.config.host}:${dbPort} (administratively prohibited)`);
        expect(strict.log()).toMatch(new RegExp(`Accepted password for ${TEST_USER} `));
      } finally {
        await closeAll();
        await strict.dispose();
      }
    });

    test('a database port the SSH host cannot connect to: CONNECTION_REFUSED saying the SSH host tried', async () => {
      const port = await refusedPort();
      const error = await failure(execute(through({}, { port }), { text: 'SELECT 1' }));
      expect(error.code).toBe('CONNECTION_REFUSED');
      expect(error.message).toMatch(new RegExp(`^The SSH host 127\\.0\\.0\\.1:${sshd.port} could not connect to ${db.config.host}:${port} \\(it said: `));
    });
  });

  describe('lifecycle', () => {
    test('a dropped SSH connection (its sshd process killed) is opened again by the next step', async () => {
      const config = through();
      const first = (await execute(config, { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]!.pid;
      expect(sshd.sessions()).toHaveLength(1);
      expect(sshd.killSessions()).toBe(1);
      expect(await eventually(async () => sshd.sessions().length === 0)).toBe(true);
      // The client hears the TCP connection close; the pooled database connection went with it.
      await sleep(300);
      const second = (await execute(config, { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]!.pid;
      expect(second).not.toBe(first);
      expect(sshd.sessions()).toHaveLength(1);
    });

    test('closeAll closes the SSH connection', async () => {
      await execute(through(), { text: 'SELECT 1' });
      expect(sshd.sessions()).toHaveLength(1);
      await closeAll();
      expect(await eventually(async () => sshd.sessions().length === 0)).toBe(true);
    });

    test('a statement that ignores the cancel: the CancelRequest and pg_terminate_backend both go through the tunnel', async () => {
      const applicationName = 'ssh-ignores-cancel';
      const config = through({}, { applicationName });
      // Two idle pooled connections: the terminate reuses one, so a new forward during the step is the cancel's.
      await Promise.all([0, 1].map(() => execute(config, { text: 'SELECT pg_sleep(0.3)' })));
      const before = sshd.forwardsTo(dbPort);
      const marker = `ssh_loop_${Date.now()}`;
      const pending = failure(execute(config, {
        text: `/* ${marker} */ DO $$ BEGIN LOOP BEGIN PERFORM pg_sleep(0.2); EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$`,
        timeoutMs: 1000,
      }));
      try {
        const backend = await runningStatement(db.sql, db.name, applicationName, marker);
        const error = await pending;
        expect(error.code).toBe('QUERY_TIMEOUT');
        expect(error.message).toContain('kept running after it was cancelled');
        expect(await stoppedRunning(db.sql, db.name, backend.pid, 5000, 'gone')).toEqual({ stopped: true, state: 'gone' });
        expect(sshd.forwardsTo(dbPort) - before).toBeGreaterThanOrEqual(1);
      } finally {
        await terminateBackendsOf(db.sql, db.name, applicationName);
      }
    });
  });

  test('TLS to PostgreSQL inside the tunnel: verify-full against the database host name; a wrong CA is refused', async () => {
    const pki = createTestPki();
    const tls = await startTlsServer();
    const config: ConnectionConfig = {
      host: 'localhost', port: tls.port, database: 'postgres', user: tls.user, password: tls.password,
      sslMode: 'verify-full', sslCa: pki.caPem, sshTunnel: sshd.tunnel(), connectTimeoutMs: 5000,
    };
    const row = (await execute(config, { text: 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()' })).rows[0];
    expect(row).toEqual({ ssl: true });
    expect(sshd.forwardsTo(tls.port)).toBeGreaterThanOrEqual(1);
    const diagnosis = await testConnectionChecked(config);
    expect(diagnosis).toMatchObject({ ok: true, ssl: { enabled: true }, sshTunnel: { hostKeyVerified: false } });
    const wrongCa = await failure(execute({ ...config, sslCa: pki.otherCaPem }, { text: 'SELECT 1' }));
    expect(wrongCa.code).toBe('SSL_CERTIFICATE_INVALID');
  }, 180_000); // it starts a TLS server of its own: 50 to 68 s at load 35-40 (the default 30 s failed it)

  test('the CLI takes sshTunnel from --connection @file.json: diagnosis with the host key; an SSH error; no SSH secret printed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-actions-ssh-cli-'));
    try {
      const file = join(dir, 'connection.json');
      writeFileSync(file, JSON.stringify(through({ password: undefined, privateKey: sshd.encryptedKey, passphrase: sshd.passphrase })));
      // runCli checks stdout and stderr for every secret the harness knows (the SSH ones included).
      const ok = await runCli(['test-connection', '--connection', `@${file}`, '--json']);
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout).sshTunnel).toEqual({ host: sshd.host, port: sshd.port, hostKeyFingerprint: sshd.fingerprint, hostKeyVerified: false });
      writeFileSync(file, JSON.stringify(through({ password: 'not-the-ssh-password' })));
      const failed = await runCli(['test-connection', '--connection', `@${file}`, '--json']);
      expect(failed.code).not.toBe(0);
      expect(failed.stdout + failed.stderr).toContain('SSH_AUTH_FAILED');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000); // two CLI runs: each starts the CLI through tsx (over 40 s at load 38)

  test('no SSH secret in any error: SQL errors echoing the password, the passphrase or the key, and an SSH login failure with all three given', async () => {
    const config = through({ privateKey: sshd.encryptedKey, passphrase: sshd.passphrase });
    for (const secret of [sshd.password, sshd.passphrase, sshd.encryptedKey]) {
      // "invalid input syntax for type integer: <value>": the server echoes the value.
      const error = await failure(execute(config, { text: 'SELECT $1::int', values: [secret] }));
      expect(error.code).toBe('INVALID_VALUE');
      expect(error.message).toContain('••••••');
    }
    const stranger = await startSshd();
    try {
      const everything = through({ password: 'not-the-password', privateKey: stranger.encryptedKey, passphrase: stranger.passphrase });
      const error = await failure(execute(everything, { text: 'SELECT 1' }));
      expect(error.code).toBe('SSH_AUTH_FAILED');
      const diagnosis = await testConnectionChecked(everything);
      expect(diagnosis.ok).toBe(false);
      expectNoSecretIn(undefined, diagnosis, String((diagnosis as { error: Error }).error.cause));
    } finally {
      await stranger.dispose();
    }
  }, 90_000); // an sshd of its own and six SSH logins with an encrypted key (its KDF is CPU work): over 30 s at load 40
});
