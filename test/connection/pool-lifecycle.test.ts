/**
 * connection/pools.ts: which configurations share a pool (every field of the identity counts,
 * the spelling does not), and the sweeper that closes a pool nobody used for five minutes
 * while leaving one in use. Against the suite's server; the sweeper's clock is jest's fake
 * Date and setInterval only, so the pool's own connection timers stay real.
 */
import { jest } from '@jest/globals';
import { closeAll, execute, resolveConfig, type ConnectionConfig } from '../../connection/index.js';
import { openPoolCount, poolFor } from '../../connection/pools.js';
import { createTestPki } from '../harness/certs.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('pool_life');

beforeAll(async () => {
  await closeAll();
}, 60_000);

afterAll(async () => {
  jest.useRealTimers();
}, 60_000);

afterEach(async () => {
  jest.useRealTimers();
  await closeAll();
});

const pool = (config: unknown) => poolFor(resolveConfig(config));

test('equal configurations share one pool, however they are written; every field of the identity makes another', () => {
  const base = pool(db.config);
  expect(pool({ ...db.config })).toBe(base);
  expect(pool({ ...db.config, host: String(db.config.host).toUpperCase() })).toBe(base);
  expect(pool({ ...db.config, port: 5432 === db.config.port ? 5432 : db.config.port, sslMode: 'prefer', applicationName: 'pg-actions', connectTimeoutMs: 10000, statementTimeoutMs: 60000, maxResultBytes: 10485760, pooler: 'none' })).toBe(base);
  const url = new URL(process.env.PG_TEST_URL!);
  url.pathname = `/${db.name}`;
  expect(pool({ connectionString: url.toString(), sslMode: db.config.sslMode })).toBe(base);
  expect(openPoolCount()).toBe(1);
  // The suite's host may be an address, which has no case. Host names in any case are one pool; names that differ otherwise are
  // not, even where upper case would fold them together (ß → SS)
  expect(pool({ ...db.config, host: 'Db.Example.INVALID' })).toBe(pool({ ...db.config, host: 'db.example.invalid' }));
  expect(pool({ ...db.config, host: 'straße.invalid' })).not.toBe(pool({ ...db.config, host: 'STRASSE.invalid' }));

  const pki = createTestPki();
  const variants: Record<string, Partial<ConnectionConfig>> = {
    host: { host: '127.0.0.2' },
    port: { port: (db.config.port as number) + 1 },
    database: { database: 'postgres' },
    user: { user: 'someone_else' },
    password: { password: 'another password' },
    sslMode: { sslMode: 'disable' },
    sslCa: { sslCa: pki.caPem },
    sslCert: { sslCert: pki.clientCertPem, sslKey: pki.clientKeyPem },
    applicationName: { applicationName: 'another-app' },
    connectTimeoutMs: { connectTimeoutMs: 9999 },
    statementTimeoutMs: { statementTimeoutMs: 59999 },
    maxResultBytes: { maxResultBytes: 1048576 },
    pooler: { pooler: 'transaction' },
    // not connected until a step runs: only the pool's identity is compared here
    sshTunnel: { sshTunnel: { host: '127.0.0.1', user: 'bastion-user', password: 'bastion password' } },
  };
  const pools = Object.values(variants).map((variant) => pool({ ...db.config, ...variant }));
  expect(new Set([base, ...pools]).size).toBe(1 + pools.length);
  expect(openPoolCount()).toBe(4 + pools.length);
  // and each is found again
  expect(Object.values(variants).map((variant) => pool({ ...db.config, ...variant }))).toEqual(pools);
});

test('a pool unused for five minutes is closed by the sweeper; one used since is kept; the sweeper stops when none is left', async () => {
  jest.useFakeTimers({ doNotFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'nextTick', 'queueMicrotask', 'performance', 'hrtime'] });
  const early = { ...db.config, applicationName: 'sweep-early' };
  const late = { ...db.config, applicationName: 'sweep-late' };
  const connections = async () =>
    (await db.sql(`SELECT application_name AS app FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'sweep-%' ORDER BY 1`, [db.name])).map((row) => row.app);
  await execute(early, { text: 'SELECT 1' });
  jest.advanceTimersByTime(4 * 60_000 + 30_000);
  await execute(late, { text: 'SELECT 1' });
  expect(openPoolCount()).toBe(2);
  jest.advanceTimersByTime(30_000); // 5 min after the early step: not yet idle for more than 5 minutes
  expect(openPoolCount()).toBe(2);
  jest.advanceTimersByTime(60_000); // 6 min
  expect(openPoolCount()).toBe(1);
  expect(await waitFor(async () => (await connections()).join() === 'sweep-late')).toBe(true);
  expect(jest.getTimerCount()).toBe(1); // the sweeper is still there for the late pool
  jest.advanceTimersByTime(5 * 60_000);
  expect(openPoolCount()).toBe(0);
  expect(jest.getTimerCount()).toBe(0); // and stopped with nothing left to sweep
  expect(await waitFor(async () => (await connections()).length === 0)).toBe(true);
}, 60_000);

test('a pool whose connection is checked out is not swept, however long ago it was last asked for', async () => {
  jest.useFakeTimers({ doNotFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'nextTick', 'queueMicrotask', 'performance', 'hrtime'] });
  const busy = { ...db.config, applicationName: 'sweep-busy' };
  const running = execute(busy, { text: 'SELECT pg_sleep(1.5) AS slept' });
  expect(await waitFor(async () => (await db.sql(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'sweep-busy' AND state = 'active'`, [db.name])).length === 1)).toBe(true);
  jest.advanceTimersByTime(7 * 60_000);
  expect(openPoolCount()).toBe(1);
  expect((await running).rows).toEqual([{ slept: '' }]);
}, 60_000);

test('closeAll() stops the sweeper with the pools, and the next pool starts it again', async () => {
  jest.useFakeTimers({ doNotFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'nextTick', 'queueMicrotask', 'performance', 'hrtime'] });
  pool({ ...db.config, applicationName: 'sweeper-stop' });
  expect(jest.getTimerCount()).toBe(1);
  await closeAll();
  expect(jest.getTimerCount()).toBe(0);
  pool({ ...db.config, applicationName: 'sweeper-again' });
  expect(jest.getTimerCount()).toBe(1);
});

/** Polls with the real clock (setTimeout is not faked here). */
async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}
