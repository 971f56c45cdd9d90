/**
 * What execute() plans around the statement (connection/execute.ts, executeOnce): the share of the
 * deadline the statement gets, the limits and transactions it runs in. Found unpinned by the
 * mutation run of execute.ts lines 153-291 (docs/testing.md, "Mutation testing").
 */
import { execute, type ConnectionConfig, type Statement } from '../../connection/index.js';
import { poolSizing } from '../../connection/pools.js';
import { eventually, failure } from '../harness/failures.js';
import { startWireProxy, type WireProxy } from '../harness/proxy.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('step_plan');

const STATEMENT_TIMEOUT = `SELECT setting::int AS ms FROM pg_catalog.pg_settings WHERE name = 'statement_timeout'`;

test('a step queued behind a full pool runs its statement with the rest of its deadline, not all of it', async () => {
  const connection = { ...db.config, applicationName: 'step-plan-queued' };
  poolSizing.size = 1;
  try {
    await execute(connection, { text: 'SELECT 1' });
  } finally {
    poolSizing.size = 10;
  }
  const holder = execute(connection, { text: 'SELECT pg_sleep(3)' });
  const busy = async () => (await db.sql(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'step-plan-queued' AND state = 'active'`, [db.name])).length === 1;
  expect(await eventually(busy, 10_000)).toBe(true);
  const started = performance.now();
  const { rows } = await execute(connection, { text: STATEMENT_TIMEOUT, timeoutMs: 20_000 });
  const elapsed = performance.now() - started;
  await holder;
  const ms = rows[0]!.ms as number;
  // It waited for the holder (seconds, here at least 0.2 s), and that wait came off its 20 s.
  expect(ms).toBeLessThanOrEqual(19_800);
  expect(ms).toBeGreaterThanOrEqual(20_000 - elapsed - 1);
}, 60_000);

/** What a step can leave on its server session, read by the next step (with its backend pid). */
const LEFT = `SELECT coalesce(pg_catalog.current_setting('step_plan.tenant', true), '') AS tenant,
  (SELECT count(*)::int FROM pg_catalog.pg_listening_channels()) AS listening,
  (SELECT count(*)::int FROM pg_catalog.pg_class WHERE relpersistence = 't' AND relnamespace = pg_catalog.pg_my_temp_schema()) AS temp,
  (SELECT count(*)::int FROM pg_catalog.pg_prepared_statements WHERE from_sql) AS prepared,
  (SELECT count(*)::int FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()) AS advisory,
  pg_catalog.pg_backend_pid() AS pid`;
const CLEAN = { tenant: '', listening: 0, temp: 0, prepared: 0, advisory: 0 };

beforeAll(async () => {
  await db.sql(`CREATE TABLE deferred_changes (x int);
    CREATE FUNCTION change_session() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_catalog.set_config('step_plan.tenant', 'acme', false); RETURN NULL; END $$;
    CREATE CONSTRAINT TRIGGER change_session AFTER INSERT ON deferred_changes DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION change_session();`);
}, 60_000);

test('on its own session a committed step that changed settings and listens: reset after it, the session kept (same backend), the next step sees none of it', async () => {
  const config = { ...db.config, applicationName: 'step-plan-own-reset' };
  const { pid } = (await execute(config, { text: LEFT })).rows[0]!;
  await execute(config, { text: `DO $$ BEGIN PERFORM pg_catalog.set_config('step_plan.tenant', 'acme', false); PERFORM pg_catalog.set_config('search_path', 'pg_catalog', false); EXECUTE 'LISTEN step_plan'; END $$` });
  const { rows } = await execute(config, { text: `${LEFT}, pg_catalog.current_setting('search_path') AS search_path` });
  expect(rows[0]).toEqual({ ...CLEAN, pid, search_path: '"$user", public' });
}, 60_000);

test.each([
  ['on its own session', 'none'],
  ['behind a transaction pooler', 'transaction'],
] as const)("%s a deferred trigger's session change (at the step's COMMIT) is reset or checked after it: the next step does not see it (REVIEW3 R12)", async (_label, pooler) => {
  const config: ConnectionConfig = { ...db.config, applicationName: `step-plan-deferred-${pooler}`, pooler };
  await execute(config, { text: 'INSERT INTO deferred_changes VALUES (1)' });
  const { rows } = await execute(config, { text: LEFT });
  expect(rows[0]).toEqual({ ...CLEAN, pid: expect.any(Number) });
}, 60_000);

describe("behind a transaction pooler (`pooler: 'transaction'` straight to the server: one backend, which the next step meets)", () => {
  const pooled = (applicationName: string): ConnectionConfig => ({ ...db.config, applicationName, pooler: 'transaction' });
  beforeAll(() => db.sql('CREATE TABLE marks (x int)'), 30_000);

  const cases: [string, Statement][] = [
    // Execute Query: the statement, COMMIT, then the settings' reset and the check in a transaction of their own.
    ['a committed step (Execute Query)', { text: `DO $$ BEGIN PERFORM pg_catalog.set_config('step_plan.tenant', 'acme', false); PERFORM pg_catalog.pg_advisory_lock(7); CREATE TEMP TABLE scratch (x int); EXECUTE 'LISTEN step_plan'; EXECUTE 'PREPARE left_behind AS SELECT 1'; END $$` }],
    // Insert Rows: the whole reset after the checked tag, before the COMMIT.
    ['a step with expected commands (Insert Rows)', { text: `INSERT INTO marks SELECT 1 FROM (SELECT pg_catalog.set_config('step_plan.tenant', 'acme', false), pg_catalog.pg_advisory_lock(7)) AS s`, expectCommands: ['INSERT'] }],
    // Query Rows: rolled back (the setting goes with it), the check releases the session's advisory lock.
    ['a read-only step', { text: `SELECT pg_catalog.set_config('step_plan.tenant', 'acme', false), pg_catalog.pg_advisory_lock(7)`, readOnly: true }],
  ];
  test.each(cases)('%s leaves nothing on the server session for the next step', async (name, statement) => {
    const config = pooled(`step-plan-pooler-${cases.findIndex((c) => c[0] === name)}`);
    const { pid } = (await execute(config, { text: LEFT })).rows[0]!;
    await execute(config, statement);
    const { rows } = await execute(config, { text: LEFT });
    expect(rows[0]).toEqual({ ...CLEAN, pid });
  }, 60_000);

  test("names no statement of its own on the pooler's server connections (another client's transaction may meet them)", async () => {
    const config = pooled('step-plan-pooler-unnamed');
    const OWN = `SELECT count(*)::int AS own FROM pg_catalog.pg_prepared_statements WHERE name LIKE 'pg\\_actions\\_%'`;
    for (const statement of [{ readOnly: true }, {}, { expectCommands: ['SELECT'] }, { timeoutMs: 5000 }]) await execute(config, { text: 'SELECT 1', ...statement });
    expect((await execute(config, { text: OWN })).rows).toEqual([{ own: 0 }]);
    // On its own session it does (the control: the same query sees them).
    const direct = { ...db.config, applicationName: 'step-plan-direct-named' };
    await execute(direct, { text: 'SELECT 1', readOnly: true });
    expect((await execute(direct, { text: OWN })).rows[0]!.own).toBeGreaterThan(0);
  }, 60_000);

  test('output styles the database sets otherwise are set for each step, in its transaction', async () => {
    await db.sql(`ALTER DATABASE ${db.name} SET DateStyle = 'SQL, DMY'`);
    try {
      const config = pooled('step-plan-pooler-styles');
      for (const statement of [{ readOnly: true }, {}, { expectCommands: ['SELECT'] }]) {
        const { rows } = await execute(config, { text: `SELECT '2026-01-15'::date AS d, current_setting('DateStyle') AS style`, ...statement });
        expect(rows[0]).toEqual({ d: '2026-01-15', style: 'ISO, DMY' });
      }
    } finally {
      await db.sql(`ALTER DATABASE ${db.name} RESET DateStyle`);
    }
  }, 60_000);
});

test('behind a session pooler (no guard, a server session per step): output styles the database sets otherwise are set for the session first', async () => {
  await db.sql(`ALTER DATABASE ${db.name} SET DateStyle = 'SQL, DMY'`);
  await db.sql(`ALTER DATABASE ${db.name} SET IntervalStyle = 'iso_8601'`);
  try {
    const config: ConnectionConfig = { ...db.config, applicationName: 'step-plan-session-pooler-styles', pooler: 'session' };
    for (const statement of [{ readOnly: true }, {}, { expectCommands: ['SELECT'] }]) {
      const { rows } = await execute(config, { text: `SELECT '2026-01-15'::date AS d, '1 day 2 hours'::interval AS i, current_setting('DateStyle') AS style`, ...statement });
      expect(rows[0]).toEqual({ d: '2026-01-15', i: '1 day 02:00:00', style: 'ISO, DMY' });
    }
  } finally {
    await db.sql(`ALTER DATABASE ${db.name} RESET DateStyle`);
    await db.sql(`ALTER DATABASE ${db.name} RESET IntervalStyle`);
  }
}, 60_000);

describe('what the statement is run with', () => {
  const own = (applicationName: string, extra: Partial<ConnectionConfig> = {}): ConnectionConfig => ({ ...db.config, applicationName, ...extra });
  const LOCK_TIMEOUT = `SELECT pg_catalog.current_setting('lock_timeout') AS lock_timeout`;

  test("each step runs under the connection's statement timeout, or its own: on its own session and behind a pooler", async () => {
    for (const pooler of ['none', 'transaction'] as const) {
      const config = own(`step-plan-limits-${pooler}`, { statementTimeoutMs: 7000, pooler });
      const timeouts: number[] = [];
      for (const statement of [{}, { timeoutMs: 3000 }, {}, { readOnly: true }, { readOnly: true, timeoutMs: 4000 }, { expectCommands: ['SELECT'] }, { expectCommands: ['SELECT'], timeoutMs: 5000 }, {}]) {
        timeouts.push((await execute(config, { text: STATEMENT_TIMEOUT, ...statement })).rows[0]!.ms as number);
      }
      expect({ pooler, timeouts }).toEqual({ pooler, timeouts: [7000, 3000, 7000, 7000, 4000, 7000, 5000, 7000] });
    }
  }, 60_000);

  test("a read-only or tag-checked step's lockTimeoutMs is its lock_timeout, local to its transaction; other steps ignore it", async () => {
    const config = own('step-plan-lock-timeout');
    expect((await execute(config, { text: LOCK_TIMEOUT, readOnly: true, lockTimeoutMs: 300 })).rows).toEqual([{ lock_timeout: '300ms' }]);
    expect((await execute(config, { text: LOCK_TIMEOUT, expectCommands: ['SELECT'], lockTimeoutMs: 400 })).rows).toEqual([{ lock_timeout: '400ms' }]);
    expect((await execute(config, { text: LOCK_TIMEOUT, lockTimeoutMs: 300 })).rows).toEqual([{ lock_timeout: '0' }]);
    expect((await execute(config, { text: LOCK_TIMEOUT, readOnly: true })).rows).toEqual([{ lock_timeout: '0' }]);
  }, 60_000);

  test("the statement's maxResultBytes overrides the connection's, both ways", async () => {
    const text = `SELECT repeat('x', 1000) AS filler FROM generate_series(1, 50)`; // about 50 kB
    expect((await failure(execute(own('step-plan-cap'), { text, maxResultBytes: 10_000 }))).code).toBe('RESULT_TOO_LARGE');
    expect((await execute(own('step-plan-cap-small', { maxResultBytes: 10_000 }), { text, maxResultBytes: 1_000_000 })).rowCount).toBe(50);
    expect((await failure(execute(own('step-plan-cap-small', { maxResultBytes: 10_000 }), { text }))).code).toBe('RESULT_TOO_LARGE');
  }, 60_000);

  test('discardRows: rows past the cap are counted, not kept, and not refused', async () => {
    const text = `SELECT repeat('x', 1000) AS filler FROM generate_series(1, 50)`;
    const result = await execute(own('step-plan-discard'), { text, maxResultBytes: 10_000, discardRows: true });
    expect({ rowCount: result.rowCount, rows: result.rows }).toEqual({ rowCount: 50, rows: [] });
  }, 60_000);

  test('two result columns of one name: the error says the statement was committed only when it was (Execute Query)', async () => {
    const config = own('step-plan-duplicate');
    expect((await failure(execute(config, { text: 'SELECT 1 AS x, 2 AS x' }))).message).toMatch(/The statement was committed all the same/);
    for (const statement of [{ readOnly: true }, { expectCommands: ['SELECT'] }]) {
      const error = await failure(execute(config, { text: 'SELECT 1 AS x, 2 AS x', ...statement }));
      expect(error.message).toMatch(/two columns named "x"/);
      expect(error.message).not.toMatch(/committed/);
    }
  }, 60_000);

  test('COPY … FROM STDIN: refused, its session (waiting for data) dropped, and the next step runs at once on another', async () => {
    const config = own('step-plan-copy');
    await db.sql('CREATE TABLE inbox (x int)');
    const before = (await execute(config, { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]!.pid;
    expect((await failure(execute(config, { text: 'COPY inbox FROM STDIN', timeoutMs: 20_000 }))).code).toBe('INVALID_INPUT');
    const started = performance.now();
    const after = (await execute(config, { text: 'SELECT pg_backend_pid() AS pid', timeoutMs: 20_000 })).rows[0]!.pid;
    expect(after).not.toBe(before);
    expect(performance.now() - started).toBeLessThan(15_000);
  }, 60_000);
});

describe("past the step's deadline at the COMMIT (the server's statement_timeout switched off by a proxy, so the client's deadline acts)", () => {
  let proxy: WireProxy;
  beforeAll(async () => {
    proxy = await startWireProxy(db.config as { host: string; port: number }, { stripStatementTimeout: true });
    // Deferred triggers make the COMMIT slow: one sleeps through the CancelRequest (the commit goes through, as a wait
    // for a synchronous standby would, REVIEW3 R16), the other is cut by it (the COMMIT fails, the write is undone).
    await db.sql(`CREATE TABLE late_commits (x int);
      CREATE FUNCTION sleep_through_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(3); RETURN NULL; EXCEPTION WHEN query_canceled THEN RETURN NULL; END $$;
      CREATE CONSTRAINT TRIGGER late AFTER INSERT ON late_commits DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sleep_through_cancel();
      CREATE TABLE cut_commits (x int);
      CREATE FUNCTION sleep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
      CREATE CONSTRAINT TRIGGER cut AFTER INSERT ON cut_commits DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sleep();`);
  }, 60_000);
  afterAll(() => proxy?.close(), 30_000);
  const config = (): ConnectionConfig => ({ ...db.config, applicationName: 'step-plan-late-commit', host: '127.0.0.1', port: proxy.port, sslMode: 'disable' });

  test('Execute Query whose statement finished, committed after the deadline: COMMIT_UNCONFIRMED saying it was committed, written once; the session, settled by the cancel, is kept', async () => {
    const pidOf = async () => (await execute(config(), { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]!.pid as number;
    const before = await pidOf();
    const error = await failure(execute(config(), { text: 'INSERT INTO late_commits VALUES (1)', timeoutMs: 1000 }));
    expect({ code: error.code, retryable: error.retryable }).toEqual({ code: 'COMMIT_UNCONFIRMED', retryable: false });
    expect(error.message).toMatch(/finished and was committed, but only after the step's timeout of 1000 ms/);
    expect(await db.sql('SELECT x FROM late_commits')).toEqual([{ x: 1 }]);
    expect(await pidOf()).toBe(before);
  }, 60_000);

  test('a COMMIT cut by the cancel (its write undone), a statement cut while it runs, a read-only step: QUERY_TIMEOUT', async () => {
    expect((await failure(execute(config(), { text: 'INSERT INTO cut_commits VALUES (1)', timeoutMs: 1000 }))).code).toBe('QUERY_TIMEOUT');
    expect(await db.sql('SELECT x FROM cut_commits')).toEqual([]);
    // A session opened before each 500 ms step (a step before it may have dropped its own): waiting for a new
    // connection counts against the step's deadline, and opening one took longer than 500 ms at load 40 (CONNECTION_TIMEOUT).
    const connected = () => execute(config(), { text: 'SELECT 1' });
    await connected();
    const cut = await failure(execute(config(), { text: 'SELECT pg_sleep(30)', timeoutMs: 500 }));
    expect(cut.code).toBe('QUERY_TIMEOUT');
    // The cancel worked: not "kept running after it was cancelled".
    expect(cut.message).toBe('The statement did not finish within 500 ms and was cancelled on the server.');
    await connected();
    expect((await failure(execute(config(), { text: 'SELECT pg_sleep(30)', timeoutMs: 500, readOnly: true }))).code).toBe('QUERY_TIMEOUT');
  }, 60_000);
});
