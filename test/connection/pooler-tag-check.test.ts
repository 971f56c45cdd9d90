/**
 * Behind a transaction pooler a step without expected commands ends with the pooler's check in a
 * transaction of its own, opened after a COMMIT (connection/execute.ts `poolerChecked`); Insert,
 * Update and Delete Rows must not get that COMMIT: their statement is committed only once its
 * command tag is the expected one (found unpinned by the mutation run of execute.ts 153-291: with
 * `transactionPooler || !expectCommands` the DELETE below was committed, then refused).
 */
import { execute, PgActionsError } from '../../connection/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('pooler_tag_check');

test.each(['transaction', 'none'] as const)('pooler %s: Update Rows refuses a DELETE and nothing is deleted; an UPDATE is committed', async (pooler) => {
  const table = `rows_${pooler}`;
  await db.sql(`CREATE TABLE ${table} (id int PRIMARY KEY, v int); INSERT INTO ${table} SELECT i, 0 FROM generate_series(1, 3) i`);
  const connection = { ...db.config, pooler, applicationName: `pooler-tag-${pooler}` };
  const refused = await execute(connection, { text: `DELETE FROM ${table} RETURNING id`, expectCommands: ['UPDATE'], actionName: 'Update Rows' }).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(refused).toBeInstanceOf(PgActionsError);
  expect((refused as PgActionsError).code).toBe('INVALID_INPUT');
  expect(await db.sql(`SELECT count(*)::int AS n FROM ${table}`)).toEqual([{ n: 3 }]);
  const { rows } = await execute(connection, { text: `UPDATE ${table} SET v = 1 WHERE id = 2 RETURNING id`, expectCommands: ['UPDATE'], actionName: 'Update Rows' });
  expect(rows).toEqual([{ id: 2 }]);
  expect(await db.sql(`SELECT id, v FROM ${table} ORDER BY id`)).toEqual([{ id: 1, v: 0 }, { id: 2, v: 1 }, { id: 3, v: 0 }]);
}, 60_000);
