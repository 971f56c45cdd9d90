/**
 * A server of its own for the change-capture tests: wal_level and the replication settings a
 * test needs are startup settings, and slots, WAL retention and terminated walsenders must not
 * disturb the suite's shared server. Started per test file (about two seconds).
 */
import pg from 'pg';
import { closeAll, type ConnectionConfig } from '../../connection/index.js';
import { cleanUpInOrder } from './clean-up.js';
import { startServer, type TestServer } from './servers.js';

export interface ReplicationServer {
  server: TestServer;
  /** server_version_num (e.g. 160004), read at start: for tests whose behaviour differs by version. */
  readonly versionNum: number;
  /** A pg-actions connection to `database` as `user` (default: the admin). */
  config(options?: { database?: string; user?: string; password?: string }): ConnectionConfig;
  /** Runs SQL as the admin (set-up and assertions, not the code under test). */
  sql<T extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[], database?: string): Promise<T[]>;
  stop(): Promise<void>;
}

/**
 * logical_decoding_work_mem = 64kB when the server has it (13+; PostgreSQL 12 keeps its whole
 * transactions in memory up to a fixed limit), so large transactions stream (14+) or spill.
 */
export async function smallDecodingMemory(server: ReplicationServer): Promise<void> {
  if (server.versionNum < 130000) return;
  await server.sql("ALTER SYSTEM SET logical_decoding_work_mem = '64kB'");
  await server.sql('SELECT pg_reload_conf()');
  for (let i = 0; i < 100 && (await server.sql('SHOW logical_decoding_work_mem'))[0]!.logical_decoding_work_mem !== '64kB'; i++) await new Promise((r) => setTimeout(r, 50));
}

export interface UseReplicationServerOptions {
  /** Startup flags (wal_sender_timeout, max_wal_size, …): they win over ALTER SYSTEM. */
  settings?: Record<string, string>;
  /** false keeps the server's default wal_level (replica). */
  logical?: boolean;
  /** Clean-up that must come first, before the pools are closed and the server stopped (subscriptions, sessions, child processes). */
  beforeStop?: () => Promise<void> | void;
}

/**
 * A replication server of this file (or describe) as jest hooks (call it at the top, like
 * useTestDatabase): beforeAll starts it (180 s), afterAll (30 s) runs `beforeStop`, closes the
 * step's pools (closeAll) and stops it, each step even when the one before failed, and also when
 * beforeAll failed or timed out (a server still starting is awaited and stopped). The file's own
 * beforeAll declared after the call may fill it; its afterAll runs once the server is gone.
 * startServer registers the server's password with the secrets check (harness/secrets.ts).
 */
export function useReplicationServer(options: UseReplicationServerOptions = {}): ReplicationServer {
  let starting: Promise<ReplicationServer> | undefined;
  let current: ReplicationServer | undefined;
  const started = (): ReplicationServer => {
    if (!current) throw new Error('useReplicationServer: the server runs only from its beforeAll on');
    return current;
  };
  // initdb and the first start took 50 to 68 s at load 35-40 (2026-11-30, 2 cores): 60 s failed whole files.
  beforeAll(async () => {
    starting = startReplicationServer(options.settings, options.logical);
    current = await starting;
  }, 180_000);
  afterAll(() => cleanUpInOrder(() => options.beforeStop?.(), closeAll, async () => (await starting?.catch(() => undefined))?.stop()), 30_000);
  return {
    get server() {
      return started().server;
    },
    get versionNum() {
      return started().versionNum;
    },
    config: (config) => started().config(config),
    sql: ((text, values, database) => started().sql(text, values, database)) as ReplicationServer['sql'],
    stop: () => started().stop(),
  };
}

/** `settings` are startup flags (they win over ALTER SYSTEM); `logical: false` keeps the server's default wal_level (replica). */
export async function startReplicationServer(settings: Record<string, string> = {}, logical = true): Promise<ReplicationServer> {
  const server = await startServer({ settings: logical ? { wal_level: 'logical', ...settings } : settings });
  const config: ReplicationServer['config'] = (options = {}) => ({
    host: server.host,
    port: server.port,
    database: options.database ?? 'postgres',
    user: options.user ?? server.user,
    password: options.user ? options.password : server.password,
    sslMode: 'disable',
  });
  const admin = adminSessions(config);
  const started: Omit<ReplicationServer, 'versionNum'> = {
    server,
    config,
    sql: admin.sql,
    async stop() {
      await admin.close();
      await server.dispose();
    },
  };
  try {
    const [row] = await started.sql('SHOW server_version_num');
    return { ...started, versionNum: Number(row!.server_version_num) };
  } catch (error) {
    await started.stop();
    throw error;
  }
}

/** The admin's sessions, one per database, opened on first use: `sql` for set-up and assertions. */
export function adminSessions(config: ReplicationServer['config']): { sql: ReplicationServer['sql']; close(): Promise<void> } {
  const clients = new Map<string, pg.Client>();
  async function clientFor(database: string): Promise<pg.Client> {
    let client = clients.get(database);
    if (!client) {
      client = new pg.Client({ ...config({ database }), ssl: false });
      client.on('error', () => {});
      client.on('end', () => clients.get(database) === client && clients.delete(database));
      clients.set(database, client);
      await client.connect();
    }
    return client;
  }
  return {
    sql: async (text, values, database = 'postgres') => (await (await clientFor(database)).query(text, values)).rows,
    close: async () => void (await Promise.all([...clients.values()].map((client) => client.end().catch(() => {})))),
  };
}
