/**
 * connection/statement.ts, what the mutation run of lines 1-261 (2026-11-30) found unpinned: the
 * shape cache's character bound at exactly 1 MiB (a file of its own: the cache is per module, so
 * it starts empty here and the count is exact), and a run that never passed the byte cap saying so
 * (execute() reads `overflowed` to call a failure RESULT_TOO_LARGE).
 */
import { jest } from '@jest/globals';
import pg from 'pg';
import { closeAll, execute } from '../../connection/index.js';
import { installGate } from '../../connection/result-gate.js';
import { shapeCacheSize, StatementRun, type StatementPlan } from '../../connection/statement.js';
import { failure } from '../harness/failures.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('statement_bounds');
jest.setTimeout(20_000);
let client: pg.Client;

beforeAll(async () => {
  client = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
  client.on('error', () => {}); // the database is dropped after the tests, its sessions ended
  installGate(client.connection, 1 << 30);
  await client.connect();
}, 30_000);
afterAll(async () => {
  await client.end().catch(() => undefined);
  await closeAll();
}, 30_000);

function run(text: string): Promise<unknown> {
  const plan: StatementPlan = { text, values: [], before: [], after: [], maxResultBytes: 1_000_000, discardRows: false, typeParser: (oid) => pg.types.getTypeParser(oid) };
  const statement = new StatementRun(plan, () => undefined);
  void client.query(statement);
  return statement.done;
}

test('the shape cache keeps texts up to exactly 1 MiB in all, and starts again only past it', async () => {
  expect(shapeCacheSize()).toEqual({ texts: 0, chars: 0 });
  const text = (i: number) => {
    const head = `SELECT 1 AS one -- ${String(i).padStart(3, '0')} `;
    return head + 'x'.repeat(16 * 1024 - head.length);
  };
  for (let i = 0; i < 64; i++) await run(text(i)); // 64 × 16 KiB = 1 MiB: full, nothing dropped
  expect(shapeCacheSize()).toEqual({ texts: 64, chars: 1024 * 1024 });
  await run('SELECT 2 AS two'); // one character more than 1 MiB: the cache starts again with it
  expect(shapeCacheSize()).toEqual({ texts: 1, chars: 'SELECT 2 AS two'.length });
});

test('a step that fails without passing the cap is reported by its own error, not as RESULT_TOO_LARGE', async () => {
  const error = await failure(execute(db.config, { text: 'SELEC 1' }));
  expect([error.code, error.sqlstate]).toEqual(['SYNTAX_ERROR', '42601']);
  const cast = await failure(execute({ ...db.config, maxResultBytes: 4096 }, { text: `SELECT 'x'::int AS n` }));
  expect([cast.code, cast.sqlstate]).toEqual(['INVALID_VALUE', '22P02']);
});
