/**
 * Behind a transaction pooler a failed step resets its server connection in the same round trip
 * (ROLLBACK, advisory locks, sequences, SQL-prepared statements: execute.ts'
 * TRANSACTION_POOLER_ERROR_RESET). When that reset itself fails on a live connection, what it
 * should have undone may still be there: the connection is discarded, never handed to the next step.
 * Here the reset's DO block fails because the database has no PL/pgSQL (dropped, as a hardened
 * database may have it). `pooler: 'transaction'` straight to the server: one pooled connection, one
 * backend, so the backend pid tells whether it was kept.
 */
import { execute, type ConnectionConfig } from '../../connection/index.js';
import { failure } from '../harness/failures.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('pooler_reset');

async function backendPid(config: ConnectionConfig): Promise<number> {
  const { rows } = await execute(config, { text: 'SELECT pg_backend_pid() AS pid' });
  return rows[0]!.pid as number;
}

test('a failed step whose pooler reset fails (no PL/pgSQL for its DO block): the connection is discarded', async () => {
  const config: ConnectionConfig = { ...db.config, applicationName: 'pooler-reset-fails', pooler: 'transaction' };
  const divide = { text: 'SELECT 1 / 0 AS x' };
  // With PL/pgSQL the reset goes through and the failed step's connection is kept.
  const pid = await backendPid(config);
  expect((await failure(execute(config, divide))).sqlstate).toBe('22012');
  expect(await backendPid(config)).toBe(pid);
  await db.sql('DROP EXTENSION plpgsql');
  expect(await backendPid(config)).toBe(pid); // a step that succeeds still keeps it (no DO block on that path)
  const error = await failure(execute(config, divide));
  expect({ code: error.code, sqlstate: error.sqlstate }).toEqual({ code: 'INVALID_VALUE', sqlstate: '22012' });
  expect(await backendPid(config)).not.toBe(pid);
}, 60_000);
