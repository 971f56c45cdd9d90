/**
 * A real PgBouncer (the Debian package's binary) in front of a test server, on a free loopback
 * port: the harness writes pgbouncer.ini and a userlist (SCRAM between client and PgBouncer),
 * starts it in the foreground and stops it on dispose(). PgBouncer refuses to run as root, so
 * as root it runs as the `postgres` user, which owns its files.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { closeAll, type ConnectionConfig } from '../../connection/index.js';
import { describeNeeding } from './not-run.js';
import { freePort } from './servers.js';

export interface PgBouncerOptions {
  /** The PostgreSQL server behind it. */
  server: { host: string; port: number; user: string; password: string };
  mode: 'transaction' | 'session';
  /** Server connections per database/user pair (default_pool_size). */
  poolSize?: number;
  /** TLS between client and PgBouncer (client_tls_sslmode = allow). */
  tls?: { certPem: string; keyPem: string };
  /** Extra [pgbouncer] settings, e.g. { max_client_conn: '5', query_wait_timeout: '1' }. */
  settings?: Record<string, string>;
  /** Password PgBouncer uses to log in to the server (default: the server's; a wrong one fails server login). */
  serverPassword?: string;
  /** Serve only these database names (default: any, through a `*` entry); others get "no such database". */
  databases?: readonly string[];
}

export interface PgBouncer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Its process (bench/ reads its CPU time). */
  readonly pid: number | undefined;
  /** A connection through PgBouncer to `database` (the server's user and password). */
  config(database: string, extra?: Partial<ConnectionConfig>): ConnectionConfig;
  /** What PgBouncer wrote to its log (for failure messages). */
  log(): string;
  /** Stops PgBouncer and removes its files. */
  dispose(): Promise<void>;
}

const CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer', '/usr/local/sbin/pgbouncer'];

/** The pgbouncer binary (PG_TEST_PGBOUNCER names one; `none` acts as if it were absent), or undefined. */
export function pgbouncerBinary(): string | undefined {
  const chosen = process.env.PG_TEST_PGBOUNCER;
  if (chosen) return chosen === 'none' || !existsSync(chosen) ? undefined : chosen;
  const fromPath = (process.env.PATH ?? '').split(':').map((dir) => join(dir, 'pgbouncer'));
  return [...fromPath, ...CANDIDATES].find((path) => existsSync(path));
}

export const PGBOUNCER_MISSING =
  'PgBouncer tests did not run: the `pgbouncer` binary is not installed. Install it (Debian/Ubuntu: apt-get install pgbouncer; macOS: brew install pgbouncer) to run them; with CI set they fail instead.';

/** `describe` for PgBouncer tests: skipped with a loud line when pgbouncer is absent, failing when CI is set. */
export function describeWithPgBouncer(name: string, body: () => void): void {
  describeNeeding('pgbouncer', pgbouncerBinary() ? undefined : PGBOUNCER_MISSING, name, body);
}

function asServerUser(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}

function quoted(value: string): string {
  return `"${value.replace(/"/g, '""')}"`;
}

/**
 * A PgBouncer for a test file (or describe) as jest hooks: started in beforeAll; afterAll closes
 * the step's pools (closeAll), then stops it. Usable in tests from its beforeAll on.
 */
export function usePgBouncer(options: PgBouncerOptions): PgBouncer {
  let current: PgBouncer | undefined;
  const started = (): PgBouncer => {
    if (!current) throw new Error('usePgBouncer: PgBouncer runs only from its beforeAll on');
    return current;
  };
  beforeAll(async () => {
    current = await startPgBouncer(options);
  });
  afterAll(async () => {
    try {
      await closeAll();
    } finally {
      await current?.dispose();
    }
  });
  return {
    host: '127.0.0.1',
    get port() {
      return started().port;
    },
    get pid() {
      return started().pid;
    },
    config: (database, extra) => started().config(database, extra),
    log: () => started().log(),
    dispose: () => started().dispose(),
  };
}

export async function startPgBouncer(options: PgBouncerOptions): Promise<PgBouncer> {
  const binary = pgbouncerBinary();
  if (!binary) throw new Error(PGBOUNCER_MISSING);
  const owner = asServerUser();
  const dir = mkdtempSync(join(tmpdir(), 'pg-actions-pgbouncer-'));
  const port = await freePort();
  const { server } = options;
  const write = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    if (owner) chownSync(path, owner.uid, owner.gid);
    return path;
  };
  const settings: Record<string, string> = {
    listen_addr: '127.0.0.1',
    listen_port: String(port),
    unix_socket_dir: '',
    auth_type: 'scram-sha-256',
    auth_file: write('userlist.txt', `${quoted(server.user)} ${quoted(server.password)}\n`),
    admin_users: server.user,
    pool_mode: options.mode,
    default_pool_size: String(options.poolSize ?? 3),
    max_client_conn: '200',
    logfile: join(dir, 'pgbouncer.log'),
    pidfile: join(dir, 'pgbouncer.pid'),
    server_login_retry: '1',
    ...(options.tls
      ? {
          client_tls_sslmode: 'allow',
          client_tls_cert_file: write('client-tls.crt', options.tls.certPem),
          client_tls_key_file: write('client-tls.key', options.tls.keyPem),
        }
      : {}),
    ...options.settings,
  };
  const serverPassword = options.serverPassword ?? server.password;
  const ini = [
    '[databases]',
    ...(options.databases ?? ['*']).map((name) => `${name} = host=${server.host} port=${server.port} user=${server.user} password=${serverPassword}`),
    '[pgbouncer]',
    ...Object.entries(settings).map(([key, value]) => `${key} = ${value}`),
  ].join('\n');
  const iniPath = write('pgbouncer.ini', ini + '\n');
  writeFileSync(settings.logfile!, '');
  if (owner) {
    chownSync(settings.logfile!, owner.uid, owner.gid);
    chownSync(dir, owner.uid, owner.gid);
    chmodSync(dir, 0o700);
  }
  const child: ChildProcess = spawn(binary, [iniPath], { stdio: ['ignore', 'ignore', 'pipe'], ...(owner ?? {}) });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const log = () => `${existsSync(settings.logfile!) ? readFileSync(settings.logfile!, 'utf8') : ''}${stderr}`;
  try {
    await waitForPort(port, child);
  } catch (error) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PgBouncer did not start: ${(error as Error).message}\n${log()}`);
  }
  return {
    host: '127.0.0.1',
    port,
    pid: child.pid,
    config: (database, extra) => ({
      host: '127.0.0.1',
      port,
      database,
      user: server.user,
      password: server.password,
      sslMode: 'disable',
      ...extra,
    }),
    log,
    async dispose() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT'); // immediate shutdown
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function waitForPort(port: number, child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited with code ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
