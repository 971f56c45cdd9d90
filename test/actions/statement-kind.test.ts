/**
 * Update Rows and Delete Rows refuse, before anything runs, a write of another kind hidden in
 * the statement (actions/statement-kind.ts): each kind of hidden write, named, and nothing
 * written. Against a real server.
 */
import { useTestDatabase } from '../harness/use-test-database.js';
import { failure, run } from './helpers.js';

const db = useTestDatabase('statement_kind');

beforeAll(async () => {
  await db.sql('CREATE TABLE people (id int PRIMARY KEY, a text)');
  await db.sql('CREATE TABLE canary (id int PRIMARY KEY)');
}, 60_000);

beforeEach(async () => {
  await db.sql('TRUNCATE people, canary');
  await db.sql(`INSERT INTO people VALUES (1, 'a1'), (2, 'a2')`);
  await db.sql('INSERT INTO canary VALUES (1), (2)');
});

const state = async () => ({ people: await db.sql('SELECT * FROM people ORDER BY id'), canary: await db.sql('SELECT * FROM canary ORDER BY id') });

test.each([
  ['update', 'Update Rows', 'UPDATE', 'an UPDATE', `WITH u AS (UPDATE canary SET id = id + 10 RETURNING id) DELETE FROM people WHERE id IN (SELECT id - 10 FROM u)`, 'delete-rows', 'Delete Rows', 'DELETE'],
  ['delete', 'Delete Rows', 'DELETE', 'a DELETE', `WITH d AS (DELETE FROM canary RETURNING id) UPDATE people SET a = 'x' WHERE id IN (SELECT id FROM d)`, 'update-rows', 'Update Rows', 'UPDATE'],
  ['insert', 'Update Rows', 'UPDATE', 'an INSERT', `WITH i AS (INSERT INTO canary VALUES (3) RETURNING id) UPDATE people SET a = 'x' WHERE id IN (SELECT id FROM i)`, 'update-rows', 'Update Rows', 'UPDATE'],
  ['merge', 'Delete Rows', 'DELETE', 'a MERGE', `WITH m AS (MERGE INTO canary c USING (SELECT 3 AS id) s ON c.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id) RETURNING c.id) DELETE FROM people WHERE id IN (SELECT id FROM m)`, 'delete-rows', 'Delete Rows', 'DELETE'],
])('a hidden write (%s) is refused and named: %s', async (_label, _unused, _k, named, query, action, actionName, kind) => {
  const before = await state();
  const error = await failure(action, { connection: db.config, input: { query } });
  expect(error.code).toBe('INVALID_INPUT');
  expect(error.message).toBe(`${actionName} only runs ${kind} statements; this one also contains ${named} inside a WITH clause. Nothing was run.`);
  expect(error.problems).toEqual([`input.query contains ${named} inside a WITH clause: ${actionName} runs only ${kind}`]);
  expect(await state()).toEqual(before);
});

test('reads in a WITH clause, and row locks in a subquery, are not writes', async () => {
  expect(await run('update-rows', { connection: db.config, input: { query: `WITH r AS (SELECT id FROM canary FOR UPDATE) UPDATE people SET a = 'w' WHERE id IN (SELECT id FROM r)` } })).toEqual({ rowCount: 2 });
  expect(await run('delete-rows', { connection: db.config, input: { query: `DELETE FROM people WHERE id IN (SELECT id FROM canary FOR NO KEY UPDATE)` } })).toEqual({ rowCount: 2 });
});

test.each([
  ['update-rows', 'DELETE', `DELETE FROM canary WHERE id = nextval('kind_probe')`],
  ['update-rows', 'EXPLAIN', `EXPLAIN ANALYZE UPDATE canary SET id = nextval('kind_probe')`],
  ['delete-rows', 'UPDATE', `UPDATE canary SET id = nextval('kind_probe')`],
])('%s refuses a top-level %s from the parse tree: it never reaches the server (a sequence, which no rollback undoes, is untouched)', async (action, kind, query) => {
  await db.sql('DROP SEQUENCE IF EXISTS kind_probe; CREATE SEQUENCE kind_probe START 100');
  const before = await state();
  const error = await failure(action, { connection: db.config, input: { query } });
  expect(error.code).toBe('INVALID_INPUT');
  expect(error.message).toMatch(new RegExp(`this one is an? ${kind}\\. Nothing was run\\.$`));
  expect(await db.sql('SELECT is_called FROM kind_probe')).toEqual([{ is_called: false }]);
  expect(await state()).toEqual(before);
});
