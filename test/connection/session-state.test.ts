/**
 * A step leaves no trace on its pooled session, however the statement changed it: the next step
 * (on the same pool, so the same backend when nothing was detected) sees a fresh session.
 */
import { execute } from '../../connection/index.js';
import { failure } from '../harness/failures.js';
import { serverLogin } from '../harness/db.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { describeWithPgBouncer, usePgBouncer } from '../harness/pgbouncer.js';

const db = useTestDatabase('session');
let reader: string;
beforeAll(async () => {
  reader = `${db.name}_reader`;
  await db.sql(`CREATE ROLE ${reader}`);
  await db.sql(`GRANT ${reader} TO CURRENT_USER`);
  await db.sql(`CREATE TABLE users (id int PRIMARY KEY, name text)`);
  await db.sql(`INSERT INTO users VALUES (1, 'Ada')`);
  await db.sql(`CREATE TABLE inbox (line text)`);
});
afterAll(async () => {
  await db.sql(`DROP ROLE IF EXISTS ${reader}`).catch(() => undefined);
});

const one = async (text: string, options: object = {}) => (await execute(db.config, { text, ...options })).rows[0]!;
const pid = async () => (await one('SELECT pg_backend_pid() AS pid')).pid as number;

describe('what a statement leaves on its session does not reach the next step', () => {
  test.each([
    ['set_config(role) in a plain step', `SELECT set_config('role', '%reader%', false)`, {}],
    ['SET ROLE through a DO block, even in a read-only step', `DO $$BEGIN EXECUTE 'SET ROLE %reader%'; END$$`, { readOnly: true }],
    ['set_config(role) in a read-only step', `SELECT set_config('role', '%reader%', false)`, { readOnly: true }],
    ['set_config(role) in an expected-command step', `UPDATE users SET name = name WHERE set_config('role', '%reader%', false) IS NOT NULL`, { expectCommands: ['UPDATE'] }],
  ])('%s', async (_, text, options) => {
    await execute(db.config, { text: text.replace('%reader%', reader), ...options });
    expect(await one('SELECT current_user = session_user AS same')).toEqual({ same: true });
  });

  test('settings changed with set_config: float digits, search_path, statement_timeout', async () => {
    await one(`SELECT set_config('extra_float_digits', '-15', false) AS a, set_config('search_path', 'pg_catalog', false) AS b,
                      set_config('statement_timeout', '0', false) AS c`);
    expect(await one('SELECT pi() AS pi')).toEqual({ pi: Math.PI });
    expect(await one(`SELECT current_setting('search_path') AS p, current_setting('statement_timeout') AS t`)).toEqual({ p: '"$user", public', t: '1min' });
  });

  test('a temp table that shadows a real one', async () => {
    await one(`CREATE TEMP TABLE users AS SELECT 1 AS id, 'shadow' AS name`);
    expect(await one('SELECT name FROM users WHERE id = 1')).toEqual({ name: 'Ada' });
  });

  test('a session advisory lock is released at the end of the step, also when the step fails', async () => {
    await one('SELECT pg_advisory_lock(4242)');
    const held = () => db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242`);
    expect(await held()).toEqual([{ n: 0 }]);
    await failure(execute(db.config, { text: 'SELECT pg_advisory_lock(4242), 1 / 0' }));
    expect(await held()).toEqual([{ n: 0 }]);
  });

  test('prepared statements, holdable cursors and LISTEN', async () => {
    await one('PREPARE leftover AS SELECT 1');
    await one('DECLARE kept CURSOR WITH HOLD FOR SELECT 1');
    await one('LISTEN somewhere');
    expect(await one(`SELECT (SELECT count(*) FROM pg_prepared_statements WHERE from_sql)::int AS p, (SELECT count(*) FROM pg_cursors WHERE name <> '')::int AS c,
                             (SELECT count(*) FROM pg_listening_channels())::int AS l`)).toEqual({ p: 0, c: 0, l: 0 });
  });

  test('prepared statements and holdable cursors made inside a function or DO block (no tag tells)', async () => {
    await db.sql(`CREATE OR REPLACE FUNCTION hold_cursor() RETURNS int LANGUAGE sql AS $$ DECLARE kept_in_function CURSOR WITH HOLD FOR SELECT 1; SELECT 1 $$`);
    await one(`DO $$BEGIN EXECUTE 'PREPARE hidden AS SELECT 1'; END$$`);
    await one('SELECT hold_cursor()');
    expect(await one(`SELECT (SELECT count(*) FROM pg_prepared_statements WHERE from_sql)::int AS p, (SELECT count(*) FROM pg_cursors WHERE name <> '')::int AS c`)).toEqual({ p: 0, c: 0 });
  });

  test('DISCARD ALL (its tag is "DISCARD ALL", not "DISCARD") closes the session', async () => {
    const first = await pid();
    await one('DISCARD ALL');
    expect(await pid()).not.toBe(first);
  });

  test('an ordinary step keeps its pooled session (nothing to reset)', async () => {
    const first = await pid();
    await one('SELECT name FROM users');
    await failure(execute(db.config, { text: 'SELECT 1 / 0' }));
    await one('SELECT name FROM users', { readOnly: true });
    expect(await pid()).toBe(first);
  });
});

test('COPY FROM STDIN fails cleanly and the next step runs at once', async () => {
  const error = await failure(execute(db.config, { text: 'COPY inbox FROM STDIN', timeoutMs: 20_000 }));
  expect(error.code).toBe('INVALID_INPUT');
  expect(error.message).toMatch(/FROM STDIN reads data from the client/);
  expect(await db.sql('SELECT count(*)::int AS n FROM inbox')).toEqual([{ n: 0 }]);
  const started = Date.now();
  expect(await one('SELECT 1 AS ok', { timeoutMs: 20_000 })).toEqual({ ok: 1 });
  expect(Date.now() - started).toBeLessThan(2000); // was: hung until the 20 s timeout
});

describeWithPgBouncer('an undeclared transaction-mode pooler', () => {
  const bouncer = usePgBouncer({ server: serverLogin(), mode: 'transaction', poolSize: 2 });

  test('the named probe meets server connections that have it or not: the pool falls back to the unnamed probe, no step fails', async () => {
    // pooler left at "none": pg-actions believes it talks to the server, so it parses its probe once per connection.
    const connection = bouncer.config(db.name);
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all([1, 2, 3, 4].map((n) => execute(connection, { text: 'SELECT $1::int AS n', values: [n] })));
      expect(results.map((result) => result.rows[0])).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    }
  });
});
