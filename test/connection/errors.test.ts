/**
 * Every error code pg-actions can produce, each provoked by a real condition: a real server
 * (the suite's, or a dedicated one started here) or a real socket. Nothing is mocked and no
 * error is constructed by hand.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import {
  closeAll,
  ERROR_CATALOGUE,
  ERROR_CODES,
  execute,
  type ConnectionConfig,
  type ErrorCode,
  type PgActionsError,
} from '../../connection/index.js';
import { createTestDatabase, serverLogin, type TestDatabase } from '../harness/db.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { describeWithPgBouncer, pgbouncerBinary, startPgBouncer, type PgBouncer } from '../harness/pgbouncer.js';
import { runningStatement, stoppedRunning } from '../harness/activity.js';
import { eventually, failure as rejection, refusedPort, startSilentServer, testConnectionChecked } from '../harness/failures.js';
import { createTestPki } from '../harness/certs.js';
import { watchSecret } from '../harness/secrets.js';
import { disposeStartedServers, startClientCertServer, startServer, type TestServer } from '../harness/servers.js';

/** Codes this file produced from real conditions; the last test checks it against ERROR_CODES. */
const produced = new Set<ErrorCode>();

/** Produced by a real PgBouncer only: without one installed, those tests say loudly that they did not run. */
const POOLER_CODES: readonly ErrorCode[] = ['POOLER_STARTUP_PARAMETER', 'POOLER_TOO_MANY_CLIENTS', 'POOLER_SERVER_LOGIN_FAILED', 'POOLER_QUERY_WAIT_TIMEOUT', 'POOLER_SHUTTING_DOWN'];


/** Produced by the templating layer, not by the connection module. */
// (trigger codes are produced by real conditions in test/triggers/)
const NOT_A_CONNECTION_CODE: readonly ErrorCode[] = [
  'TEMPLATE_ERROR', 'TRIGGER_STATE_INVALID', 'TRIGGER_NOT_ACTIVE',
  // produced by real slots and servers in test/triggers/table-changes-cdc.test.ts
  'REPLICATION_NOT_READY', 'REPLICATION_SLOT_MISSING', 'REPLICATION_SLOT_LOST', 'REPLICATION_SLOT_MISMATCH', 'REPLICATION_SLOT_IN_USE',
  // produced by a declared pooler and a real PgBouncer in test/triggers/cdc-test-connection.test.ts
  'REPLICATION_THROUGH_POOLER',
  // produced by a real TRUNCATE during a handover sync in test/triggers/sync-handover.test.ts
  'SYNC_HANDOVER_BROKEN',
  // produced by a reader made to fail (no valid value makes pg-actions' own fail) in test/connection/parser-fault.test.ts
  'RESULT_UNREADABLE',
  // produced by a real flood of notifications to a failing listen handler in test/triggers/listen.test.ts
  'LISTEN_BACKLOG_DROPPED',
  // produced by a real FOR ALL TABLES publication and a role without CREATE in test/triggers/cdc-heartbeat-safety.test.ts
  'HEARTBEAT_TABLE_UNAVAILABLE',
  // produced by a real FOR ALL TABLES / FOR TABLES IN SCHEMA publication in test/triggers/outbox-publication-safety.test.ts
  'OUTBOX_WOULD_BE_PUBLISHED',
  // produced by a real lock, deadlock, serialization failure and temp-file limit in test/connection/edge-cases.test.ts
  'LOCK_NOT_AVAILABLE', 'DEADLOCK_DETECTED', 'SERIALIZATION_FAILURE', 'TEMP_FILE_LIMIT_EXCEEDED',
  // produced by a real sshd (refused, silent, wrong password, wrong host key, forwarding off) in test/connection/ssh-tunnel.test.ts
  'SSH_HOST_UNREACHABLE', 'SSH_AUTH_FAILED', 'SSH_HOST_KEY_MISMATCH', 'SSH_FORWARDING_REFUSED',
  // produced by a real server waiting for a synchronous standby in test/connection/sync-standby-commit.test.ts
  'COMMIT_UNCONFIRMED',
  // produced by a real transaction whose decoding passes statementTimeoutMs in test/triggers/cdc-poll-wide.test.ts
  'CDC_POLL_DECODE_TIMEOUT',
  // produced by a real slot read with a state edited past its transaction's end in test/triggers/cdc-poll-wide.test.ts
  'CDC_POLL_STALLED',
  // produced by a real UPDATE's pgoutput messages without the old key tuple (as servers before the 2022 fix send them) in test/triggers/cdc-toast-key.test.ts
  'CDC_KEY_NOT_SENT',
];

/** Awaits the failure and checks what every error must have: the code, catalogue title, a message, fixes. */
async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<PgActionsError> {
  const error = await rejection(promise);
  expect({ code: error.code, message: error.message }).toEqual({ code, message: expect.any(String) });
  expect(error.title).toBe(ERROR_CATALOGUE[code].title);
  expect(error.message.length).toBeGreaterThan(10);
  expect(error.fixes.length).toBeGreaterThan(0);
  for (const fix of error.fixes) expect(fix).toMatch(/\S/);
  produced.add(error.code);
  return error;
}

/** For connection failures: testConnection reports the same code, without throwing. */
async function expectTestConnectionCode(config: unknown, code: ErrorCode): Promise<PgActionsError> {
  const result = await testConnectionChecked(config);
  if (result.ok) throw new Error(`expected testConnection to fail with ${code}`);
  expect(result.error.code).toBe(code);
  expect(result.error.fixes.length).toBeGreaterThan(0);
  return result.error;
}

let db: TestDatabase;
let scram: TestServer; // auth: scram-sha-256, for AUTHENTICATION_FAILED
let stoppable: TestServer; // stopped mid-query and started again
let certOnly: TestServer; // TCP only over TLS, and only with a client certificate (pg_hba.conf hostssl … cert)
let limited: TestServer; // max_connections = 5, nothing reserved
const suffix = randomBytes(4).toString('hex');
const limitedRole = `pga_errors_${suffix}`;
const limitedPassword = `limited-${randomBytes(6).toString('hex')}`;
watchSecret(limitedPassword);

function serverConfig(server: TestServer, extra: Partial<ConnectionConfig> = {}): ConnectionConfig {
  return { host: server.host, port: server.port, user: server.user, password: server.password, database: 'postgres', ...extra };
}

beforeAll(async () => {
  [db, scram, stoppable, limited, certOnly] = await Promise.all([
    createTestDatabase('errors'),
    startServer({ auth: 'scram-sha-256' }),
    startServer(),
    startServer({ settings: { max_connections: '5', superuser_reserved_connections: '0' } }), // reserved_connections (16+) defaults to 0
    startClientCertServer(),
  ]);
  await db.sql(`CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE)`);
  await db.sql(`CREATE TABLE orders (id serial PRIMARY KEY, user_id int REFERENCES users (id), qty int CONSTRAINT qty_positive CHECK (qty > 0))`);
  await db.sql(`CREATE TABLE payroll (id int PRIMARY KEY, salary int)`);
  await db.sql(`INSERT INTO users (name, email) VALUES ('Ada', 'ada@example.com'), ('Grace', 'grace@example.com')`);
  await db.sql(`CREATE ROLE ${limitedRole} LOGIN PASSWORD '${limitedPassword}'`);
  await db.sql(`REVOKE ALL ON payroll FROM PUBLIC`);
}, 60_000);

afterAll(async () => {
  // Each step runs even when beforeAll failed half-way, so no server folder is left in /tmp.
  await closeAll();
  await db?.drop();
  const admin = new pg.Client({ connectionString: process.env.PG_TEST_URL });
  await admin.connect();
  await admin.query(`DROP ROLE IF EXISTS ${limitedRole}`);
  await admin.end();
  await disposeStartedServers();
}, 60_000);

/** db.config under its own application_name, so the step's backend can be found in pg_stat_activity. */
const tagged = (applicationName: string): ConnectionConfig => ({ ...db.config, applicationName });

describe('TLS (the full matrix of modes is in test/ssl.test.ts)', () => {
  const pki = createTestPki();
  const tlsConfig = (overrides: Partial<ConnectionConfig>): ConnectionConfig => ({
    host: certOnly.host, port: certOnly.port, database: 'postgres', user: certOnly.user, connectTimeoutMs: 5000,
    sslMode: 'verify-full', sslCa: pki.caPem, sslCert: pki.clientCertPem, sslKey: pki.clientKeyPem, ...overrides,
  });

  test('SSL_REQUIRED: sslMode disable against a server that takes TCP only over TLS', async () => {
    const { sslCa: _ca, sslCert: _cert, sslKey: _key, ...plain } = tlsConfig({ sslMode: 'disable' });
    await expectCode(execute(plain, { text: 'SELECT 1' }), 'SSL_REQUIRED');
  });

  test('SSL_CERTIFICATE_INVALID: the server certificate is not signed by the CA given', async () => {
    await expectCode(execute(tlsConfig({ sslCa: pki.otherCaPem }), { text: 'SELECT 1' }), 'SSL_CERTIFICATE_INVALID');
  });

  test('SSL_CLIENT_CERTIFICATE_REJECTED: a client certificate from a CA the server does not trust', async () => {
    await expectCode(execute(tlsConfig({ sslCert: pki.untrustedClientCertPem, sslKey: pki.untrustedClientKeyPem }), { text: 'SELECT 1' }), 'SSL_CLIENT_CERTIFICATE_REJECTED');
  });

  test('and the right certificate logs in', async () => {
    expect((await execute(tlsConfig({}), { text: 'SELECT 1 AS ok' })).rows).toEqual([{ ok: 1 }]);
  });
});

describe('reaching the server', () => {
  test('CONNECTION_REFUSED: a loopback port nobody listens on', async () => {
    const port = await refusedPort();
    const config = { ...db.config, host: '127.0.0.1', port };
    const error = await expectCode(execute(config, { text: 'SELECT 1' }), 'CONNECTION_REFUSED');
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.sqlstate).toBeUndefined();
    await expectTestConnectionCode(config, 'CONNECTION_REFUSED');
  });

  test('HOST_NOT_FOUND: a name in the reserved .invalid domain', async () => {
    const config = { ...db.config, host: 'no-such-host.invalid' };
    const error = await expectCode(execute(config, { text: 'SELECT 1' }), 'HOST_NOT_FOUND');
    expect(error.message).toContain('no-such-host.invalid');
    await expectTestConnectionCode(config, 'HOST_NOT_FOUND');
  });

  test('CONNECTION_TIMEOUT: a socket that accepts and never answers', async () => {
    const silent = await startSilentServer();
    try {
      const config = { ...db.config, host: '127.0.0.1', port: silent.port, connectTimeoutMs: 300 };
      const started = Date.now();
      const error = await expectCode(execute(config, { text: 'SELECT 1' }), 'CONNECTION_TIMEOUT');
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(250);
      expect(elapsed).toBeLessThan(2000);
      expect(silent.accepted).toBeGreaterThan(0); // it really connected, then waited
      expect(error.message).toContain('300 ms');
      await expectTestConnectionCode(config, 'CONNECTION_TIMEOUT');
    } finally {
      await silent.close();
    }
  });

  test('AUTHENTICATION_FAILED: wrong password on a scram-sha-256 server', async () => {
    const config = serverConfig(scram, { password: 'not-the-password' });
    const error = await expectCode(execute(config, { text: 'SELECT 1' }), 'AUTHENTICATION_FAILED');
    expect(error.sqlstate).toBe('28P01');
    expect(error.message).toMatch(/password authentication failed for user "postgres"/i);
    await expectTestConnectionCode(config, 'AUTHENTICATION_FAILED');
    // and the right password does get in: the failure was the password, nothing else
    expect((await execute(serverConfig(scram), { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
  });

  test('DATABASE_NOT_FOUND: a database the server does not have', async () => {
    const config = { ...db.config, database: `no_such_db_${suffix}` };
    const error = await expectCode(execute(config, { text: 'SELECT 1' }), 'DATABASE_NOT_FOUND');
    expect(error.sqlstate).toBe('3D000');
    expect(error.message).toContain(`"no_such_db_${suffix}"`);
    await expectTestConnectionCode(config, 'DATABASE_NOT_FOUND');
  });

  test('SSL_NOT_SUPPORTED: sslMode require against a server without SSL', async () => {
    const config = { ...db.config, sslMode: 'require' as const };
    const error = await expectCode(execute(config, { text: 'SELECT 1' }), 'SSL_NOT_SUPPORTED');
    expect(error.message).toContain(`${db.config.host}:${db.config.port}`);
    await expectTestConnectionCode(config, 'SSL_NOT_SUPPORTED');
  });

  test('TOO_MANY_CONNECTIONS: every slot taken; freeing one lets the next step in', async () => {
    const config = serverConfig(limited);
    const holders: pg.Client[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const client = new pg.Client({ ...config, ssl: false });
        client.on('error', () => {});
        await client.connect();
        holders.push(client);
      }
      const error = await expectCode(execute(config, { text: 'SELECT 1' }), 'TOO_MANY_CONNECTIONS');
      expect(error.sqlstate).toBe('53300');
      expect(error.message).toMatch(/too many clients/i);
      await expectTestConnectionCode(config, 'TOO_MANY_CONNECTIONS');

      await holders.pop()!.end();
      // The freed backend leaves the server's process array a moment after the socket closes.
      let last: unknown;
      const succeeded = await eventually(async () => {
        try {
          last = await execute(config, { text: 'SELECT 42 AS answer' });
          return true;
        } catch (error) {
          last = error;
          if ((error as PgActionsError).code !== 'TOO_MANY_CONNECTIONS') throw error;
          return false;
        }
      }, 3000);
      expect(succeeded).toBe(true);
      expect((last as { rows: unknown[] }).rows).toEqual([{ answer: 42 }]);
    } finally {
      await Promise.all(holders.map((client) => client.end().catch(() => {})));
    }
  });
});

describe('losing the connection', () => {
  test('CONNECTION_LOST: the backend is terminated mid-query; the next step works', async () => {
    const marker = `lost-marker-${suffix}`;
    const pending = expectCode(execute(tagged('errors-lost'), { text: `SELECT pg_sleep(10), '${marker}'` }), 'CONNECTION_LOST');
    const backend = await runningStatement(db.sql, db.name, 'errors-lost', marker);
    await db.sql('SELECT pg_terminate_backend($1)', [backend.pid]);
    const error = await pending;
    expect(error.sqlstate).toBe('57P01');
    expect(error.message).toMatch(/terminating connection due to administrator command/i);
    expect((await execute(db.config, { text: 'SELECT 3 AS three' })).rows).toEqual([{ three: 3 }]);
  });

  test('CONNECTION_LOST: the server is stopped mid-query; after a restart the next step works', async () => {
    const config = serverConfig(stoppable);
    expect((await execute(config, { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
    const started = Date.now();
    const failed = expectCode(execute({ ...config, applicationName: 'errors-stop' }, { text: `SELECT pg_sleep(10), 'stop-marker'` }), 'CONNECTION_LOST');
    const admin = new pg.Client({ connectionString: stoppable.url });
    await admin.connect();
    try {
      await runningStatement(async (text, values) => (await admin.query(text, values)).rows, 'postgres', 'errors-stop', 'stop-marker');
    } finally {
      await admin.end();
    }
    await stoppable.stop();
    const error = await failed;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error.message).toContain(`127.0.0.1:${stoppable.port}`);
    expect(error.sqlstate).toBe('57P01'); // fast shutdown terminates the backend
    await stoppable.start();
    expect((await execute(config, { text: 'SELECT 2 AS two' })).rows).toEqual([{ two: 2 }]);
  });
});

describe('what the server refuses', () => {
  test('PERMISSION_DENIED: a role without a grant on the table', async () => {
    const config = { ...db.config, user: limitedRole, password: limitedPassword };
    // the role connects fine; only the table is out of bounds
    expect((await execute(config, { text: 'SELECT current_user AS me' })).rows).toEqual([{ me: limitedRole }]);
    const error = await expectCode(execute(config, { text: 'SELECT salary FROM payroll WHERE id = $1', values: [1] }), 'PERMISSION_DENIED');
    expect(error.sqlstate).toBe('42501');
    expect(error.message).toMatch(/permission denied for table payroll/i);
    expect(error.fixes.join(' ')).toMatch(/GRANT SELECT/);
  });

  test('SYNTAX_ERROR: location gives the line and column in a multi-line query', async () => {
    const text = 'SELECT id,\n       name\n  FROM FROM users\n WHERE id = $1';
    const error = await expectCode(execute(db.config, { text, values: [1] }), 'SYNTAX_ERROR');
    expect(error.sqlstate).toBe('42601');
    expect(error.position).toBe(text.indexOf('FROM FROM') + 6);
    expect(error.location).toEqual({ line: 3, column: 8 });
    expect(error.message).toMatch(/syntax error at or near "FROM" \(line 3, column 8\)/i);
  });

  test('UNDEFINED_TABLE', async () => {
    const error = await expectCode(execute(db.config, { text: 'SELECT * FROM no_such_table' }), 'UNDEFINED_TABLE');
    expect(error.sqlstate).toBe('42P01');
    expect(error.message).toMatch(/relation "no_such_table" does not exist/i);
  });

  test('UNDEFINED_COLUMN', async () => {
    const error = await expectCode(execute(db.config, { text: 'SELECT no_such_column FROM users' }), 'UNDEFINED_COLUMN');
    expect(error.sqlstate).toBe('42703');
    expect(error.message).toMatch(/column "no_such_column" does not exist/i);
  });

  test('INVALID_VALUE: a literal that is not an integer', async () => {
    const error = await expectCode(execute(db.config, { text: `SELECT 'abc'::int` }), 'INVALID_VALUE');
    expect(error.sqlstate).toBe('22P02');
    expect(error.message).toMatch(/invalid input syntax for type integer: "abc"/i);
  });

  test('INVALID_VALUE: a parameter that is not an integer for an int column', async () => {
    const error = await expectCode(
      execute(db.config, { text: 'INSERT INTO orders (user_id, qty) VALUES ($1, $2)', values: [1, 'abc'] }),
      'INVALID_VALUE',
    );
    expect(error.sqlstate).toBe('22P02');
    expect(error.message).toMatch(/integer/);
    expect(await db.sql('SELECT count(*)::int AS n FROM orders')).toEqual([{ n: 0 }]);
  });

  test('UNIQUE_VIOLATION: the message names the key, the value and the constraint', async () => {
    const error = await expectCode(
      execute(db.config, { text: 'INSERT INTO users (name, email) VALUES ($1, $2)', values: ['Ada again', 'ada@example.com'] }),
      'UNIQUE_VIOLATION',
    );
    expect(error).toMatchObject({ sqlstate: '23505', constraint: 'users_email_key', table: 'users' });
    expect(error.detail).toBe('Key (email)=(ada@example.com) already exists.');
    expect(error.message).toBe('A row with email = ada@example.com already exists (constraint users_email_key).');
  });

  test('FOREIGN_KEY_VIOLATION', async () => {
    const error = await expectCode(
      execute(db.config, { text: 'INSERT INTO orders (user_id, qty) VALUES ($1, $2)', values: [999, 1] }),
      'FOREIGN_KEY_VIOLATION',
    );
    expect(error).toMatchObject({ sqlstate: '23503', constraint: 'orders_user_id_fkey', table: 'orders' });
    expect(error.detail).toMatch(/Key \(user_id\)=\(999\) is not present in table "users"/);
  });

  test('NOT_NULL_VIOLATION: the column is named', async () => {
    const error = await expectCode(
      execute(db.config, { text: 'INSERT INTO users (name, email) VALUES ($1, $2)', values: [null, 'nobody@example.com'] }),
      'NOT_NULL_VIOLATION',
    );
    expect(error).toMatchObject({ sqlstate: '23502', column: 'name', table: 'users' });
    expect(error.message).toMatch(/"name"/);
  });

  test('CHECK_VIOLATION: the constraint is named', async () => {
    const error = await expectCode(
      execute(db.config, { text: 'INSERT INTO orders (user_id, qty) VALUES ($1, $2)', values: [1, -5] }),
      'CHECK_VIOLATION',
    );
    expect(error).toMatchObject({ sqlstate: '23514', constraint: 'qty_positive', table: 'orders' });
    expect(error.message).toMatch(/qty_positive/);
  });

  test('READ_ONLY_VIOLATION: an INSERT in a readOnly step', async () => {
    const error = await expectCode(
      execute(db.config, { text: 'INSERT INTO users (name) VALUES ($1)', values: ['ghost'], readOnly: true }),
      'READ_ONLY_VIOLATION',
    );
    expect(error.sqlstate).toBe('25006');
    expect(await db.sql(`SELECT count(*)::int AS n FROM users WHERE name = 'ghost'`)).toEqual([{ n: 0 }]);
  });

  test('DATABASE_ERROR: an error without a more specific code keeps its SQLSTATE', async () => {
    const error = await expectCode(execute(db.config, { text: 'SELECT no_such_function()' }), 'DATABASE_ERROR');
    expect(error.sqlstate).toBe('42883');
    expect(error.message).toMatch(/function no_such_function\(\) does not exist/i);
    expect(error.hint).toMatch(/No function matches/);
  });
});

describe('limits of a step', () => {
  test('POOL_EXHAUSTED: every pooled connection busy until the step deadline', async () => {
    const busy = tagged('errors-pool');
    const holders = Array.from({ length: 10 }, () => execute(busy, { text: 'SELECT pg_sleep(1)' }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const error = await expectCode(execute(busy, { text: 'SELECT 1', timeoutMs: 300 }), 'POOL_EXHAUSTED');
    expect(error.message).toMatch(/All 10 connections of this pool stayed busy/);
    await Promise.all(holders);
  });

  test('QUERY_TIMEOUT: pg_sleep past timeoutMs, and the statement is gone from the server', async () => {
    const started = Date.now();
    const failed = expectCode(execute(tagged('errors-timeout'), { text: `SELECT pg_sleep(10), 'timeout-marker'`, timeoutMs: 300 }), 'QUERY_TIMEOUT');
    const backend = await runningStatement(db.sql, db.name, 'errors-timeout', 'timeout-marker');
    const error = await failed;
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error.message).toContain('300 ms');
    expect(await stoppedRunning(db.sql, db.name, backend.pid, 2000)).toEqual({ stopped: true, state: expect.any(String) });
  });

  test('a cancel from another session (pg_cancel_backend) is not QUERY_TIMEOUT: DATABASE_ERROR with SQLSTATE 57014', async () => {
    const marker = `foreign-cancel-${suffix}`;
    const started = Date.now();
    const failed = expectCode(execute(tagged('errors-foreign-cancel'), { text: `SELECT pg_sleep(30), '${marker}'`, timeoutMs: 20_000 }), 'DATABASE_ERROR');
    const backend = await runningStatement(db.sql, db.name, 'errors-foreign-cancel', marker);
    expect(await db.sql('SELECT pg_cancel_backend($1) AS sent', [backend.pid])).toEqual([{ sent: true }]);
    const error = await failed;
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(error.sqlstate).toBe('57014');
    expect(error.message).toMatch(/canceling statement due to user request/i);
    expect(error.message).not.toMatch(/did not finish within/);
    // An ordinary ERROR on a live session: the same backend serves the next step.
    expect((await execute(tagged('errors-foreign-cancel'), { text: 'SELECT pg_backend_pid() AS pid' })).rows).toEqual([{ pid: backend.pid }]);
  });

  test('RESULT_TOO_LARGE: past maxResultBytes', async () => {
    const error = await expectCode(
      execute(db.config, { text: `SELECT repeat('x', 500) AS filler FROM generate_series(1, 10000)`, maxResultBytes: 4096 }),
      'RESULT_TOO_LARGE',
    );
    expect(error.message).toMatch(/4 KB/);
    // the same rows under a cap that fits come back whole
    const ok = await execute(db.config, { text: `SELECT repeat('x', 500) AS filler FROM generate_series(1, 5)`, maxResultBytes: 4096 });
    expect(ok.rowCount).toBe(5);
  });
});

describe('bad input', () => {
  test('INVALID_INPUT: a configuration that does not match the schema names the field', async () => {
    const error = await expectCode(execute({ host: 'x', port: 'abc' }, { text: 'SELECT 1' }), 'INVALID_INPUT');
    expect(error.problems).toContain('connection.port must be a whole number');
    expect(error.message).toContain('connection.port');
    const result = await testConnectionChecked({ host: 'x', port: 'abc' });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.problems).toContain('connection.port must be a whole number');
  });

  test('INVALID_INPUT: fewer parameters than placeholders', async () => {
    const error = await expectCode(execute(db.config, { text: 'SELECT $1::int AS a, $2::int AS b', values: [1] }), 'INVALID_INPUT');
    expect(error.sqlstate).toBe('08P01');
    expect(error.message).toBe('The query uses placeholders up to $2, but 1 value(s) were sent (parameters plus any {{ }} in the query).');
    expect(error.problems).toEqual(['input.parameters must have one value for each placeholder $1…$n in input.query']);
    // and the next step on the same connection config works
    expect((await execute(db.config, { text: 'SELECT $1::int AS a', values: [1] })).rows).toEqual([{ a: 1 }]);
  });
});

describe('what an error exposes', () => {
  test('JSON and enumerable keys carry no query text or parameter values; error.query is readable', async () => {
    const text = `/* query-marker-${suffix} */ SELECT $1::text AS v, no_such_column FROM users`;
    const value = `parameter-marker-${suffix}`;
    const error = await expectCode(execute(db.config, { text, values: [value] }), 'UNDEFINED_COLUMN');
    const json = JSON.stringify(error);
    const parsed = JSON.parse(json) as Record<string, unknown>;
    expect(parsed).toMatchObject({ code: 'UNDEFINED_COLUMN', title: 'Column not found', message: error.message, fixes: [...error.fixes] });
    expect(json).not.toContain(`query-marker-${suffix}`);
    expect(json).not.toContain(value);
    expect(Object.keys(error)).not.toContain('query');
    expect(Object.keys(error)).not.toContain('parameters');
    expect(error.query).toBe(text);
    expect(error.parameters).toEqual([value]);
  });

  test('a timed-out statement does not expose its parameters either', async () => {
    const value = `timeout-parameter-${suffix}`;
    const error = await expectCode(execute(db.config, { text: 'SELECT pg_sleep(10), $1::text', values: [value], timeoutMs: 200 }), 'QUERY_TIMEOUT');
    expect(JSON.stringify(error)).not.toContain(value);
    expect(JSON.stringify(error)).not.toContain('pg_sleep');
    expect(Object.keys(error)).not.toEqual(expect.arrayContaining(['query']));
    expect(error.parameters).toEqual([value]);
  });
});

/** PgBouncer's own errors, from a real PgBouncer (test/harness/pgbouncer.ts) in front of the suite server. */
describeWithPgBouncer('PgBouncer errors', () => {
  const bouncerDb = useTestDatabase('bouncer_errors');
  const bouncers: PgBouncer[] = [];
  const start = async (options: Partial<Parameters<typeof startPgBouncer>[0]>) => {
    const bouncer = await startPgBouncer({ server: serverLogin(), mode: 'transaction', ...options });
    bouncers.push(bouncer);
    return bouncer;
  };

  afterAll(async () => {
    await Promise.all(bouncers.map((bouncer) => bouncer.dispose()));
  });

  test('a startup parameter the pooler refuses is POOLER_STARTUP_PARAMETER (pg-actions itself sends none)', async () => {
    const bouncer = await start({});
    // What pg-actions sent before: the timeout as a startup parameter (a raw pg client here).
    const raw = new pg.Client({ host: bouncer.host, port: bouncer.port, user: serverLogin().user, password: serverLogin().password, database: bouncerDb.name, statement_timeout: 1000 });
    const refused = await raw.connect().then(() => undefined, (error: unknown) => error);
    await raw.end().catch(() => {});
    const { toPgActionsError } = await import('../../connection/errors/map.js');
    const mapped = toPgActionsError(refused, { phase: 'connect', host: bouncer.host, port: bouncer.port, user: 'postgres', database: bouncerDb.name, connectTimeoutMs: 1000, secrets: [] });
    const error = await expectCode(Promise.reject(mapped), 'POOLER_STARTUP_PARAMETER');
    expect(error.message).toContain('statement_timeout');
    // and pg-actions connects through the same pooler
    expect(await execute(bouncer.config(bouncerDb.name), { text: 'SELECT 1 AS one' })).toMatchObject({ rows: [{ one: 1 }] });
  });

  test('max_client_conn reached is POOLER_TOO_MANY_CLIENTS', async () => {
    const bouncer = await start({ settings: { max_client_conn: '2' } });
    const holders: pg.Client[] = [];
    try {
      // Fill it up (PgBouncer counts its own bookkeeping too, so not necessarily 2 clients).
      for (let i = 0; i < 3; i++) {
        const holder = new pg.Client(bouncer.config(bouncerDb.name) as pg.ClientConfig);
        holder.on('error', () => {});
        if (!(await holder.connect().then(() => true, () => false))) break;
        holders.push(holder);
      }
      expect(holders.length).toBeGreaterThan(0);
      const error = await expectCode(execute(bouncer.config(bouncerDb.name), { text: 'SELECT 1' }), 'POOLER_TOO_MANY_CLIENTS');
      expect(error.message).toBe(`The connection pooler at 127.0.0.1:${bouncer.port} said: no more connections allowed (max_client_conn).`);
    } finally {
      await Promise.all(holders.map((holder) => holder.end()));
    }
  });

  test('the pooler failing to log in to the server is POOLER_SERVER_LOGIN_FAILED', async () => {
    const bouncer = await start({ serverPassword: 'not-the-server-password' });
    const error = await expectCode(execute(bouncer.config(bouncerDb.name), { text: 'SELECT 1' }), 'POOLER_SERVER_LOGIN_FAILED');
    const again = await expectCode(execute(bouncer.config(bouncerDb.name), { text: 'SELECT 1' }), 'POOLER_SERVER_LOGIN_FAILED');
  });

  test('waiting longer than query_wait_timeout for a server connection is POOLER_QUERY_WAIT_TIMEOUT', async () => {
    const bouncer = await start({ poolSize: 1, settings: { query_wait_timeout: '1' } });
    const holder = new pg.Client(bouncer.config(bouncerDb.name) as pg.ClientConfig);
    await holder.connect();
    try {
      await holder.query('BEGIN'); // holds the only server connection
      const error = await expectCode(execute(bouncer.config(bouncerDb.name, { applicationName: 'waiter' }), { text: 'SELECT 1' }), 'POOLER_QUERY_WAIT_TIMEOUT');
    } finally {
      await holder.end();
    }
  });

  test('a pool the pooler shuts down (DISABLE + KILL) is POOLER_SHUTTING_DOWN, mid-step and after', async () => {
    const bouncer = await start({});
    const connection = bouncer.config(bouncerDb.name);
    await execute(connection, { text: 'SELECT 1' });
    const admin = new pg.Client(bouncer.config('pgbouncer') as pg.ClientConfig);
    await admin.connect();
    try {
      const stepping = expectCode(execute(connection, { text: 'SELECT pg_sleep(5)' }), 'POOLER_SHUTTING_DOWN');
      expect(await eventually(async () => (await bouncerDb.sql(`SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)'`)).length > 0)).toBe(true);
      await admin.query(`DISABLE ${bouncerDb.name}`);
      await admin.query(`KILL ${bouncerDb.name}`);
      const midStep = await stepping;
      expect(midStep.code).toBe('POOLER_SHUTTING_DOWN');
      expect(midStep.message).toContain('database removed');
      const error = await expectCode(execute(connection, { text: 'SELECT 1' }), 'POOLER_SHUTTING_DOWN');
      expect(error.message).toContain(`database "${bouncerDb.name}" is disabled`);
      await admin.query(`ENABLE ${bouncerDb.name}`);
      await admin.query(`RESUME ${bouncerDb.name}`);
      expect(await execute(connection, { text: 'SELECT 2 AS two' })).toMatchObject({ rows: [{ two: 2 }] });
    } finally {
      await admin.end();
    }
  });
});

// Runs last (jest keeps declaration order): `produced` is filled by every test above.
test('every connection error code is produced by a real condition in this file', () => {
  const covered = new Set<ErrorCode>([...produced, ...NOT_A_CONNECTION_CODE, ...(pgbouncerBinary() ? [] : POOLER_CODES)]);
  const missing = ERROR_CODES.filter((code) => !covered.has(code));
  expect(missing).toEqual([]);
  // and nothing here produced a code the catalogue does not know
  expect([...produced].filter((code) => !ERROR_CODES.includes(code))).toEqual([]);
});

/** Every *.test.ts under test/, as [path relative to test/, source]. */
function testFiles(): [string, string][] {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? walk(join(dir, entry.name)) : entry.name.endsWith('.test.ts') ? [join(dir, entry.name)] : []);
  return walk(root).map((path) => [relative(root, path), readFileSync(path, 'utf8')]);
}

test('every error code is asserted somewhere in the suite (every test file scanned)', () => {
  const files = testFiles();
  expect(files.length).toBeGreaterThan(20);
  // An assertion on the code: expect(…code).toBe('X'), expectCode(…, 'X'), { code: 'X' }, toHaveProperty('code', 'X').
  const asserted = (code: string) => new RegExp(`(?:toBe|toEqual|expectCode\\([^;]*,|code: |'code', )\\s*\\(?\\s*'${code}'`);
  const where = Object.fromEntries(ERROR_CODES.map((code) => [code, files.filter(([, source]) => asserted(code).test(source)).map(([path]) => path)]));
  expect(ERROR_CODES.filter((code) => where[code]!.length === 0)).toEqual([]);
  // The template errors are asserted outside this file: the scan really reads the others.
  expect(where.TEMPLATE_ERROR!.filter((path) => path !== 'connection/errors.test.ts').length).toBeGreaterThan(0);
});
