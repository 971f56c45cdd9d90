/**
 * Fault drill, through the public step API on one dedicated server: each fault a production
 * database can throw at a step, followed by a successful next step without restarting anything
 * on our side. (Each error code's own tests live in test/connection/errors.test.ts.)
 */
import pg from 'pg';
import { runAction } from '../actions/index.js';
import { closeAll, type ConnectionConfig, type PgActionsError } from '../connection/index.js';
import { runningStatement, stoppedRunning, type AdminSql } from './harness/activity.js';
import { failure, startSilentServer, testConnectionChecked as testConnection } from './harness/failures.js';
import { startWireProxy } from './harness/proxy.js';
import { disposeStartedServers, startServer, type TestServer } from './harness/servers.js';

let server: TestServer;
let connection: ConnectionConfig;
const admin = () => new pg.Client({ connectionString: server.url });

beforeAll(async () => {
  server = await startServer({ settings: { max_connections: '6', superuser_reserved_connections: '0' } });
  connection = { host: server.host, port: server.port, user: server.user, password: server.password, database: 'postgres', sslMode: 'disable', connectTimeoutMs: 1000 };
}, 60_000);
afterAll(async () => {
  await closeAll();
  await disposeStartedServers();
}, 30_000);

/** Runs `use` with an admin session on the server (its own slot: free it before exhausting max_connections). */
async function asAdmin<T>(use: (sql: AdminSql) => Promise<T>): Promise<T> {
  const client = admin();
  await client.connect();
  try {
    return await use(async (text, values) => (await client.query(text, values)).rows);
  } finally {
    await client.end();
  }
}

async function healthyStep(): Promise<void> {
  const output = await runAction('query-rows', { connection, input: { query: 'SELECT $1::int AS ok', parameters: [1] } });
  expect(output).toEqual({ rows: [{ ok: 1 }], rowCount: 1 });
}

function failingStep(query: string, options: Record<string, unknown> = {}): Promise<PgActionsError> {
  return failure(runAction('query-rows', { connection, input: { query, ...options } }));
}

test('a backend terminated in the middle of a query → CONNECTION_LOST, then the next step works', async () => {
  await healthyStep();
  const pending = failure(runAction('query-rows', { connection: { ...connection, applicationName: 'fault-terminate' }, input: { query: `SELECT pg_sleep(10), 'fault-terminate'` } }));
  await asAdmin(async (sql) => {
    const backend = await runningStatement(sql, 'postgres', 'fault-terminate', `'fault-terminate'`);
    await sql('SELECT pg_terminate_backend($1)', [backend.pid]);
  });
  expect((await pending).code).toBe('CONNECTION_LOST');
  await healthyStep();
});

test('the server restarted between two steps: the next step works', async () => {
  await healthyStep();
  await server.restart();
  await healthyStep();
});

test('the server stopped → CONNECTION_REFUSED; started again → the next step works', async () => {
  await healthyStep();
  await server.stop();
  expect((await failingStep('SELECT 1')).code).toBe('CONNECTION_REFUSED');
  await server.start();
  await healthyStep();
});

test('max_connections exhausted by other sessions → TOO_MANY_CONNECTIONS; freed → the next step works', async () => {
  await closeAll(); // our own idle pooled connection would otherwise hold a slot
  const others: pg.Client[] = [];
  try {
    for (let i = 0; i < 6; i++) {
      const client = admin();
      await client.connect();
      others.push(client);
    }
    expect((await failingStep('SELECT 1')).code).toBe('TOO_MANY_CONNECTIONS');
  } finally {
    await Promise.all(others.map((client) => client.end()));
  }
  await healthyStep();
});

test('a statement that would run for minutes → QUERY_TIMEOUT, cancelled server-side, the connection reused', async () => {
  await healthyStep();
  const long = { ...connection, applicationName: 'fault-long' };
  const failed = failure(runAction('query-rows', { connection: long, input: { query: `SELECT pg_sleep(120), 'fault-long'`, timeoutMs: 300 } }));
  await asAdmin(async (sql) => {
    const backend = await runningStatement(sql, 'postgres', 'fault-long', `'fault-long'`);
    expect((await failed).code).toBe('QUERY_TIMEOUT');
    expect(await stoppedRunning(sql, 'postgres', backend.pid, 2000)).toEqual({ stopped: true, state: 'idle' });
    // the same backend runs the next step: the cancelled connection went back to the pool
    const next = await runAction('query-rows', { connection: long, input: { query: 'SELECT pg_backend_pid() AS pid' } });
    expect(next).toEqual({ rows: [{ pid: backend.pid }], rowCount: 1 });
  });
  await healthyStep();
});

test('the network goes silent mid-statement → the client deadline sends a CancelRequest that ends it on the server: QUERY_TIMEOUT, no hang', async () => {
  // The proxy also switches the server's statement_timeout off: only the CancelRequest can end the statement.
  const proxy = await startWireProxy(server, { stripStatementTimeout: true });
  const viaProxy: ConnectionConfig = { ...connection, port: proxy.port, applicationName: 'via-frozen-proxy' };
  try {
    const step = (query: string, options: Record<string, unknown> = {}) => runAction('query-rows', { connection: viaProxy, input: { query, ...options } });
    expect(await step('SELECT 1 AS ok')).toEqual({ rows: [{ ok: 1 }], rowCount: 1 });
    const started = Date.now();
    const failed = failure(step(`SELECT pg_sleep(120), 'fault-silent'`, { timeoutMs: 300 }));
    await asAdmin(async (sql) => {
      // The statement reached the server and runs; from now on its replies go nowhere.
      const backend = await runningStatement(sql, 'postgres', 'via-frozen-proxy', `'fault-silent'`);
      proxy.freezeReplies();
      const error = await failed;
      const elapsed = Date.now() - started;
      expect(error.code).toBe('QUERY_TIMEOUT');
      // deadline 300 ms + 100 ms grace, then at most 1 s waiting for an answer to the cancel
      expect(elapsed).toBeGreaterThanOrEqual(390);
      expect(elapsed).toBeLessThan(3000);
      expect(proxy.timeoutsStripped).toBeGreaterThan(0);
      expect(proxy.cancelRequests).toBe(1);
      // pg_sleep(120) no longer runs: the CancelRequest reached the right backend with the right key.
      expect(await stoppedRunning(sql, 'postgres', backend.pid, 1500)).toEqual({ stopped: true, state: expect.any(String) });
    });
    // The silent connection was discarded; the next step opens a fresh one and works.
    expect(await step('SELECT 2 AS ok')).toEqual({ rows: [{ ok: 2 }], rowCount: 1 });
  } finally {
    await closeAll();
    await proxy.close();
  }
});

test('a peer that accepts TCP and never answers → CONNECTION_TIMEOUT within the connect timeout; the next step works', async () => {
  const silent = await startSilentServer();
  try {
    const started = Date.now();
    const error = await failure(runAction('query-rows', { connection: { ...connection, port: silent.port, connectTimeoutMs: 500 }, input: { query: 'SELECT 1' } }));
    const elapsed = Date.now() - started;
    expect(error.code).toBe('CONNECTION_TIMEOUT');
    expect(silent.accepted).toBeGreaterThan(0);
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(2000);
  } finally {
    await silent.close();
  }
  await healthyStep();
});

test('Test connection on a session whose network went silent reports CONNECTION_TIMEOUT instead of hanging', async () => {
  const proxy = await startWireProxy(server);
  const viaProxy: ConnectionConfig = { ...connection, port: proxy.port, applicationName: 'test-connection-frozen', connectTimeoutMs: 500 };
  try {
    expect((await testConnection(viaProxy)).ok).toBe(true);
    proxy.freeze(); // the pooled session from that first test goes silent
    const started = Date.now();
    const result = await testConnection(viaProxy);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('CONNECTION_TIMEOUT');
    expect((await testConnection(viaProxy)).ok).toBe(true); // that session was discarded
  } finally {
    await closeAll();
    await proxy.close();
  }
});
