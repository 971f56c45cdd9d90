/**
 * A COMMIT that waits for a synchronous standby past the step's deadline (REVIEW3 R16): the write is
 * committed on this server (cancelling the wait does not undo it), so the step must not say
 * "cancelled" (QUERY_TIMEOUT invites a retry, i.e. a double write): COMMIT_UNCONFIRMED, not retryable.
 * A real server whose synchronous_standby_names names a standby that never connects.
 */
import pg from 'pg';
import { closeAll, execute, type ConnectionConfig } from '../../connection/index.js';
import { eventually, failure } from '../harness/failures.js';
import { disposeStartedServers, startServer, type TestServer } from '../harness/servers.js';

let server: TestServer;
let admin: pg.Client;
const config = (): ConnectionConfig => ({ host: server.host, port: server.port, user: server.user, password: server.password, database: 'postgres', sslMode: 'disable' });
const amounts = async () => (await admin.query<{ amount: number }>('SELECT amount FROM payments ORDER BY amount')).rows.map((row) => row.amount);

beforeAll(async () => {
  server = await startServer({ settings: { synchronous_standby_names: 'standby_that_is_down' } });
  admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('SET synchronous_commit = local'); // this session's commits do not wait
  await admin.query('CREATE TABLE payments (id serial PRIMARY KEY, amount int)');
}, 60_000);
afterAll(async () => {
  await closeAll();
  await admin?.end();
  await disposeStartedServers();
});

test('Execute Query: COMMIT_UNCONFIRMED, the write is there once', async () => {
  const error = await failure(execute(config(), { text: 'INSERT INTO payments (amount) VALUES (100)', timeoutMs: 1500 }));
  expect(error.code).toBe('COMMIT_UNCONFIRMED');
  expect(error.retryable).toBe(false);
  expect(error.message).toMatch(/was committed, but only after the step's timeout of 1500 ms/);
  expect(await amounts()).toEqual([100]);
});

test('a tag-checked write (Insert Rows): COMMIT_UNCONFIRMED, the write lands once the wait is cancelled', async () => {
  const error = await failure(execute(config(), { text: 'INSERT INTO payments (amount) VALUES (200)', expectCommands: ['INSERT'], timeoutMs: 1500 }));
  expect(error.code).toBe('COMMIT_UNCONFIRMED');
  expect(error.message).toMatch(/may be committed: check before running the step again/);
  expect(await eventually(async () => (await amounts()).includes(200), 10_000, 100)).toBe(true);
  expect(await amounts()).toEqual([100, 200]);
});

test('a read does not wait for the standby; a statement cut by the deadline is still QUERY_TIMEOUT', async () => {
  await expect(execute(config(), { text: 'SELECT count(*)::int AS n FROM payments', timeoutMs: 1500 })).resolves.toMatchObject({ rows: [{ n: 2 }] });
  expect((await failure(execute(config(), { text: 'SELECT pg_sleep(5)', timeoutMs: 500 }))).code).toBe('QUERY_TIMEOUT');
});
