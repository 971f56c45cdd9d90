/**
 * A pool heals after its server restarts. On a dedicated server, in a file of its own so that
 * pools.test.ts starts none: npm run test:mutation runs that file once per mutant of pools.ts,
 * and a server start per run made every mutant time out.
 */
import { closeAll, execute, type ConnectionConfig } from '../../connection/index.js';
import { disposeStartedServers, startServer, type TestServer } from '../harness/servers.js';

let server: TestServer;

afterAll(async () => {
  await closeAll();
  await disposeStartedServers();
}, 30_000);

async function backendPid(config: unknown): Promise<number> {
  const { rows } = await execute(config, { text: 'SELECT pg_backend_pid() AS pid' });
  return rows[0]!.pid as number;
}

describe('on a dedicated server', () => {
  beforeAll(async () => {
    server = await startServer();
  }, 60_000);

  test('after server.restart() the next steps succeed without the caller doing anything', async () => {
    const config: ConnectionConfig = { host: server.host, port: server.port, user: server.user, password: server.password, database: 'postgres' };
    await backendPid(config); // settles the pool's SSL plan (prefer → plaintext) first
    // several idle pooled connections, all of which the restart kills
    const before = await Promise.all(
      Array.from({ length: 3 }, () => execute(config, { text: 'SELECT pg_backend_pid() AS pid, pg_sleep(0.1)' }).then((r) => r.rows[0]!.pid as number)),
    );
    expect(new Set(before).size).toBe(3);
    await server.restart();
    const sequential: number[] = [];
    for (let i = 0; i < 3; i++) sequential.push(await backendPid(config));
    for (const pid of sequential) expect(before).not.toContain(pid);
    const concurrent = await Promise.all(Array.from({ length: 4 }, () => execute(config, { text: 'SELECT 1 AS one, pg_sleep(0.05)' })));
    expect(concurrent.map((r) => r.rows[0]!.one)).toEqual([1, 1, 1, 1]);
  });
});
