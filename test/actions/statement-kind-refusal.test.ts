/**
 * What Update Rows and Delete Rows say when they refuse a statement before it runs
 * (actions/statement-kind.ts): the statement's kind named as its command tag, with its article,
 * the field and the fix. statement-kind.test and behaviour.test show nothing runs; this file pins
 * the words a flow author reads, for every kind the refusal names and for one it does not know.
 */
import { PgActionsError } from '../../connection/index.js';
import { refuseOtherWrites } from '../../actions/statement-kind.js';

function refusal(sql: string, kind: 'UPDATE' | 'DELETE', actionName: string): PgActionsError {
  try {
    refuseOtherWrites(sql, kind, actionName);
  } catch (error) {
    if (error instanceof PgActionsError) return error;
    throw error;
  }
  throw new Error(`not refused: ${sql}`);
}

const KINDS: [string, string][] = [
  ['SELECT 1', 'a SELECT'],
  ['INSERT INTO t VALUES (1)', 'an INSERT'],
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', 'a MERGE'],
  ['CREATE TABLE t2 (id int)', 'a CREATE TABLE'],
  ['CREATE TABLE t2 AS SELECT 1', 'a CREATE TABLE AS'],
  ['DROP TABLE t', 'a DROP'],
  ['TRUNCATE t', 'a TRUNCATE'],
  ['ALTER TABLE t ADD COLUMN c int', 'an ALTER TABLE'],
  ['EXPLAIN ANALYZE DELETE FROM t', 'an EXPLAIN'],
  ['COPY t FROM STDIN', 'a COPY'],
  ['CALL p()', 'a CALL'],
  ['DO $$ BEGIN END $$', 'a DO'],
  ['CREATE INDEX ON t (id)', 'a CREATE INDEX'],
  ['SET search_path = public', 'a SET'],
  ['BEGIN', 'a transaction command'],
  // Not in the table: named from its parse-tree node, as PostgreSQL's own words.
  ['VACUUM t', 'a VACUUM'],
  ['CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$', 'a CREATE FUNCTION'],
  ['GRANT SELECT ON t TO PUBLIC', 'a GRANT'],
];

test.each(KINDS)('Update Rows refuses %s, naming it %s', (sql, named) => {
  const error = refusal(sql, 'UPDATE', 'Update Rows');
  expect(error.code).toBe('INVALID_INPUT');
  expect(error.message).toBe(`Update Rows only runs UPDATE statements; this one is ${named}. Nothing was run.`);
  expect(error.problems).toEqual(['input.query must be an UPDATE statement']);
  expect(error.fixes).toEqual(['Write an UPDATE statement, or use the action made for this one (Execute Query runs any statement).']);
});

test.each([
  ['UPDATE t SET id = 2', 'an UPDATE'],
  ['SELECT 1', 'a SELECT'],
])('Delete Rows refuses %s, naming it %s', (sql, named) => {
  const error = refusal(sql, 'DELETE', 'Delete Rows');
  expect(error.message).toBe(`Delete Rows only runs DELETE statements; this one is ${named}. Nothing was run.`);
  expect(error.problems).toEqual(['input.query must be a DELETE statement']);
  expect(error.fixes).toEqual(['Write a DELETE statement, or use the action made for this one (Execute Query runs any statement).']);
});

test('their own kind passes: an UPDATE for Update Rows, a DELETE for Delete Rows, an empty text to the server', () => {
  expect(() => refuseOtherWrites('UPDATE t SET id = 2 WHERE id = 1', 'UPDATE', 'Update Rows')).not.toThrow();
  expect(() => refuseOtherWrites('DELETE FROM t WHERE id = 1', 'DELETE', 'Delete Rows')).not.toThrow();
  expect(() => refuseOtherWrites('', 'DELETE', 'Delete Rows')).not.toThrow();
});

test('more than one statement: the count, the field and the fix', () => {
  const error = refusal('UPDATE t SET id = 2; UPDATE t SET id = 3; SELECT 1', 'UPDATE', 'Update Rows');
  expect(error.code).toBe('INVALID_INPUT');
  expect(error.message).toBe('Update Rows runs one UPDATE statement; this text holds 3 statements. Nothing was run.');
  expect(error.problems).toEqual(['input.query holds 3 statements: Update Rows runs one UPDATE']);
  expect(error.fixes).toEqual(['Run one statement per step, or use Execute Query.']);
});

test('a write hidden in a WITH clause: named, with its fix', () => {
  const error = refusal('WITH gone AS (DELETE FROM t RETURNING id) UPDATE t SET id = 0 WHERE id IN (SELECT id FROM gone)', 'UPDATE', 'Update Rows');
  expect(error.problems).toEqual(['input.query contains a DELETE inside a WITH clause: Update Rows runs only UPDATE']);
  expect(error.fixes).toEqual(['Use Execute Query for a statement that changes data in more than one way.']);
});
