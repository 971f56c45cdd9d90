/**
 * REVIEW10 R166: a new-row / new-or-updated-row state whose cursor is not a value of the key's type
 * (the state was edited: afterText ['abc'] for an int key) failed with INVALID_VALUE on a value the
 * user never gave, naming no field, after the poll ran twice (R146's retry took it for a stale
 * cache). It is the state's problem: TRIGGER_STATE_INVALID naming state.position.afterText (or
 * .after), as table-sync says.
 */
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf, poll } from './helpers.js';

const db = useTestDatabase('nrstateedit');

beforeAll(async () => {
  await db.sql('CREATE TABLE t (id int PRIMARY KEY, at int NOT NULL); INSERT INTO t SELECT g, g FROM generate_series(1, 5) g');
});

const edited = (state: TriggerState, edit: Record<string, unknown>): TriggerState => {
  const copy = JSON.parse(JSON.stringify(state)) as { position: Record<string, unknown> };
  for (const [key, value] of Object.entries(edit)) {
    if (value === undefined) delete copy.position[key];
    else copy.position[key] = value;
  }
  return copy as unknown as TriggerState;
};

test.each([
  ['new-row', { table: 't', column: 'id', from: 'beginning', batchSize: 2 }, ['abc'], ['99999999999']],
  ['new-or-updated-row', { table: 't', column: 'at', from: 'beginning', batchSize: 2 }, ['abc', '2'], ['2', '99999999999']],
] as const)('%s: a cursor edited to what the key type does not read is TRIGGER_STATE_INVALID naming it', async (key, config, notInt, outOfRange) => {
  const request = { connection: db.config, config: { ...config } };
  const first = await poll(key, request);
  expect(first.events).toHaveLength(2);
  for (const [edit, field] of [
    [{ afterText: notInt }, 'state.position.afterText'],
    [{ afterText: outOfRange }, 'state.position.afterText'],
    [{ after: notInt, afterText: undefined }, 'state.position.after'],
  ] as const) {
    const error = await failureOf(pollTrigger(key, { ...request, state: edited(first.state, edit) }));
    expect(error.code).toBe('TRIGGER_STATE_INVALID');
    expect(error.message).toMatch(new RegExp(`^${field.replaceAll('.', '\\.')} is not a value of the cursor columns' types of "public"\\."t" \\(.*\\): the state was edited`));
    expect(error.problems).toEqual([`${field} does not read as the cursor columns' types`]);
  }
  // The state as the poll wrote it still reads on.
  expect((await poll(key, { ...request, state: first.state })).events).toHaveLength(2);
}, 60_000);
