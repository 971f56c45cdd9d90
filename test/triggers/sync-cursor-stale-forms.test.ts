/**
 * A cursor that no longer reads as the key's type is the state's problem (TRIGGER_STATE_INVALID,
 * REVIEW6 R120), whichever form the state keeps it in: `afterText` (what table-sync writes now),
 * `after` alone (a state made before afterText existed), or `afterText` alone (a state edited by the
 * host). keyset.ts decides "the state had a cursor" from either field; the mutation run of keyset.ts
 * (2026-11-30, ks-2) found only the afterText form pinned (sync-keyset-edges.test, a domain's check).
 */
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf } from './helpers.js';

const db = useTestDatabase('sync_cursor_stale_forms');

beforeAll(async () => {
  await db.sql(`CREATE TYPE mood AS ENUM ('a', 'b', 'c', 'd'); CREATE TABLE moods (k mood PRIMARY KEY); INSERT INTO moods VALUES ('a'), ('b'), ('c'), ('d');
    CREATE TABLE pairs (a int, b text, PRIMARY KEY (a, b)); INSERT INTO pairs VALUES (1, 'x'), (1, 'y'), (2, 'x')`);
}, 60_000);

const poll = (state?: TriggerState) => pollTrigger('table-sync', { connection: db.config, config: { tables: ['moods'], batchSize: 2 }, state });
const edited = (state: TriggerState, edit: Record<string, unknown>) => {
  const copy = JSON.parse(JSON.stringify(state)) as { position: Record<string, unknown> };
  Object.assign(copy.position, edit);
  for (const [name, value] of Object.entries(edit)) if (value === undefined) delete copy.position[name];
  return copy as unknown as TriggerState;
};

test('the cursor\'s enum label renamed since: TRIGGER_STATE_INVALID for afterText and after, after alone, and afterText alone', async () => {
  const first = await poll();
  expect(first.events.map((event) => (event.key as { k: string }).k)).toEqual(['a', 'b']);
  expect((first.state as unknown as { position: { after: unknown; afterText: unknown } }).position).toMatchObject({ after: ['b'], afterText: ['b'] });
  await db.sql(`ALTER TYPE mood RENAME VALUE 'b' TO 'bb'`);
  for (const state of [first.state, edited(first.state, { afterText: undefined }), edited(first.state, { after: null })]) {
    const failure = await failureOf(poll(state));
    expect(failure.code).toBe('TRIGGER_STATE_INVALID');
    expect(failure.message).toMatch(/^state\.position's cursor no longer reads as the primary key of config\.tables\[0\] \(.*"b".*\): the key's type changed since the state was made$/);
    expect((failure as { cause?: { code?: string } }).cause?.code).toBe('INVALID_VALUE');
  }
  // Without a cursor the same table reads from its start, the renamed label with it.
  expect((await poll()).events.map((event) => (event.key as { k: string }).k)).toEqual(['a', 'bb']);
}, 60_000);

test('an edited afterText with a number among its texts (a two-column key) is TRIGGER_STATE_INVALID, not read as that number\'s text', async () => {
  const first = await pollTrigger('table-sync', { connection: db.config, config: { tables: ['pairs'], batchSize: 1 } });
  expect((first.state as unknown as { position: { afterText: unknown } }).position.afterText).toEqual(['1', 'x']);
  const failure = await failureOf(pollTrigger('table-sync', { connection: db.config, config: { tables: ['pairs'], batchSize: 1 }, state: edited(first.state, { afterText: ['1', 2] }) }));
  expect(failure.code).toBe('TRIGGER_STATE_INVALID');
  expect(failure.problems).toEqual(['state.position.afterText must hold one text per primary key column']);
}, 60_000);
