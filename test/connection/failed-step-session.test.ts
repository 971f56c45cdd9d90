/**
 * What a failed step does with its pooled session (execute.ts, `leavesSessionUsable` and the
 * checks after it): an ordinary ERROR on a live session, or a refusal of pg-actions' own after a
 * clean rollback, keeps the session (the next step runs on the same backend, no reconnect per
 * failed step); a session the server has closed is never handed out again. Each test has its own
 * application_name, hence its own pool: one session, whose backend pid tells whether it was kept.
 */
import { execute, type ConnectionConfig, type Statement } from '../../connection/index.js';
import { eventually, failure } from '../harness/failures.js';
import { startWireProxy, type WireProxy } from '../harness/proxy.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('failed_step');

beforeAll(async () => {
  await db.sql('CREATE TABLE accounts (id int PRIMARY KEY, name text)');
  await db.sql(`INSERT INTO accounts VALUES (1, 'Ada')`);
}, 60_000);

function own(applicationName: string): ConnectionConfig {
  return { ...db.config, applicationName };
}

async function backendPid(config: ConnectionConfig): Promise<number> {
  const { rows } = await execute(config, { text: 'SELECT pg_backend_pid() AS pid' });
  return rows[0]!.pid as number;
}

/** The step's session, read from the server: filtered by database and application_name (a shared server has others). */
async function sessionsOf(applicationName: string): Promise<number[]> {
  const rows = await db.sql('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 ORDER BY pid', [db.name, applicationName]);
  return rows.map((row) => row.pid as number);
}

describe('a failed step keeps its healthy pooled session', () => {
  const cases: [string, Statement, string, string | undefined][] = [
    ['a unique violation (Execute Query)', { text: `INSERT INTO accounts VALUES (1, 'again')` }, 'UNIQUE_VIOLATION', '23505'],
    ['a division by zero in a read-only step', { text: 'SELECT 1 / 0 AS x', readOnly: true }, 'INVALID_VALUE', '22012'],
    ['a unique violation in Insert Rows (expected commands)', { text: `INSERT INTO accounts VALUES (1, 'again')`, expectCommands: ['INSERT'], actionName: 'Insert Rows' }, 'UNIQUE_VIOLATION', '23505'],
    ['a cancelled statement (the step timeout: 57014, an ordinary ERROR)', { text: 'SELECT pg_sleep(30)', timeoutMs: 300 }, 'QUERY_TIMEOUT', '57014'],
    ['pg-actions refusing a statement of the wrong kind (rolled back)', { text: 'SELECT 1 AS x', expectCommands: ['UPDATE'], actionName: 'Update Rows' }, 'INVALID_INPUT', undefined],
    ['pg-actions refusing a BEGIN (rolled back)', { text: 'BEGIN' }, 'INVALID_INPUT', undefined],
    ['pg-actions refusing two columns of the same name', { text: 'SELECT 1 AS x, 2 AS x', readOnly: true }, 'INVALID_INPUT', undefined],
  ];
  test.each(cases)('%s', async (name, statement, code, sqlstate) => {
    const applicationName = `failed-step-keep-${cases.findIndex((c) => c[0] === name)}`;
    const config = own(applicationName);
    const pid = await backendPid(config);
    const error = await failure(execute(config, statement));
    expect({ code: error.code, sqlstate: error.sqlstate }).toEqual({ code, sqlstate });
    // The same backend serves the next step: the session went back to the pool, no reconnect.
    expect(await backendPid(config)).toBe(pid);
    expect(await sessionsOf(applicationName)).toEqual([pid]);
    // And it is clean: nothing of the failed step is left (no open transaction, the table as it was).
    const { rows } = await execute(config, { text: 'SELECT count(*)::int AS n, pg_catalog.txid_current_if_assigned() AS xid FROM accounts' });
    expect(rows[0]).toEqual({ n: 1, xid: null });
  }, 60_000);
});

describe('a failed step discards a session that cannot be trusted', () => {
  // transaction_timeout is PostgreSQL 17's; on older servers 57P01 (execute.test) and 08001 (error-paths.test) reach the same path.
  test.each([
    ['read-only', true],
    ['Execute Query', false],
  ])('a FATAL error other than classes 08 and 57P (transaction_timeout, 25P04), %s step: the closed session is never handed out', async (kind, readOnly) => {
    const [{ version }] = (await db.sql('SELECT current_setting($1)::int AS version', ['server_version_num'])) as [{ version: number }];
    if (version < 170000) return expect(version).toBeLessThan(170000);
    const applicationName = `failed-step-fatal-${kind}`;
    const config = own(applicationName);
    const pid = await backendPid(config);
    const error = await failure(execute(config, { text: `SELECT set_config('transaction_timeout', '200', true), pg_sleep(5)`, readOnly }));
    expect({ code: error.code, sqlstate: error.sqlstate }).toEqual({ code: 'DATABASE_ERROR', sqlstate: '25P04' });
    const next = await backendPid(config);
    expect(next).not.toBe(pid);
    // The FATAL backend leaves pg_stat_activity only once its process has exited, which on a busy machine can be
    // after the next step's new session answered: wait for it, then the step's sessions are the new one alone.
    let sessions: number[] = [];
    await eventually(async () => (sessions = await sessionsOf(applicationName)).length === 1);
    expect(sessions).toEqual([next]);
  }, 60_000);
});

describe('a failed step that keeps its session also keeps what pg-actions knows of it', () => {
  // The failure path resets the session (RESET ALL, the limits set again) and notes that its limits are set:
  // the next step sends none. Counted on the wire: every set_config('statement_timeout', …) text the client
  // sends (the proxy switches them to 0; a named statement after its Parse is only bound, so it sends no text).
  let counter: WireProxy;
  beforeAll(async () => {
    counter = await startWireProxy(db.config as { host: string; port: number }, { stripStatementTimeout: true });
  }, 30_000);
  afterAll(async () => {
    await counter?.close();
  }, 30_000);

  test('an ordinary ERROR: the session reset sets the limits once, the next step sends them no more', async () => {
    const config: ConnectionConfig = { ...own('failed-step-limits'), host: '127.0.0.1', port: counter.port, sslMode: 'disable' };
    const pid = await backendPid(config);
    await backendPid(config); // every named statement of a step parsed by now
    const settled = counter.timeoutsStripped;
    expect(await backendPid(config)).toBe(pid);
    expect(counter.timeoutsStripped).toBe(settled); // a step on a session that has its limits sends none
    const error = await failure(execute(config, { text: 'SELECT 1 / 0 AS x' }));
    expect(error.sqlstate).toBe('22012');
    expect(counter.timeoutsStripped).toBe(settled + 1); // the failure path's reset sets them again, once
    expect(await backendPid(config)).toBe(pid);
    expect(await backendPid(config)).toBe(pid);
    expect(counter.timeoutsStripped).toBe(settled + 1);
  }, 60_000);
});
