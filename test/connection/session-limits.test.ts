/**
 * The step's limits are session settings on a session pg-actions owns (set once, not sent with
 * every step), so the guard must treat them like any other setting; a read-only step is rolled
 * back, so whatever it changed is undone without discarding its session; named statements of
 * pg-actions' own cannot be hidden, replaced or lost by a statement.
 */
import { execute } from '../../connection/index.js';
import { failure } from '../harness/failures.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('limits');
let reader: string;
beforeAll(async () => {
  reader = `${db.name}_reader`;
  await db.sql(`CREATE ROLE ${reader}`);
  await db.sql(`GRANT ${reader} TO CURRENT_USER`);
  await db.sql(`CREATE TABLE inbox (line text)`);
  await db.sql(`CREATE TABLE one_row AS SELECT 1 AS n`);
  // A function that lifts the limits for the rest of its session: the probe must see it whichever way it is reached.
  await db.sql(`CREATE FUNCTION no_limits() RETURNS int LANGUAGE sql AS $$
                  SELECT length(set_config('statement_timeout', '0', false) || set_config('client_connection_check_interval', '0', false)) $$`);
  await db.sql(`CREATE VIEW as_reader AS SELECT set_config('role', '${reader}', false) AS role, set_config('search_path', 'pg_catalog', false) AS path`);
});
afterAll(async () => {
  await db.sql(`DROP ROLE IF EXISTS ${reader}`).catch(() => undefined);
});

const one = async (text: string, options: object = {}) => (await execute(db.config, { text, ...options })).rows[0]!;
const pid = async () => (await one('SELECT pg_backend_pid() AS pid')).pid as number;
const limits = () => one(`SELECT current_setting('statement_timeout') AS timeout, current_setting('client_connection_check_interval') AS check`);

describe('the limits are session settings, watched like any other', () => {
  test('a step runs with the configured timeout and connection check', async () => {
    expect(await limits()).toEqual({ timeout: '1min', check: '1s' });
  });

  test.each([
    ['SET statement_timeout = 0', 'SET statement_timeout = 0'],
    ['set_config() in the statement', `SELECT set_config('statement_timeout', '0', false)`],
    ['set_config() in a function', 'SELECT no_limits()'],
    ['set_config() in an expected-command step', 'UPDATE one_row SET n = n WHERE no_limits() > 0'],
  ])('lifted with %s: the session is reset (or discarded), the next step has its limits', async (_, text) => {
    const before = await pid();
    const expected = text.startsWith('UPDATE');
    await execute(db.config, { text, ...(expected ? { expectCommands: ['UPDATE'] } : {}) });
    // A committed step's reset (RESET ALL, then pg-actions' limits set again) keeps the session; a SET tag discards it.
    if (text.startsWith('SET ')) expect(await pid()).not.toBe(before);
    else expect(await pid()).toBe(before);
    expect(await limits()).toEqual({ timeout: '1min', check: '1s' });
  });

  test('lifted in a step that then fails: undone with its transaction, the session kept', async () => {
    const before = await pid();
    await failure(execute(db.config, { text: 'SELECT no_limits(), 1 / 0' }));
    expect(await pid()).toBe(before); // the failed statement's transaction undid it: nothing to discard
    expect(await limits()).toEqual({ timeout: '1min', check: '1s' });
  });

  test('a step with its own timeout gets it; the next one has the configured timeout again, on the same session', async () => {
    const before = await pid();
    const error = await failure(execute(db.config, { text: 'SELECT pg_sleep(5)', timeoutMs: 300 }));
    expect(error.code).toBe('QUERY_TIMEOUT');
    expect(await one(`SELECT current_setting('statement_timeout') AS timeout`, { timeoutMs: 1500 })).toEqual({ timeout: '1500ms' });
    expect(await limits()).toEqual({ timeout: '1min', check: '1s' });
    expect(await pid()).toBe(before);
  });
});

test('a step with its own timeout that sets the session timeout to that same value: the session gets the configured limits back', async () => {
  const before = await pid();
  await execute(db.config, { text: `SELECT set_config('statement_timeout', '1500', false)`, timeoutMs: 1500 });
  await execute(db.config, { text: `SELECT no_limits()`, timeoutMs: 2500 });
  expect(await limits()).toEqual({ timeout: '1min', check: '1s' });
  expect(await pid()).toBe(before);
});

describe('a read-only step is rolled back: its changes are undone, its session kept', () => {
  test('settings, role and limits changed through a view', async () => {
    const before = await pid();
    expect(await one('SELECT role FROM as_reader', { readOnly: true })).toEqual({ role: reader });
    await one('SELECT no_limits()', { readOnly: true });
    expect(await pid()).toBe(before);
    expect(await one(`SELECT current_user = session_user AS same, current_setting('search_path') AS path`)).toEqual({ same: true, path: '"$user", public' });
    expect(await limits()).toEqual({ timeout: '1min', check: '1s' });
  });

  test('LISTEN from a DO block is undone', async () => {
    await one(`DO $$BEGIN EXECUTE 'LISTEN from_read_only'; END$$`, { readOnly: true });
    expect(await one('SELECT count(*)::int AS n FROM pg_listening_channels()')).toEqual({ n: 0 });
  });

  test('what a rollback does not undo: a session advisory lock is released, a prepared statement discards the session', async () => {
    await one('SELECT pg_advisory_lock(4343)', { readOnly: true });
    expect(await db.sql(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 4343`)).toEqual([{ n: 0 }]);
    const before = await pid();
    await one(`DO $$BEGIN EXECUTE 'PREPARE from_read_only AS SELECT 1'; END$$`, { readOnly: true });
    expect(await pid()).not.toBe(before);
    expect(await one('SELECT count(*)::int AS n FROM pg_prepared_statements WHERE from_sql')).toEqual({ n: 0 });
  });

  test('a read-only step still cannot write, nor create temp objects', async () => {
    expect((await failure(execute(db.config, { text: `INSERT INTO inbox VALUES ('x')`, readOnly: true }))).code).toBe('READ_ONLY_VIOLATION');
    expect((await failure(execute(db.config, { text: 'CREATE TEMP TABLE t (x int)', readOnly: true }))).code).toBe('READ_ONLY_VIOLATION');
    expect(await db.sql('SELECT count(*)::int AS n FROM inbox')).toEqual([{ n: 0 }]);
  });
});

describe("pg-actions' own named statements", () => {
  // A pool of their own: a fallback to unnamed statements must not change what the other tests see.
  const own = (name: string) => ({ ...db.config, applicationName: `limits-${name}` });

  test('a statement that deallocates them: it fails (its transaction rolled back), is never run twice, and the steps after it work', async () => {
    const config = own('deallocate');
    await execute(config, { text: 'SELECT 1', readOnly: true });
    // A DO block may COMMIT by itself: after it ran, a failure at our probe's Bind is reported, never retried.
    await failure(execute(config, { text: `DO $$BEGIN EXECUTE 'DEALLOCATE ALL'; INSERT INTO inbox VALUES ('once'); END$$` }));
    expect(await db.sql(`SELECT count(*)::int AS n FROM inbox WHERE line = 'once'`)).toEqual([{ n: 0 }]);
    expect((await execute(config, { text: 'SELECT 1 AS ok', readOnly: true })).rows).toEqual([{ ok: 1 }]);
    expect((await execute(config, { text: 'SELECT 2 AS ok' })).rows).toEqual([{ ok: 2 }]);
  });

  test('a statement prepared under one of their names is seen (it is from SQL), never run in their place', async () => {
    const config = own('hijack');
    await db.sql('CREATE TABLE victims (n int)');
    const backend = async () => (await execute(config, { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]!.pid as number;
    await execute(config, { text: 'SELECT 1', readOnly: true }); // parses pg_actions_rollback on this session
    const before = await backend();
    await execute(config, { text: `DO $$BEGIN EXECUTE 'DEALLOCATE pg_actions_rollback'; EXECUTE 'PREPARE pg_actions_rollback AS INSERT INTO victims VALUES (1)'; END$$` });
    expect(await backend()).not.toBe(before);
    for (let i = 0; i < 3; i++) await execute(config, { text: 'SELECT 1', readOnly: true });
    expect(await db.sql('SELECT count(*)::int AS n FROM victims')).toEqual([{ n: 0 }]);
  });
});
