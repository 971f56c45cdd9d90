/**
 * pg-actions' own refusals inside execute() (execute.ts `commitIfExpected`, `refuseOpenTransaction`):
 * a statement whose command tag is not one the step runs is rolled back, and a statement that opens
 * a transaction is rolled back too; each error says exactly what happened, with the statement and
 * its values. The actions refuse most wrong statements before running them (statement-kind.ts,
 * "Nothing was run"); these are the refusals after the statement ran, reached through execute().
 */
import { execute, type ConnectionConfig } from '../../connection/index.js';
import { sessionGuard } from '../../connection/session-guard.js';
import { failure } from '../harness/failures.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('step_refusals');

beforeAll(async () => {
  await db.sql('CREATE TABLE items (id int PRIMARY KEY, name text)');
}, 60_000);

const count = async () => ((await db.sql('SELECT count(*)::int AS n FROM items')) as [{ n: number }])[0].n;

describe('a statement of another kind than the step runs is rolled back and refused', () => {
  test('named action, one expected command: the exact message, problem and fix, its write undone', async () => {
    const error = await failure(execute(db.config, { text: 'INSERT INTO items VALUES ($1, $2)', values: [1, 'Ada'], expectCommands: ['UPDATE'], actionName: 'Update Rows' }));
    expect({ code: error.code, message: error.message, problems: error.problems, fixes: error.fixes, query: error.query, parameters: error.parameters }).toEqual({
      code: 'INVALID_INPUT',
      message: 'Update Rows only runs UPDATE statements; this one is an INSERT. It was rolled back: its changes were undone.',
      problems: ['input.query must be an UPDATE statement'],
      fixes: ['Use the action that matches the statement (Execute Query runs any statement).'],
      query: 'INSERT INTO items VALUES ($1, $2)',
      parameters: [1, 'Ada'],
    });
    expect(await count()).toBe(0);
  }, 60_000);

  test('no action name, two expected commands ("a" / "an" by the first letter)', async () => {
    await db.sql(`INSERT INTO items VALUES (10, 'kept')`);
    const error = await failure(execute(db.config, { text: `UPDATE items SET name = 'changed' WHERE id = 10`, expectCommands: ['DELETE', 'INSERT'] }));
    expect(error.message).toBe('This action only runs DELETE or INSERT statements; this one is an UPDATE. It was rolled back: its changes were undone.');
    expect(error.problems).toEqual(['input.query must be a DELETE or an INSERT statement']);
    expect(error.parameters).toBeUndefined();
    expect(await db.sql('SELECT name FROM items WHERE id = 10')).toEqual([{ name: 'kept' }]);
    await db.sql('DELETE FROM items WHERE id = 10');
  }, 60_000);

  test('an empty statement is named as such', async () => {
    const error = await failure(execute(db.config, { text: '-- nothing', expectCommands: ['DELETE'], actionName: 'Delete Rows' }));
    expect(error.message).toBe('Delete Rows only runs DELETE statements; this one is an empty statement. It was rolled back: its changes were undone.');
  }, 60_000);

  test('a statement of the expected kind is committed, and its session (checked clean) goes back to the pool', async () => {
    const config: ConnectionConfig = { ...db.config, applicationName: 'step-refusals-expected' };
    const pid = async () => (await execute(config, { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]!.pid as number;
    const first = await pid();
    const result = await execute(config, { text: 'INSERT INTO items VALUES ($1, $2)', values: [2, 'Grace'], expectCommands: ['UPDATE', 'INSERT'] });
    expect(result.command).toBe('INSERT');
    // Committed by the step itself (seen before any other step runs on that session, which would commit it too).
    expect(await db.sql('SELECT name FROM items WHERE id = 2')).toEqual([{ name: 'Grace' }]);
    expect(await pid()).toBe(first);
    await db.sql('DELETE FROM items WHERE id = 2');
  }, 60_000);
});

describe('a statement that opens a transaction is rolled back and refused', () => {
  test.each(['BEGIN', 'START TRANSACTION'])('%s: the exact message, problem and fixes', async (text) => {
    const error = await failure(execute(db.config, { text, values: [] }));
    expect({ code: error.code, message: error.message, problems: error.problems, fixes: error.fixes, query: error.query, parameters: error.parameters }).toEqual({
      code: 'INVALID_INPUT',
      message: `${text} leaves a transaction open after the step. Each step runs as its own transaction, so it was rolled back: its changes were undone.`,
      problems: ['input.query must not open a transaction (BEGIN / START TRANSACTION): a step commits on its own'],
      fixes: [
        'Remove BEGIN / COMMIT: the statement of a step is committed when it succeeds and rolled back when it fails.',
        'To change several tables at once, use one statement (e.g. WITH … INSERT … , UPDATE …) or a database function called from Execute Query.',
      ],
      query: text,
      parameters: [],
    });
  }, 60_000);
});

describe('without the session guard (bench/run.ts switches it off), a refused BEGIN is rolled back before the session goes back', () => {
  // The guard's BEGIN / COMMIT after the statement would close the user's transaction; without it the
  // session is still inside it when the step refuses the statement, and only the refusal's ROLLBACK ends it.
  const config = (): ConnectionConfig => ({ ...db.config, applicationName: 'step-refusals-unguarded' });
  afterEach(() => {
    sessionGuard.enabled = true;
  });

  test('the next step on the same session commits on its own', async () => {
    sessionGuard.enabled = false;
    const pid = async () => (await execute(config(), { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]!.pid as number;
    const first = await pid();
    const error = await failure(execute(config(), { text: 'BEGIN' }));
    expect(error.code).toBe('INVALID_INPUT');
    expect(await pid()).toBe(first); // the session was kept, not discarded
    await execute(config(), { text: `INSERT INTO items VALUES (3, 'Edsger')` });
    // Seen from another session: committed, not left in a transaction the user's BEGIN opened.
    expect(await db.sql('SELECT name FROM items WHERE id = 3')).toEqual([{ name: 'Edsger' }]);
    await db.sql('DELETE FROM items WHERE id = 3');
  }, 60_000);
});
