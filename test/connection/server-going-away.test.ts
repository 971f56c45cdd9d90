/**
 * Mapping paths that need a server of their own, stopped and crashed on purpose: a server
 * shutting down (57P03) and a server process crash (57P02). (Kept apart from error-paths.test.ts
 * so that runs of those tests alone, as npm run test:mutation makes, start no server.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { closeAll, execute, type ConnectionConfig, type ErrorCode, type PgActionsError } from '../../connection/index.js';
import { runningStatement, type AdminSql } from '../harness/activity.js';
import { eventually, failure } from '../harness/failures.js';
import { disposeStartedServers, startServer, type TestServer } from '../harness/servers.js';

let dedicated: TestServer; // shut down and crashed on purpose

beforeAll(async () => {
  dedicated = await startServer();
}, 60_000);

afterAll(async () => {
  await closeAll();
  await disposeStartedServers();
}, 60_000);

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<PgActionsError> {
  const error = await failure(promise);
  expect({ code: error.code, message: error.message }).toEqual({ code, message: expect.any(String) });
  expect(error.fixes.length).toBeGreaterThan(0);
  return error;
}

/** Runs `use` with an admin session on a dedicated server's postgres database. */
async function onServer<T>(server: TestServer, use: (sql: AdminSql, client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: server.url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await use(async (text, values) => (await client.query(text, values)).rows, client);
  } finally {
    await client.end().catch(() => {});
  }
}

describe('a server going away', () => {
  const config = (): ConnectionConfig => ({ host: dedicated.host, port: dedicated.port, user: dedicated.user, password: dedicated.password, database: 'postgres', sslMode: 'disable' });
  const postmasterPid = () => Number(readFileSync(join(dedicated.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);

  test('a server process crashes: the step\'s session ends with CONNECTION_LOST (57P02 comes as a warning); after recovery the next step works', async () => {
    const pending = expectCode(execute({ ...config(), applicationName: 'crash-victim' }, { text: `SELECT pg_sleep(30), 'crash-victim'` }), 'CONNECTION_LOST');
    await onServer(dedicated, async (sql) => {
      await runningStatement(sql, 'postgres', 'crash-victim', `'crash-victim'`);
      // Another backend dies by SIGKILL: the postmaster ends every session and recovers.
      const [{ pid }] = (await sql('SELECT pg_backend_pid() AS pid')) as [{ pid: number }];
      process.kill(pid, 'SIGKILL');
    });
    const error = await pending;
    expect(error.message).toContain(`${dedicated.host}:${dedicated.port}`);
    let last: unknown;
    expect(await eventually(async () => {
      try {
        last = await execute(config(), { text: 'SELECT 1 AS one' });
        return true;
      } catch (error) {
        last = error;
        return false;
      }
    }, 15_000)).toBe(true);
    expect((last as { rows: unknown[] }).rows).toEqual([{ one: 1 }]);
    await closeAll();
  }, 60_000);

  test('a server shutting down (smart shutdown, 57P03) → CONNECTION_REFUSED', async () => {
    await closeAll();
    const error = await onServer(dedicated, async (sql) => {
      expect(await sql('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      // Smart shutdown waits for this open session; meanwhile it refuses new ones with 57P03.
      process.kill(postmasterPid(), 'SIGTERM');
      let refused: PgActionsError | undefined;
      await eventually(async () => {
        refused = await failure(execute(config(), { text: 'SELECT 1' }));
        return refused.sqlstate === '57P03';
      }, 5000);
      await dedicated.stop(); // a fast shutdown ends the waiting session and the server
      return refused!;
    });
    expect(error.code).toBe('CONNECTION_REFUSED');
    expect(error.sqlstate).toBe('57P03');
    expect(error.message).toMatch(/shutting down/);
    await dedicated.start();
    expect((await execute(config(), { text: 'SELECT 2 AS two' })).rows).toEqual([{ two: 2 }]);
  }, 60_000);
});
