/**
 * A connection is exactly its configuration: the host process's PGPASSWORD, PGPASSFILE,
 * ~/.pgpass and other PG* variables never reach a server a step names. Each case runs the
 * library in a child process started with that environment (test/harness/hostile-environment.ts)
 * against an impostor server that records every password it is sent.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Call, Outcome } from '../harness/hostile-environment.js';
import { md5Answer, startPasswordListener, tcpHandlesClosed, type PasswordListener } from '../harness/password-listener.js';
import { printedPlaygroundUrl, runCli, startCli } from '../cli/cli.js';
import { expectNoSecretIn, watchSecret } from '../harness/secrets.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('../harness/hostile-environment.ts', import.meta.url));
const ENV_SECRET = 'env-secret-PGPASSWORD';
const PASSFILE_SECRET = 'passfile-secret-7f3a';
const HOME_SECRET = 'home-pgpass-secret-91c2';

let listener: PasswordListener;
let md5Listener: PasswordListener;
let home: string;
let passfile: string;

beforeAll(async () => {
  // Suite-wide: no error, reply or output anywhere in this file may carry them.
  for (const secret of [ENV_SECRET, PASSFILE_SECRET, HOME_SECRET]) watchSecret(secret);
  listener = await startPasswordListener('cleartext');
  md5Listener = await startPasswordListener('md5');
  home = mkdtempSync(join(tmpdir(), 'pg-actions-home-'));
  writeFileSync(join(home, '.pgpass'), `*:*:*:*:${HOME_SECRET}\n`);
  chmodSync(join(home, '.pgpass'), 0o600);
  passfile = join(home, 'passfile');
  writeFileSync(passfile, `127.0.0.1:*:*:*:${PASSFILE_SECRET}\n`);
  chmodSync(passfile, 0o600);
});

afterAll(async () => {
  await listener.close();
  await md5Listener.close();
  rmSync(home, { recursive: true, force: true });
  await tcpHandlesClosed();
});

/** The environment of a host process that has every credential source pg would read set. */
function hostileEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('PG')));
  return { ...clean, HOME: home, PGPASSWORD: ENV_SECRET, PGPASSFILE: passfile, ...extra };
}

function inChild(calls: Call[], env: NodeJS.ProcessEnv): Promise<Outcome[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(calls)], { cwd: ROOT, env, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`child failed: ${error.message}\n${stderr}`));
      expectNoSecretIn(undefined, stdout, stderr);
      resolve(stdout.trim().split('\n').map((line) => JSON.parse(line) as Outcome));
    });
  });
}

const target = (port: number, extra: object = {}) => ({ host: '127.0.0.1', port, user: 'flow', database: 'app', sslMode: 'disable' as const, ...extra });

function everySecretSent(): string[] {
  return [...listener.passwords(), ...md5Listener.passwords()];
}

beforeEach(() => {
  listener.visits.length = 0;
  md5Listener.visits.length = 0;
});

test('the listener records a password that was configured (so silence below means something)', async () => {
  const outcomes = await inChild(
    [
      { via: 'testConnection', connection: target(listener.port, { password: 'configured-pw' }) },
      { via: 'testConnection', connection: target(md5Listener.port, { password: 'configured-pw' }) },
    ],
    hostileEnv(),
  );
  expect(outcomes.map((o) => o.code)).toEqual(['AUTHENTICATION_FAILED', 'AUTHENTICATION_FAILED']);
  expect(listener.passwords()).toEqual(['configured-pw']);
  expect(md5Listener.passwords()).toEqual([md5Answer('configured-pw', 'flow')]);
});

test('no password from PGPASSWORD, PGPASSFILE or ~/.pgpass: testConnection, execute, "password": ""', async () => {
  const calls: Call[] = [];
  for (const port of [listener.port, md5Listener.port]) {
    calls.push(
      { via: 'testConnection', connection: target(port) },
      { via: 'testConnection', connection: target(port, { password: '' }) },
      { via: 'execute', connection: target(port) },
      { via: 'execute', connection: target(port, { password: '', sslMode: 'prefer' }) },
    );
  }
  const outcomes = await inChild(calls, hostileEnv());
  expect(everySecretSent()).toEqual([]);
  expect(listener.visits).toHaveLength(4);
  expect(md5Listener.visits).toHaveLength(4);
  for (const outcome of outcomes) {
    expect(outcome).toEqual(expect.objectContaining({ ok: false, code: 'AUTHENTICATION_FAILED', message: expect.stringMatching(/asked for a password.*has none/) }));
  }
  // ~/.pgpass alone (no PGPASSFILE pointing elsewhere)
  await inChild([{ via: 'testConnection', connection: target(listener.port) }], hostileEnv({ PGPASSFILE: undefined, PGPASSWORD: undefined }));
  expect(everySecretSent()).toEqual([]);
});

test('no other PG* variable changes where or how a step connects', async () => {
  const env = hostileEnv({
    PGHOST: '192.0.2.1',
    PGPORT: '1',
    PGUSER: 'env_user',
    PGDATABASE: 'env_db',
    PGOPTIONS: '-c search_path=attacker',
    PGAPPNAME: 'env-app',
    PGSSLMODE: 'require',
    PGREPLICATION: 'database',
    PGSSLNEGOTIATION: 'direct',
    PGCLIENT_ENCODING: 'LATIN1',
    PGCONNECT_TIMEOUT: '1',
  });
  const outcomes = await inChild([{ via: 'testConnection', connection: target(listener.port, { password: 'configured-pw' }) }], env);
  expect(outcomes[0]!.code).toBe('AUTHENTICATION_FAILED');
  expect(listener.visits).toEqual([
    {
      // client_encoding is pg-actions' own (the step's timeout is set inside its transaction, not at startup: poolers refuse it).
      startup: { user: 'flow', database: 'app', application_name: 'pg-actions', client_encoding: 'UTF8' },
      askedForTls: false,
      password: 'configured-pw',
    },
  ]);
});

test('the playground never sends the host process password to a connection typed in the page', async () => {
  const outcomes = await inChild(
    [
      { via: 'playground', connection: target(listener.port) },
      // The saved connection has no password either: PGPASSWORD must not stand in for it.
      { via: 'playground', saved: target(md5Listener.port), connection: 'default' },
    ],
    hostileEnv(),
  );
  expect(outcomes.map((o) => o.code)).toEqual(['AUTHENTICATION_FAILED', 'AUTHENTICATION_FAILED']);
  expect(listener.visits).toHaveLength(1);
  expect(md5Listener.visits).toHaveLength(1);
  expect(everySecretSent()).toEqual([]);
});

describe('the CLI', () => {
  const url = (port: number) => `postgres://flow@127.0.0.1:${port}/app?sslmode=disable`;

  test('takes no password from PGPASSFILE or ~/.pgpass', async () => {
    const result = await runCli(['test-connection', '--connection', url(listener.port), '--json'], { env: { HOME: home, PGPASSFILE: passfile } });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('AUTHENTICATION_FAILED');
    expect(listener.visits).toHaveLength(1);
    expect(everySecretSent()).toEqual([]);
  });

  test('serve keeps PGPASSWORD for its --connection: a connection typed in the page never gets it', async () => {
    const { child, output } = startCli(['serve', '--port', '0', '--connection', url(md5Listener.port)], { HOME: home, PGPASSWORD: ENV_SECRET });
    const exited = once(child, 'close');
    try {
      const printed = await printedPlaygroundUrl(output);
      const testConnection = async (connection: unknown) => {
        const response = await fetch(new URL('/api/test-connection', printed), {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${printed.searchParams.get('token')}` },
          body: JSON.stringify({ connection }),
        });
        expectNoSecretIn(undefined, await response.text());
      };
      // Same user and database, another port: the page must give its own password.
      await testConnection(target(listener.port));
      expect(listener.visits).toHaveLength(1);
      expect(listener.passwords()).toEqual([]);
      // The connection serve was given gets it, as documented.
      await testConnection('default');
      expect(md5Listener.passwords()).toEqual([md5Answer(ENV_SECRET, 'flow')]);
    } finally {
      child.kill('SIGTERM');
    }
    await exited;
  });

  test('sends PGPASSWORD only to the --connection it was given (documented)', async () => {
    const result = await runCli(['test-connection', '--connection', url(md5Listener.port)], { env: { HOME: home, PGPASSWORD: ENV_SECRET } });
    expect(result.code).not.toBe(0);
    expect(md5Listener.passwords()).toEqual([md5Answer(ENV_SECRET, 'flow')]);
    expect(result.stdout + result.stderr).not.toContain(ENV_SECRET);
  });
});
