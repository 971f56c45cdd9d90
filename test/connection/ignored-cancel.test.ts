/**
 * A statement that catches query_canceled (a PL/pgSQL loop with an EXCEPTION clause) survives
 * both the server's statement_timeout and the CancelRequest. The step must still end it on the
 * server, not only report a timeout, and say what happened.
 */
import { execute, type ConnectionConfig } from '../../connection/index.js';
import { runningStatement, stoppedRunning, terminateBackendsOf } from '../harness/activity.js';
import { failure } from '../harness/failures.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('ignores_cancel', {
  beforeDrop: async () => {
    for (const name of ['ignores-cancel-direct', 'ignores-cancel-session', 'ignores-cancel-no-check']) await terminateBackendsOf(db.sql, db.name, name).catch(() => {});
  },
});
let serverVersion = 0;
beforeAll(async () => {
  serverVersion = Number((await db.sql<{ v: string }>(`SELECT current_setting('server_version_num') AS v`))[0]!.v);
}, 60_000);

const loop = (marker: string, noCheck = false) =>
  `/* ${marker} */ DO $$ BEGIN ${noCheck ? checkOff : ''}LOOP BEGIN PERFORM pg_sleep(0.2); EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$`;
/** The connection check switched off for the session (PostgreSQL 14+; before 14 there is none): a cut socket goes unnoticed. */
const checkOff = `IF current_setting('server_version_num')::int >= 140000 THEN PERFORM set_config('client_connection_check_interval', '0', false); END IF; `;

async function runIgnoringCancel(applicationName: string, extra: Partial<ConnectionConfig> = {}, noCheck = false) {
  const config: ConnectionConfig = { ...db.config, applicationName, ...extra };
  const marker = `${applicationName.replace(/-/g, '_')}_${Date.now()}`;
  const pending = failure(execute(config, { text: loop(marker, noCheck), timeoutMs: 1000 }));
  const backend = await runningStatement(db.sql, db.name, applicationName, marker);
  const error = await pending;
  return { config, error, backend };
}

test('on a direct connection its backend is terminated: gone from the server, the error says it ignored the cancel, the next step works', async () => {
  const { config, error, backend } = await runIgnoringCancel('ignores-cancel-direct');
  expect(error.code).toBe('QUERY_TIMEOUT');
  expect(error.message).toContain('kept running after it was cancelled');
  const { stopped, state } = await stoppedRunning(db.sql, db.name, backend.pid, 5000, 'gone');
  expect({ stopped, state }).toEqual({ stopped: true, state: 'gone' });
  expect((await execute(config, { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
}, 30_000);

test('behind a pooler (no backend pid to terminate) PostgreSQL 14+ ends it once the connection is cut', async () => {
  const { config, error, backend } = await runIgnoringCancel('ignores-cancel-session', { pooler: 'session' });
  expect(error.code).toBe('QUERY_TIMEOUT');
  const { stopped, state } = await stoppedRunning(db.sql, db.name, backend.pid, 5000, 'gone');
  // client_connection_check_interval exists from PostgreSQL 14; before it nothing but a terminate can stop the loop.
  expect({ stopped, state }).toEqual(serverVersion >= 140000 ? { stopped: true, state: 'gone' } : { stopped: false, state: 'active' });
  expect((await execute(config, { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
}, 30_000);

test('on a direct connection, a statement that also switches the connection check off (as any before PostgreSQL 14): the terminate alone ends it', async () => {
  const { error, backend } = await runIgnoringCancel('ignores-cancel-no-check', {}, true);
  expect(error.code).toBe('QUERY_TIMEOUT');
  expect(error.message).toContain('kept running after it was cancelled');
  const { stopped, state } = await stoppedRunning(db.sql, db.name, backend.pid, 5000, 'gone');
  expect({ stopped, state }).toEqual({ stopped: true, state: 'gone' });
}, 30_000);
