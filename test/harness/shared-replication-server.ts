/**
 * A replication server started once for many runs of one test file: mutation testing runs the
 * file once per mutant, and a server start per run (20-60 s on a loaded machine) would cost more
 * than the tests. `npx tsx test/harness/shared-replication-server.ts <file> <setting>=<value> …`
 * starts one with wal_level=logical and the given startup settings and writes its URL to <file>;
 * a test file run with that URL in its own variable (cdc-ack.test: CDC_ACK_SERVER_URL) uses it
 * instead of starting a server, after checking that it has the settings the file needs. Without
 * the variable (npm test, CI) the file starts its own server as before.
 */
import { writeFileSync } from 'node:fs';
import { adminSessions, startReplicationServer, type ReplicationServer } from './replication-server.js';
import { watchSecret } from './secrets.js';

/** The server at `url`, which the caller does not own: stop() closes only the admin sessions. */
export async function replicationServerAt(url: string, settings: Record<string, string>): Promise<ReplicationServer> {
  const parsed = new URL(url);
  const host = parsed.hostname;
  const port = Number(parsed.port);
  const admin = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  watchSecret(password);
  const config: ReplicationServer['config'] = (options = {}) => ({
    host, port, database: options.database ?? 'postgres', user: options.user ?? admin,
    password: options.user ? options.password : password, sslMode: 'disable',
  });
  const { sql, close: stop } = adminSessions(config);
  try {
    for (const [name, value] of Object.entries({ wal_level: 'logical', ...settings })) {
      const [row] = await sql('SELECT current_setting($1) AS actual', [name]);
      if (row!.actual !== value) throw new Error(`the shared replication server at ${host}:${port} has ${name} = ${row!.actual}, the tests need ${value}`);
    }
    const [row] = await sql('SHOW server_version_num');
    return { server: undefined as never, versionNum: Number(row!.server_version_num), config, sql, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The server for a test file whose databases are named `<prefix>_…`: the one at CDC_ACK_SERVER_URL when set (what earlier
 * runs left on it under that prefix, slots and databases, is dropped first), else a server of its own with `settings`.
 */
export async function sharedOrOwnReplicationServer(settings: Record<string, string>, prefix: string): Promise<ReplicationServer> {
  const url = process.env.CDC_ACK_SERVER_URL;
  if (!url) return startReplicationServer(settings);
  const server = await replicationServerAt(url, settings);
  const slots = `FROM pg_replication_slots WHERE database LIKE '${prefix}\\_%'`;
  for (let attempt = 0; (await server.sql(`SELECT 1 ${slots}`)).length > 0; attempt++) {
    if (attempt === 600) throw new Error(`the slots of earlier ${prefix} runs are still active`);
    await server.sql(`SELECT pg_terminate_backend(active_pid) ${slots} AND active_pid IS NOT NULL`);
    await server.sql(`SELECT pg_drop_replication_slot(slot_name) ${slots} AND NOT active`).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const { datname } of await server.sql(`SELECT datname FROM pg_database WHERE datname LIKE '${prefix}\\_%'`)) await server.sql(`DROP DATABASE ${datname} WITH (FORCE)`);
  return server;
}

// Run as a script: start the server, write its URL, keep it until SIGTERM / SIGINT.
if (process.argv[1]?.endsWith('shared-replication-server.ts')) {
  const [file, ...pairs] = process.argv.slice(2);
  const settings = Object.fromEntries(pairs.map((pair) => pair.split('=') as [string, string]));
  const server = await startReplicationServer({ max_replication_slots: '100', max_wal_senders: '40', ...settings });
  writeFileSync(file!, server.server.url, { mode: 0o600 });
  const stop = async () => {
    await server.stop();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  setInterval(() => {}, 1 << 30);
}
