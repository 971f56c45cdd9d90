/**
 * A fault in pg-actions' own value reader (a type parser that throws) runs inside the socket's
 * data handler, where an uncaught exception ends the host process with every flow it runs
 * (REVIEW3 R22, REVIEW4 R27). It must fail the step instead, and discard its connection (the
 * rest of the result is still on the wire). The JSON reader is replaced by one that throws on a
 * marker value; the server, the protocol and the rest of pg-actions are real.
 */
import { jest } from '@jest/globals';

const MARKER = 'pg-actions-test-parser-fault';
const real = await import('../../connection/exact-json.js');
jest.unstable_mockModule('../../connection/exact-json.js', () => ({
  ...real,
  parseExactJson: (text: string): unknown => {
    if (text.includes(MARKER)) throw new RangeError('Maximum call stack size exceeded');
    return real.parseExactJson(text);
  },
}));
const { closeAll, execute } = await import('../../connection/index.js');
const { eventually, failure } = await import('../harness/failures.js');
const { createTestDatabase } = await import('../harness/db.js');

let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase('parser_fault');
});
afterAll(async () => {
  await closeAll();
  await db.drop();
});

test('a reader that throws on a value fails the step with RESULT_UNREADABLE, the host lives, the connection is discarded', async () => {
  // Steps one after the other reuse the pool's one idle session: the failing step runs on `before`'s.
  const before = (await execute(db.config, { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]!.pid as number;
  const error = await failure(execute(db.config, {
    text: `SELECT g AS n, pg_backend_pid() AS pid, jsonb_build_object('v', CASE WHEN g = 2 THEN $1 ELSE 'fine' END) AS doc FROM generate_series(1, 3) g`,
    values: [MARKER],
  }));
  expect(error.code).toBe('RESULT_UNREADABLE');
  expect(error.message).toContain('column "doc"');
  expect(error.message).toContain('Maximum call stack size exceeded');
  // The rest of the result may still be on the wire: that session is closed, never reused.
  const gone = async () => (await db.sql('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [before])).length === 0;
  expect(await eventually(gone, 10_000)).toBe(true);
  const { rows } = await execute(db.config, { text: `SELECT pg_backend_pid() AS pid, '{"v": 1}'::jsonb AS doc` });
  expect(rows).toEqual([{ pid: expect.any(Number), doc: { v: 1 } }]);
  expect(rows[0]!.pid).not.toBe(before);
});
