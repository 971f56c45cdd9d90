/**
 * A fresh database per test file on the suite's server (PG_TEST_URL), so files never see each
 * other's tables. Works the same against the embedded server and an existing one.
 */
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import type { ConnectionConfig } from '../../connection/index.js';

export function serverUrl(): string {
  const url = process.env.PG_TEST_URL;
  if (!url) throw new Error('PG_TEST_URL is not set: run the suite through jest (its global setup starts a server)');
  return url;
}

/** The suite server's address and admin login (e.g. for a pooler put in front of it). */
export function serverLogin(): { host: string; port: number; user: string; password: string } {
  const url = new URL(serverUrl());
  return { host: url.hostname, port: Number(url.port || 5432), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
}

/** The suite server's admin connection as a pg-actions ConnectionConfig. */
export function adminConfig(database?: string): ConnectionConfig {
  const url = new URL(serverUrl());
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: database ?? (url.pathname.slice(1) || 'postgres'),
    sslMode: (url.searchParams.get('sslmode') as ConnectionConfig['sslMode']) ?? 'prefer',
  };
}

export interface TestDatabase {
  name: string;
  config: ConnectionConfig;
  /** Runs SQL as the admin on this database (setup and assertions; not the code under test). */
  sql<T extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix = 'test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const config = adminConfig(name);
  const client = new pg.Client({ ...config, ssl: false, password: config.password });
  await client.connect();
  return {
    name,
    config,
    async sql(text, values) {
      return (await client.query(text, values)).rows;
    },
    async drop() {
      await client.end();
      const dropper = new pg.Client({ connectionString: serverUrl() });
      await dropper.connect();
      // (DROP DATABASE … WITH (FORCE) needs PostgreSQL 13; this works on every version.)
      await dropper.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
      const [database] = (await dropper.query<{ oid: string }>('SELECT oid::text AS oid FROM pg_database WHERE datname = $1', [name])).rows;
      await dropper.query(`DROP DATABASE IF EXISTS "${name}"`).catch(() => {});
      // row-changes' capture role of this database (one per database, REVIEW11 R169): roles outlive databases.
      if (database) await dropper.query(`DROP ROLE IF EXISTS pgactions_capture_${database.oid}`).catch(() => {});
      await dropper.end();
    },
  };
}
