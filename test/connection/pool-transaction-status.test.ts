/**
 * The transaction status each ReadyForQuery reports (pools.ts' ReportingClient), which execute.ts
 * reads where a command tag cannot tell: behind a transaction pooler, a VACUUM refused inside the
 * step's own BEGIN (25001) leaves that transaction failed ('E'), and only the status says a
 * ROLLBACK must come before the VACUUM runs again alone. `pooler: 'transaction'` straight to the
 * suite's server (pg-actions behaves as behind PgBouncer: its own BEGIN, the reset in the step).
 */
import { closeAll, execute, resolveConfig, type ConnectionConfig } from '../../connection/index.js';
import { checkout, poolFor, transactionStatus } from '../../connection/pools.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('pool_tx_status');

afterAll(async () => {
  await closeAll();
}, 30_000);

test("a pooled client's status follows each ReadyForQuery: idle, in a transaction block, in a failed one, idle again", async () => {
  const managed = poolFor(resolveConfig({ ...db.config, applicationName: 'pool-tx-status-direct' }));
  const client = await checkout(managed, 10_000);
  try {
    const seen: string[] = [transactionStatus(client)];
    for (const sql of ['BEGIN', 'SELECT 1', 'SELECT 1 / 0', 'ROLLBACK']) {
      await client.query(sql).catch(() => undefined);
      seen.push(transactionStatus(client));
    }
    expect(seen).toEqual(['I', 'T', 'T', 'E', 'I']);
  } finally {
    client.release(true);
  }
});

test("behind a transaction pooler, VACUUM refused inside the step's BEGIN is rolled back, then run alone", async () => {
  await db.sql('CREATE TABLE swept (id int)');
  const config: ConnectionConfig = { ...db.config, applicationName: 'pool-tx-status', pooler: 'transaction' };
  await expect(execute(config, { text: 'VACUUM swept' })).resolves.toMatchObject({ command: 'VACUUM' });
  await expect(execute(config, { text: 'SELECT 1 AS one' })).resolves.toMatchObject({ rows: [{ one: 1 }] });
}, 60_000);
