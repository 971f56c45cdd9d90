/**
 * A table-sync state the host kept and something changed (REVIEW6 R120, R122): every such poll
 * fails the same way until the state is replaced, so the code must say the state is the problem
 * (TRIGGER_STATE_INVALID), not a value the user gave or a column named "nan".
 */
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('sync_state_edits');

beforeAll(async () => {
  await db.sql('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10)');
  await db.sql(`CREATE TYPE st AS ENUM ('new', 'pending', 'done', 'archived');
    CREATE TABLE e (s st PRIMARY KEY, v int); INSERT INTO e VALUES ('new', 1), ('pending', 2), ('done', 3), ('archived', 4)`);
}, 60_000);

const poll = (table: string, state?: TriggerState) => pollTrigger('table-sync', { connection: db.config, config: { tables: [table], batchSize: 2 }, state });

test.each([
  [{ rowBytes: 'abc' }, 'state.position.rowBytes'],
  [{ rowBytes: {} }, 'state.position.rowBytes'],
  [{ rowBytes: -5 }, 'state.position.rowBytes'],
  [{ rowsDone: 'x' }, 'state.position.rowsDone'],
  [{ estimatedTotal: -1 }, 'state.position.estimatedTotal'],
  [{ table: 0.5 }, 'state.position.table'],
])('an edited count %j is TRIGGER_STATE_INVALID naming %s', async (edit, field) => {
  const { state } = await poll('t');
  const edited = JSON.parse(JSON.stringify(state)) as TriggerState & { position: Record<string, unknown> };
  Object.assign(edited.position, edit);
  const failure = await poll('t', edited).then(() => undefined, (error: unknown) => error as { code: string; problems?: string[] });
  expect(failure?.code).toBe('TRIGGER_STATE_INVALID');
  expect(failure?.problems?.join(' ')).toContain(field);
});

test('the state as returned still works: the rows after its cursor, then the end', async () => {
  const first = await poll('t');
  const rest = await poll('t', first.state);
  expect(rest.events.map((event) => (event.key as { id: number }).id)).toEqual([3, 4]);
  expect((rest.events[1]!.progress as { rowsDone: number }).rowsDone).toBe(4);
});

test('a cursor on an enum label renamed since: TRIGGER_STATE_INVALID on every poll, not INVALID_VALUE', async () => {
  const first = await poll('e');
  expect(first.events.map((event) => (event.key as { s: string }).s)).toEqual(['new', 'pending']);
  await db.sql(`ALTER TYPE st RENAME VALUE 'pending' TO 'queued'`);
  for (let attempt = 0; attempt < 2; attempt++) {
    const failure = await poll('e', first.state).then(() => undefined, (error: unknown) => error as { code: string; message: string });
    expect({ code: failure?.code, message: failure?.message }).toEqual({ code: 'TRIGGER_STATE_INVALID', message: expect.stringContaining('no longer reads as the primary key of config.tables[0]') });
  }
});
