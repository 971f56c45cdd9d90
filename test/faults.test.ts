/**
 * Fault drill, through the public step API on one dedicated server: each fault a production
 * database can throw at a step, followed by a successful next step without restarting anything
 * on our side. (Each error code's own tests live in test/connection/errors.test.ts.)
 */
import pg from 'pg';
import { runAction } from '../actions/index.js';
import { closeAll, testConnection, type ConnectionConfig, type PgActionsError } from '../connection/index.js';
import { failure, startFreezableProxy, startSilentServer } from './harness/failures.js';
import { startServer, type TestServer } from './harness/servers.js';

let server: TestServer;
let connection: ConnectionConfig;
const admin = () => new pg.Client({ connectionString: server.url });

beforeAll(async () => {
  server = await startServer({ settings: { max_connections: '6', superuser_reserved_connections: '0' } });
  connection = { host: server.host, port: server.port, user: server.user, password: server.password, database: 'postgres', sslMode: 'disable', connectTimeoutMs: 1000 };
});
afterAll(async () => {
  await closeAll();
  await server.dispose();
});

async function healthyStep(): Promise<void> {
  const output = await runAction('query-rows', { connection, input: { query: 'SELECT $1::int AS ok', parameters: [1] } });
  expect(output).toEqual({ rows: [{ ok: 1 }], rowCount: 1 });
}

function failingStep(query: string, options: Record<string, unknown> = {}): Promise<PgActionsError> {
  return failure(runAction('query-rows', { connection, input: { query, ...options } }));
}

test('a backend terminated in the middle of a query → CONNECTION_LOST, then the next step works', async () => {
  await healthyStep();
  const pending = failingStep(`SELECT pg_sleep(10), 'fault-terminate'`);
  const client = admin();
  await client.connect();
  await new Promise((resolve) => setTimeout(resolve, 200));
  await client.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%fault-terminate%' AND pid <> pg_backend_pid()`);
  await client.end();
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
  const error = await failingStep(`SELECT pg_sleep(120), 'fault-long'`, { timeoutMs: 300 });
  expect(error.code).toBe('QUERY_TIMEOUT');
  const client = admin();
  await client.connect();
  await new Promise((resolve) => setTimeout(resolve, 250));
  const { rows } = await client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%fault-long%' AND pid <> pg_backend_pid()`);
  await client.end();
  expect(rows).toEqual([{ n: 0 }]);
  await healthyStep();
});

test('the network goes silent mid-session → the client deadline sends a CancelRequest and gives up: QUERY_TIMEOUT, no hang', async () => {
  const proxy = await startFreezableProxy(server);
  const viaProxy: ConnectionConfig = { ...connection, port: proxy.port, applicationName: 'via-frozen-proxy' };
  try {
    const step = (query: string, options: Record<string, unknown> = {}) => runAction('query-rows', { connection: viaProxy, input: { query, ...options } });
    expect(await step('SELECT 1 AS ok')).toEqual({ rows: [{ ok: 1 }], rowCount: 1 });
    proxy.freeze(); // the pooled session's packets now go nowhere, and nothing comes back
    const started = Date.now();
    const error = await failure(step(`SELECT pg_sleep(120), 'fault-silent'`, { timeoutMs: 300 }));
    const elapsed = Date.now() - started;
    expect(error.code).toBe('QUERY_TIMEOUT');
    // deadline 300 ms + 100 ms grace, then at most 1 s waiting for an answer to the cancel
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(3000);
    expect(proxy.cancelRequests).toBe(1);
    // The silent connection was discarded; the next step opens a fresh one and works.
    expect(await step('SELECT 2 AS ok')).toEqual({ rows: [{ ok: 2 }], rowCount: 1 });
    const client = admin();
    await client.connect();
    const { rows } = await client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%fault-silent%' AND pid <> pg_backend_pid()`);
    await client.end();
    expect(rows).toEqual([{ n: 0 }]);
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
  const proxy = await startFreezableProxy(server);
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
