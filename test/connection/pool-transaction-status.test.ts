/**
 * The transaction status each ReadyForQuery reports (pools.ts' ReportingClient), which execute.ts
 * reads where a command tag cannot tell: behind a transaction pooler, a VACUUM refused inside the
 * step's own BEGIN (25001) leaves that transaction failed ('E'), and only the status says a
 * ROLLBACK must come before the VACUUM runs again alone. `pooler: 'transaction'` straight to the
 * suite's server (pg-actions behaves as behind PgBouncer: its own BEGIN, the reset in the step).
 */
import { closeAll, execute, resolveConfig, type ConnectionConfig } from '../../connection/index.js';
import { checkout, poolFor, settledTransactionStatus, transactionStatus } from '../../connection/pools.js';
import { serverLogin } from '../harness/db.js';
import { startMessageRelay, type MessageRelay } from '../harness/message-relay.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('pool_tx_status');
/**
 * Holds back what follows each ErrorResponse ('E'), so the ReadyForQuery after a failed statement
 * always arrives after pg has rejected the query: the order a loaded machine gives now and then.
 */
let relay: MessageRelay;
/** Holds what follows a 25001 ErrorResponse (a statement refused in a transaction block) for an hour: a stalled connection. */
let stalled: MessageRelay;
const isError = (message: Buffer, sqlstate?: string) => message[0] === 0x45 && (sqlstate === undefined || message.includes(`C${sqlstate}\0`));

beforeAll(async () => {
  relay = await startMessageRelay(serverLogin(), () => (message) => (isError(message) ? { holdAfterMs: 150 } : undefined));
  stalled = await startMessageRelay(serverLogin(), () => (message) => (isError(message, '25001') ? { holdAfterMs: 3_600_000 } : undefined));
}, 60_000);
afterAll(async () => {
  await closeAll();
  await relay?.close();
  await stalled?.close();
}, 30_000);

test("a pooled client's status follows each ReadyForQuery: idle, in a transaction block, in a failed one, idle again", async () => {
  const config = resolveConfig({ ...db.config, host: '127.0.0.1', port: relay.port, sslMode: 'disable', applicationName: 'pool-tx-status-direct' });
  const client = await checkout(poolFor(config), 10_000);
  try {
    const seen: string[] = [transactionStatus(client)];
    const atRejection: string[] = [];
    for (const sql of ['BEGIN', 'SELECT 1', 'SELECT 1 / 0', 'ROLLBACK']) {
      await client.query(sql).catch(() => atRejection.push(transactionStatus(client)));
      seen.push(await settledTransactionStatus(client));
    }
    // The race is real: pg rejected the failed SELECT while the last status was still 'T'.
    expect(atRejection).toEqual(['T']);
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

test("behind a transaction pooler, a connection that stalls after VACUUM's refusal still ends the step at its deadline (REVIEW12 R182)", async () => {
  await db.sql('CREATE TABLE IF NOT EXISTS swept (id int)');
  const config: ConnectionConfig = { ...db.config, host: '127.0.0.1', port: stalled.port, sslMode: 'disable', applicationName: 'pool-tx-stalled', pooler: 'transaction', statementTimeoutMs: 1500 };
  const started = performance.now();
  const error = await execute(config, { text: 'VACUUM swept' }).catch((caught: unknown) => caught as { code?: string });
  expect(error).toMatchObject({ code: 'QUERY_TIMEOUT' });
  // The deadline, not the hour the relay holds the ReadyForQuery back (nor the OS's keepalive).
  expect(performance.now() - started).toBeLessThan(20_000);
}, 60_000);
