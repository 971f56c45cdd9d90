/**
 * A server of its own for the change-capture tests: wal_level and the replication settings a
 * test needs are startup settings, and slots, WAL retention and terminated walsenders must not
 * disturb the suite's shared server. Started per test file (about two seconds).
 */
import pg from 'pg';
import type { ConnectionConfig } from '../../connection/index.js';
import { startServer, type TestServer } from './servers.js';

export interface ReplicationServer {
  server: TestServer;
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
  if (Number((await server.sql('SHOW server_version_num'))[0]!.server_version_num) < 130000) return;
  await server.sql("ALTER SYSTEM SET logical_decoding_work_mem = '64kB'");
  await server.sql('SELECT pg_reload_conf()');
  for (let i = 0; i < 100 && (await server.sql('SHOW logical_decoding_work_mem'))[0]!.logical_decoding_work_mem !== '64kB'; i++) await new Promise((r) => setTimeout(r, 50));
}

/** `settings` are startup flags (they win over ALTER SYSTEM); `logical: false` keeps the server's default wal_level (replica). */
export async function startReplicationServer(settings: Record<string, string> = {}, logical = true): Promise<ReplicationServer> {
  const server = await startServer({ settings: logical ? { wal_level: 'logical', ...settings } : settings });
  const clients = new Map<string, pg.Client>();
  const config: ReplicationServer['config'] = (options = {}) => ({
    host: server.host,
    port: server.port,
    database: options.database ?? 'postgres',
    user: options.user ?? server.user,
    password: options.user ? options.password : server.password,
    sslMode: 'disable',
  });
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
    server,
    config,
    async sql(text, values, database = 'postgres') {
      const client = await clientFor(database);
      return (await client.query(text, values)).rows;
    },
    async stop() {
      await Promise.all([...clients.values()].map((client) => client.end().catch(() => {})));
      await server.dispose();
    },
  };
}
