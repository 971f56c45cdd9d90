/**
 * connection/pools.ts, what its pooled sessions carry: the output formats a database default
 * changed are set back before a step reads rows (outputFormatFixes), a session pooler gets a fresh
 * client connection per step (maxUses 1), and a pool held by a long-lived session (listen,
 * replication) is not swept until every holder has let go. Against the suite's server; cheap
 * enough to run per mutant (npm run test:mutation).
 */
import { readFileSync } from 'node:fs';
import { jest } from '@jest/globals';
import { closeAll, execute, resolveConfig } from '../../connection/index.js';
import { holdPool, openPoolCount, poolFor } from '../../connection/pools.js';
import { serverLogin } from '../harness/db.js';
import { eventually } from '../harness/failures.js';
import { startWireProxy } from '../harness/proxy.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('pool_sess');

afterEach(async () => {
  jest.useRealTimers();
  await closeAll();
}, 60_000);

const row = async (config: object, text: string) => (await execute(config, { text })).rows[0]!;

describe('output formats changed by database defaults', () => {
  afterEach(async () => {
    for (const setting of ['DateStyle', 'IntervalStyle', 'standard_conforming_strings']) await db.sql(`ALTER DATABASE ${db.name} RESET ${setting}`);
  }, 60_000);

  const text = `SELECT '2026-01-15'::date AS d, '1 day 2 hours'::interval AS i, 'a\\b' AS s, current_setting('DateStyle') AS style`;

  test('DateStyle SQL, IntervalStyle iso_8601 and standard_conforming_strings off are set back for the step', async () => {
    await db.sql(`ALTER DATABASE ${db.name} SET DateStyle = 'SQL, DMY'`);
    await db.sql(`ALTER DATABASE ${db.name} SET IntervalStyle = 'iso_8601'`);
    await db.sql(`ALTER DATABASE ${db.name} SET standard_conforming_strings = off`);
    const config = { ...db.config, applicationName: 'formats-all' };
    for (let step = 0; step < 2; step++) {
      expect(await row(config, text)).toEqual({ d: '2026-01-15', i: '1 day 02:00:00', s: 'a\\b', style: 'ISO, DMY' });
    }
  });

  test.each([
    ['DateStyle', `'SQL, DMY'`],
    ['IntervalStyle', `'iso_8601'`],
    ['standard_conforming_strings', 'off'],
  ])('%s alone is set back', async (setting, value) => {
    await db.sql(`ALTER DATABASE ${db.name} SET ${setting} = ${value}`);
    expect(await row({ ...db.config, applicationName: `formats-${setting.slice(0, 8)}` }, text)).toMatchObject({ d: '2026-01-15', i: '1 day 02:00:00', s: 'a\\b' });
  });

  test('a DateStyle that is already ISO keeps its field order (no SET sent for it)', async () => {
    await db.sql(`ALTER DATABASE ${db.name} SET DateStyle = 'ISO, DMY'`);
    const config = { ...db.config, applicationName: 'formats-iso' };
    expect(await row(config, `SELECT current_setting('DateStyle') AS style, to_char('2026-01-15'::date, 'DD') AS day`)).toEqual({ style: 'ISO, DMY', day: '15' });
    // the session was not touched: no SET in the statement's history of this backend
    expect(await row(config, `SELECT count(*)::int AS changed FROM pg_settings WHERE name IN ('DateStyle', 'IntervalStyle', 'standard_conforming_strings') AND source = 'session'`)).toEqual({ changed: 0 });
  });

  test('with every format as the parsers read it, no setting of the session is changed', async () => {
    const config = { ...db.config, applicationName: 'formats-default' };
    await row(config, 'SELECT 1');
    expect(await row(config, `SELECT count(*)::int AS changed FROM pg_settings WHERE name IN ('DateStyle', 'IntervalStyle', 'standard_conforming_strings') AND source = 'session'`)).toEqual({ changed: 0 });
  });
});

test('behind a session pooler each step gets a client connection of its own; without one the pooled connection is reused', async () => {
  const pid = async (config: object) => (await row(config, 'SELECT pg_backend_pid() AS pid')).pid as number;
  const session = { ...db.config, pooler: 'session', applicationName: 'pooler-session' };
  const first = await pid(session);
  const second = await pid(session);
  expect(second).not.toBe(first);
  const direct = { ...db.config, applicationName: 'pooler-none' };
  expect(await pid(direct)).toBe(await pid(direct));
});

test('pooled connections have TCP keepalive on: the kernel probes an idle connection, so a server gone silent is found', async () => {
  const { port } = await row({ ...db.config, applicationName: 'keepalive' }, 'SELECT inet_client_port() AS port');
  // The client's end of the connection is a socket of this machine (Linux: /proc/net/tcp, tcp6). Its timer kind is 2 (keepalive)
  // when SO_KEEPALIVE is set, 0 (none) on an idle connection without it.
  const hex = (n: number) => `:${n.toString(16).toUpperCase().padStart(4, '0')}`;
  const timerKinds = () =>
    ['/proc/net/tcp', '/proc/net/tcp6']
      .flatMap((file) => readFileSync(file, 'utf8').split('\n').slice(1))
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields[1]?.endsWith(hex(port as number)) && fields[2]?.endsWith(hex(Number(db.config.port))) && fields[3] === '01')
      .map((fields) => fields[5]!.split(':')[0]);
  expect(await eventually(async () => timerKinds().join() === '02', 3000)).toBe(true);
});

describe('a pool held by a long-lived session', () => {
  const fakeClock = () =>
    jest.useFakeTimers({ doNotFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'nextTick', 'queueMicrotask', 'performance', 'hrtime'] });

  test('is not swept while any holder is open; releasing one twice counts once; swept once all let go', async () => {
    fakeClock();
    const managed = poolFor(resolveConfig({ ...db.config, applicationName: 'held' }));
    const listen = holdPool(managed);
    const replication = holdPool(managed);
    jest.advanceTimersByTime(7 * 60_000);
    expect(openPoolCount()).toBe(1);
    listen();
    listen(); // a second call must not release the replication session's hold
    jest.advanceTimersByTime(7 * 60_000);
    expect(openPoolCount()).toBe(1);
    replication();
    jest.advanceTimersByTime(60_000);
    expect(openPoolCount()).toBe(0);
  });
});

describe('closeAll() waits only for connections still closing', () => {
  const gone = (pid: number) => eventually(async () => (await db.sql('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 0, 10_000);
  const closeAllMs = async () => {
    const started = performance.now();
    await closeAll();
    return performance.now() - started;
  };

  // Each would otherwise wait for an 'end' event that has already been emitted: closeAll's 5 s limit.
  test('a session the step discarded (DISCARD ALL), closed since, is not waited for', async () => {
    const config = { ...db.config, applicationName: 'discarded' };
    const { pid } = await row(config, 'SELECT pg_backend_pid() AS pid');
    await execute(config, { text: 'DISCARD ALL' });
    expect(await gone(pid as number)).toBe(true);
    expect(await closeAllMs()).toBeLessThan(4000);
  });

  test('an idle session the server ended (pg_terminate_backend), dropped by the pool, is not waited for', async () => {
    const config = { ...db.config, applicationName: 'terminated' };
    const { pid } = await row(config, 'SELECT pg_backend_pid() AS pid');
    await db.sql('SELECT pg_terminate_backend($1)', [pid]);
    const managed = poolFor(resolveConfig(config));
    expect(await eventually(async () => managed.pool.totalCount === 0, 10_000)).toBe(true);
    expect(await closeAllMs()).toBeLessThan(4000);
  });

  test('a connection closed under its statement without a word from the server, released by the failed step after it ended, is not waited for', async () => {
    const proxy = await startWireProxy(serverLogin());
    try {
      const config = { ...db.config, host: '127.0.0.1', port: proxy.port, sslMode: 'disable' as const, applicationName: 'closed-mid-step' };
      const running = execute(config, { text: 'SELECT pg_sleep(30)' }).then(() => undefined, (error: { code?: string }) => error.code);
      expect(await eventually(async () => (await db.sql(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'closed-mid-step' AND state = 'active'`, [db.name])).length === 1, 10_000)).toBe(true);
      await proxy.close(); // both sockets closed (FIN): pg hears 'end' before the query's failure reaches the step
      expect(await running).toBe('CONNECTION_LOST');
      expect(await closeAllMs()).toBeLessThan(4000);
    } finally {
      await proxy.close();
    }
  });
});
