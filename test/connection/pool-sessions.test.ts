/**
 * connection/pools.ts, what its pooled sessions carry: the output formats a database default
 * changed are set back before a step reads rows (outputFormatFixes), a session pooler gets a fresh
 * client connection per step (maxUses 1), and a pool held by a long-lived session (listen,
 * replication) is not swept until every holder has let go. Against the suite's server; cheap
 * enough to run per mutant (npm run test:mutation).
 */
import { jest } from '@jest/globals';
import { closeAll, execute, resolveConfig } from '../../connection/index.js';
import { holdPool, openPoolCount, poolFor } from '../../connection/pools.js';
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
