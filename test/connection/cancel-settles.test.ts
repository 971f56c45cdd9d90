/**
 * Past the step's client deadline (the server's statement_timeout switched off by a proxy, so the client's
 * deadline acts), a CancelRequest the server obeys settles the session: execute.ts `runWith` keeps it after
 * COMMIT_UNCONFIRMED (the statement and its COMMIT are over, the session is clean), and a timeout whose cancel
 * worked does not say the statement ignored the cancel.
 */
import { execute, type ConnectionConfig } from '../../connection/index.js';
import { failure } from '../harness/failures.js';
import { startWireProxy, type WireProxy } from '../harness/proxy.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('cancel_settles');
let proxy: WireProxy;
beforeAll(async () => {
  proxy = await startWireProxy(db.config as { host: string; port: number }, { stripStatementTimeout: true });
  // A deferred trigger makes the COMMIT slow and sleeps through the CancelRequest: the commit goes through,
  // as a wait for a synchronous standby would (REVIEW3 R16).
  await db.sql(`CREATE TABLE late_commits (x int);
    CREATE FUNCTION sleep_through_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(3); RETURN NULL; EXCEPTION WHEN query_canceled THEN RETURN NULL; END $$;
    CREATE CONSTRAINT TRIGGER late AFTER INSERT ON late_commits DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sleep_through_cancel();`);
}, 60_000);
afterAll(() => proxy?.close(), 30_000);

const config = (applicationName: string): ConnectionConfig => ({ ...db.config, applicationName, host: '127.0.0.1', port: proxy.port, sslMode: 'disable' });
const pidOf = async (config: ConnectionConfig) => (await execute(config, { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]!.pid as number;

test('COMMIT_UNCONFIRMED after a cancel the COMMIT settled with: the session is kept, the next step runs on the same backend', async () => {
  const late = config('cancel-settles-commit');
  const before = await pidOf(late);
  const error = await failure(execute(late, { text: 'INSERT INTO late_commits VALUES (1)', timeoutMs: 1000 }));
  expect(error.code).toBe('COMMIT_UNCONFIRMED');
  expect(await db.sql('SELECT x FROM late_commits')).toEqual([{ x: 1 }]);
  expect(await pidOf(late)).toBe(before);
}, 60_000);

test('a statement the cancel ended: QUERY_TIMEOUT saying it was cancelled on the server, not that it ignored the cancel', async () => {
  const error = await failure(execute(config('cancel-settles-sleep'), { text: 'SELECT pg_sleep(30)', timeoutMs: 500 }));
  expect(error.code).toBe('QUERY_TIMEOUT');
  expect(error.message).toBe('The statement did not finish within 500 ms and was cancelled on the server.');
}, 60_000);
