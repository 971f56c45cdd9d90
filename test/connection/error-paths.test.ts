/**
 * The mapping paths test/connection/errors.test.ts does not reach, each from a real condition:
 * SQLSTATEs without a code of their own (42804, 42P18), the class-08 fallback, a connection reset
 * (at connect and mid-statement), a role's CONNECTION LIMIT, a role that may not log in, a
 * read-only database. (A server shutting down, 57P03, and a server process crash, 57P02, are in
 * server-going-away.test.ts: they need a server of their own.)
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import pg from 'pg';
import { closeAll, execute, type ConnectionConfig, type ErrorCode, type PgActionsError } from '../../connection/index.js';
import { runningStatement } from '../harness/activity.js';
import { createTestDatabase, serverUrl } from '../harness/db.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { eventually, failure, testConnectionChecked } from '../harness/failures.js';
import { startWireProxy } from '../harness/proxy.js';
import { watchSecret } from '../harness/secrets.js';

const db = useTestDatabase('error_paths');
const suffix = randomBytes(4).toString('hex');
const limitedRole = `pga_limit_${suffix}`;
const noLoginRole = `pga_nologin_${suffix}`;
const rolePassword = `role-${randomBytes(6).toString('hex')}`;
watchSecret(rolePassword);

beforeAll(async () => {
  await db.sql('CREATE TABLE items (id int PRIMARY KEY, qty int)');
  await db.sql(`CREATE ROLE ${limitedRole} LOGIN PASSWORD '${rolePassword}' CONNECTION LIMIT 1`);
  await db.sql(`CREATE ROLE ${noLoginRole} NOLOGIN PASSWORD '${rolePassword}'`);
}, 60_000);

afterAll(async () => {
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  await admin.query(`DROP ROLE IF EXISTS ${limitedRole}`);
  await admin.query(`DROP ROLE IF EXISTS ${noLoginRole}`);
  await admin.end();
}, 60_000);

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<PgActionsError> {
  const error = await failure(promise);
  expect({ code: error.code, message: error.message }).toEqual({ code, message: expect.any(String) });
  expect(error.fixes.length).toBeGreaterThan(0);
  return error;
}

describe('SQLSTATEs mapped without a code of their own', () => {
  test('42804 (datatype mismatch) → INVALID_VALUE', async () => {
    const error = await expectCode(execute(db.config, { text: 'INSERT INTO items (id, qty) VALUES (1, $1::text)', values: ['7'] }), 'INVALID_VALUE');
    expect(error.sqlstate).toBe('42804');
    expect(error.message).toMatch(/column "qty" is of type integer but expression is of type text/i);
  });

  test('42P18 (the type of a parameter cannot be determined) → INVALID_VALUE', async () => {
    const error = await expectCode(execute(db.config, { text: 'SELECT $1 IS NULL AS empty', values: [null] }), 'INVALID_VALUE');
    expect(error.sqlstate).toBe('42P18');
    expect(error.message).toMatch(/could not determine data type of parameter \$1/i);
  });

  test('class 08 without a code of its own (08001 from dblink) → CONNECTION_LOST, and the session is not reused', async () => {
    await db.sql('CREATE EXTENSION IF NOT EXISTS dblink');
    const config = { ...db.config, applicationName: 'error-paths-08' };
    const before = await execute(config, { text: 'SELECT pg_backend_pid() AS pid' });
    const error = await expectCode(execute(config, { text: `SELECT dblink_connect('host=127.0.0.1 port=1 connect_timeout=2')` }), 'CONNECTION_LOST');
    expect(error.sqlstate).toBe('08001');
    expect(error.message).toMatch(/The server said: Could not establish connection/i);
    // A class-08 error is never treated as an ordinary ERROR on a healthy session: that connection is closed.
    const after = await execute(config, { text: 'SELECT pg_backend_pid() AS pid' });
    expect(after.rows[0]!.pid).not.toBe(before.rows[0]!.pid);
  });
});

describe('sockets', () => {
  test('a peer that resets the connection while connecting (ECONNRESET) → CONNECTION_LOST', async () => {
    const resets: Socket[] = [];
    const server = createServer((socket) => {
      resets.push(socket);
      socket.once('data', () => socket.resetAndDestroy()); // read the startup packet, answer with RST
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const config: ConnectionConfig = { ...db.config, host: '127.0.0.1', port, sslMode: 'disable' };
      const error = await expectCode(execute(config, { text: 'SELECT 1' }), 'CONNECTION_LOST');
      expect((error.cause as { code?: string }).code).toBe('ECONNRESET');
      expect(error.message).toBe(`The connection to 127.0.0.1:${port} was lost.`);
      const result = await testConnectionChecked(config);
      expect(result.ok ? 'ok' : result.error.code).toBe('CONNECTION_LOST');
      expect(resets.length).toBeGreaterThanOrEqual(2);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('the network resets the connection mid-statement → CONNECTION_LOST; the next step works', async () => {
    const proxy = await startWireProxy(db.config as { host: string; port: number });
    const config: ConnectionConfig = { ...db.config, host: '127.0.0.1', port: proxy.port, sslMode: 'disable', applicationName: 'error-paths-reset' };
    try {
      const pending = expectCode(execute(config, { text: `SELECT pg_sleep(10), 'reset-marker'` }), 'CONNECTION_LOST');
      await runningStatement(db.sql, db.name, 'error-paths-reset', 'reset-marker');
      proxy.reset();
      const error = await pending;
      expect(error.sqlstate).toBeUndefined();
      expect((await execute(config, { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
    } finally {
      await closeAll();
      await proxy.close();
      await db.sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'error-paths-reset'`, [db.name]);
    }
  });
});

describe('roles and databases that refuse', () => {
  test("a role's CONNECTION LIMIT reached → TOO_MANY_CONNECTIONS (53300); freed → the next step works", async () => {
    const config: ConnectionConfig = { ...db.config, user: limitedRole, password: rolePassword };
    const holder = new pg.Client({ ...config, ssl: false });
    await holder.connect();
    try {
      const error = await expectCode(execute(config, { text: 'SELECT 1' }), 'TOO_MANY_CONNECTIONS');
      expect(error.sqlstate).toBe('53300');
      expect(error.message).toMatch(new RegExp(`too many connections for role "${limitedRole}"`, 'i'));
    } finally {
      await holder.end();
    }
    // The holder's backend leaves a moment after its socket closes.
    let last: unknown;
    expect(await eventually(async () => {
      try {
        last = await execute(config, { text: 'SELECT current_user AS me' });
        return true;
      } catch (error) {
        last = error;
        return false;
      }
    }, 5000)).toBe(true);
    expect((last as { rows: unknown[] }).rows).toEqual([{ me: limitedRole }]);
    await closeAll(); // frees the role's one slot
  });

  test('a role that may not log in (NOLOGIN) → AUTHENTICATION_FAILED (28000)', async () => {
    const error = await expectCode(execute({ ...db.config, user: noLoginRole, password: rolePassword }, { text: 'SELECT 1' }), 'AUTHENTICATION_FAILED');
    expect(error.sqlstate).toBe('28000');
    expect(error.message).toMatch(/not permitted to log in/);
  });

  test('a read-only database (default_transaction_read_only, as on a hot standby) → READ_ONLY_VIOLATION, nothing written', async () => {
    const readOnly = await createTestDatabase('read_only');
    try {
      await readOnly.sql('CREATE TABLE items (id int PRIMARY KEY)');
      await readOnly.sql(`ALTER DATABASE ${readOnly.name} SET default_transaction_read_only = on`);
      const error = await expectCode(execute(readOnly.config, { text: 'INSERT INTO items VALUES ($1)', values: [1] }), 'READ_ONLY_VIOLATION');
      expect(error.sqlstate).toBe('25006');
      expect(error.message).toMatch(/cannot execute INSERT in a read-only transaction/i);
      expect(await readOnly.sql('SELECT count(*)::int AS n FROM items')).toEqual([{ n: 0 }]);
      // reads still work there
      expect((await execute(readOnly.config, { text: 'SELECT count(*)::int AS n FROM items' })).rows).toEqual([{ n: 0 }]);
    } finally {
      await closeAll();
      await readOnly.drop();
    }
  });
});
