/**
 * connection/statement.ts at its edges, against the real server and cheaply enough to run per
 * mutant (npm run test:mutation): the parameter limit itself, result shapes cached by SQL text
 * when the same text returns other columns, and the command tags of every kind of statement.
 */
import { jest } from '@jest/globals';
import pg from 'pg';
import { execute } from '../../connection/index.js';
import { StatementRun } from '../../connection/statement.js';
import { failure } from '../harness/failures.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('statement_edges');
// Each test takes a second or two: a step that never ends fails here, not at a 2-minute bound (mutation runs).
jest.setTimeout(20_000);

test('65,535 values, the protocol\'s limit, are all bound; one more is refused before anything is sent', async () => {
  const count = 65535;
  const text = `SELECT cardinality(ARRAY[${Array.from({ length: count }, (_, i) => `$${i + 1}::int`).join(',')}]) AS n, $${count}::int AS last`;
  const values = Array.from({ length: count }, (_, i) => i + 1);
  expect((await execute(db.config, { text, values })).rows).toEqual([{ n: count, last: count }]);
  const error = await failure(execute(db.config, { text, values: [...values, 0] }));
  expect(error).toMatchObject({
    code: 'INVALID_INPUT',
    message: 'PostgreSQL takes at most 65,535 values in one statement; 65,536 were given.',
    problems: ['input.parameters must have at most 65,535 values (placeholders plus any {{ }})'],
    fixes: ['Pass many values as one array: INSERT … SELECT * FROM pg_catalog.unnest($1::int[], $2::pg_catalog.text[]), or WHERE id OPERATOR(pg_catalog.=) ANY ($1::int[]).'],
  });
});

test('the same SQL text returning other columns (renamed, retyped, added) gets rows of the new shape, not the cached one', async () => {
  await db.sql('CREATE TABLE reshaped (a int)');
  await db.sql('INSERT INTO reshaped VALUES (1)');
  const read = async () => (await execute(db.config, { text: 'SELECT * FROM reshaped' })).rows;
  expect(await read()).toEqual([{ a: 1 }]);
  await db.sql('ALTER TABLE reshaped RENAME COLUMN a TO b');
  expect(await read()).toEqual([{ b: 1 }]);
  await db.sql('ALTER TABLE reshaped ALTER COLUMN b TYPE text');
  expect(await read()).toEqual([{ b: '1' }]);
  await db.sql('ALTER TABLE reshaped ADD COLUMN c int');
  expect(await read()).toEqual([{ b: '1', c: null }]);
  await db.sql('ALTER TABLE reshaped DROP COLUMN c');
  expect(await read()).toEqual([{ b: '1' }]);
});

test('command and row count from every shape of command tag', async () => {
  const run = async (text: string) => {
    const { command, rowCount, rows } = await execute(db.config, { text });
    return { command, rowCount, rows: rows.length };
  };
  expect(await run('CREATE TABLE tagged (id int, v text)')).toEqual({ command: 'CREATE TABLE', rowCount: 0, rows: 0 });
  // "INSERT 0 3": an oid, then the count.
  expect(await run(`INSERT INTO tagged VALUES (1, 'x'), (2, 'y'), (3, 'z')`)).toEqual({ command: 'INSERT', rowCount: 3, rows: 0 });
  expect(await run(`UPDATE tagged SET v = 'w' WHERE id > 1`)).toEqual({ command: 'UPDATE', rowCount: 2, rows: 0 });
  expect(await run('SELECT * FROM tagged')).toEqual({ command: 'SELECT', rowCount: 3, rows: 3 });
  expect(await run(`INSERT INTO tagged VALUES (4, 'q') RETURNING id`)).toEqual({ command: 'INSERT', rowCount: 1, rows: 1 });
  expect(await run('DELETE FROM tagged WHERE id = 4')).toEqual({ command: 'DELETE', rowCount: 1, rows: 0 });
  expect(await run('SELECT * FROM tagged WHERE false')).toEqual({ command: 'SELECT', rowCount: 0, rows: 0 });
  // A tag without a count that returns rows: the count is the rows'.
  expect(await run('SHOW DateStyle')).toEqual({ command: 'SHOW', rowCount: 1, rows: 1 });
  expect(await run('SELECT 1 AS one UNION ALL SELECT 2')).toEqual({ command: 'SELECT', rowCount: 2, rows: 2 });
});

test('JSON whose parsed structure passes the cap fails RESULT_TOO_LARGE though its text is under it; the same text as text passes', async () => {
  // 15 KB of text; each `{` and `,` may become an object or an element (48 bytes each): about 480 KB parsed.
  const text = (type: string) => `SELECT ('[' || repeat('{},', 5000) || '{}]')::${type} AS j`;
  const error = await failure(execute(db.config, { text: text('json'), maxResultBytes: 100_000 }));
  expect([error.code, error.message]).toEqual(['RESULT_TOO_LARGE', 'The result passed the 97.7 KB cap; reading stopped and the query was aborted.']);
  expect(((await execute(db.config, { text: text('text'), maxResultBytes: 100_000 })).rows[0]!.j as string).length).toBe(15_004);
  // Under the cap parsed: the value comes back whole.
  const small = await execute(db.config, { text: `SELECT ('[' || repeat('{},', 500) || '{}]')::jsonb AS j`, maxResultBytes: 100_000 });
  expect((small.rows[0]!.j as unknown[]).length).toBe(501);
  expect((await execute(db.config, { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
});

test('a StatementRun on a connection without a result gate (not a pooled client) fails before sending anything', async () => {
  const client = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
  await client.connect();
  try {
    const run = new StatementRun(
      { text: 'SELECT 1 AS one', values: [], before: [], after: [], maxResultBytes: 1_000_000, discardRows: false, typeParser: () => String },
      () => undefined,
    );
    client.query(run);
    await expect(run.done).rejects.toThrow('pg-actions: this connection has no result gate (not a pooled ReportingClient); nothing was sent.');
    // The connection is still in step: its next query is answered.
    expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
  } finally {
    await client.end();
  }
});

test('onProgress hears about every MiB received, with the rows and bytes so far', async () => {
  const heard: { rows: number; bytes: number }[] = [];
  // 4,000 rows of about 1.1 KB each (text and the gate's per-row overhead): about 4.4 MB.
  const { rows } = await execute(db.config, { text: `SELECT repeat('x', 1000) AS filler FROM generate_series(1, 4000)`, onProgress: (received) => heard.push({ ...received }) });
  expect(rows).toHaveLength(4000);
  expect(heard.length).toBeGreaterThanOrEqual(3);
  expect(heard.length).toBeLessThanOrEqual(5);
  heard.forEach(({ rows, bytes }, i) => {
    const previous = heard[i - 1] ?? { rows: 0, bytes: 0 };
    expect(bytes - previous.bytes).toBeGreaterThanOrEqual(1 << 20);
    // The gate charges a socket chunk's rows as it arrives, before the parser hands them over one by one.
    expect(bytes - previous.bytes).toBeLessThan((1 << 20) + 256 * 1024);
    // Told as each row that passes the next MiB is kept: the count matches the bytes (about 1.1 KB a row).
    expect(rows).toBeGreaterThan(previous.rows);
    expect(bytes / rows).toBeGreaterThan(1000);
    expect(bytes / rows).toBeLessThan(1500);
  });
});

test('discardRows counts rows without keeping them: no cap applies, duplicate names do not matter', async () => {
  const counted = await execute(db.config, { text: `SELECT repeat('x', 1000) AS x, 1 AS x FROM generate_series(1, 3000)`, discardRows: true, maxResultBytes: 1024 });
  expect([counted.command, counted.rowCount, counted.rows]).toEqual(['SELECT', 3000, []]);
});
