/**
 * REVIEW10 R165: a table-sync state's cursor orders rows only in the key's type and collation of the
 * batch that made it. After `ALTER COLUMN k TYPE citext` between two batches the run went on from the
 * text-order cursor in citext's order: a1 and c3 (after 'D4' in C order, before it in citext's) were
 * never read, and the sync finished ("delivered 6 of 8"). The state is refused: sync again.
 */
import { pollTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf } from './helpers.js';

const db = useTestDatabase('sync_retyped_state');

beforeAll(async () => {
  await db.sql(`CREATE SCHEMA ext; CREATE EXTENSION citext SCHEMA ext;
    CREATE TABLE t (k text COLLATE "C" PRIMARY KEY); CREATE TABLE u (k text COLLATE "C" PRIMARY KEY);
    INSERT INTO t SELECT c || i FROM unnest(ARRAY['a', 'B', 'c', 'D', 'e', 'F', 'g', 'H']) WITH ORDINALITY AS x(c, i);
    INSERT INTO u SELECT k FROM t`);
}, 60_000);

const poll = (table: string, state?: TriggerState) => pollTrigger('table-sync', { connection: db.config, config: { tables: [table], batchSize: 2 }, state });
const keys = (events: TriggerEvent[]) => events.map((event) => String((event as unknown as { key: { k: string } }).key.k));

test('a state whose cursor was made before the key was retyped text → citext is refused with TRIGGER_STATE_INVALID, whichever form its cursor has, and a new sync delivers every row', async () => {
  const first = await poll('t');
  expect(keys(first.events)).toEqual(['B2', 'D4']); // text's C order: upper case first
  expect(keys((await poll('t', first.state)).events)).toEqual(['F6', 'H8']); // the state as made goes on
  await db.sql('ALTER TABLE t ALTER COLUMN k TYPE ext.citext');
  const refused = await failureOf(poll('t', first.state));
  expect(refused.code).toBe('TRIGGER_STATE_INVALID');
  expect(refused.message).toContain('primary key of public.t (config.tables[0]) had another type or collation');
  expect(refused.message).toMatch(/sync again$/);
  expect(refused.problems).toEqual(['state.position was made with the key\'s old type: start table-sync again without a state']);
  // Whichever form the cursor has (sync-cursor-stale-forms.test): `after` alone (states made before afterText) and
  // `afterText` alone (an edited state) order rows in the old type just the same.
  const position = first.state.position as { after: unknown; afterText?: unknown };
  for (const form of [{ ...position, afterText: undefined }, { ...position, after: null }]) {
    expect(await failureOf(poll('t', { ...first.state, position: form } as TriggerState))).toMatchObject({
      code: 'TRIGGER_STATE_INVALID',
      message: expect.stringContaining('primary key of public.t (config.tables[0]) had another type or collation'),
    });
  }
  const seen: string[] = [];
  let state: TriggerState | undefined;
  for (let polls = 0; polls < 10; polls++) {
    const result = await poll('t', state);
    state = result.state;
    if (result.events.length === 0) break;
    seen.push(...keys(result.events));
  }
  expect(seen).toEqual(['a1', 'B2', 'c3', 'D4', 'e5', 'F6', 'g7', 'H8']);
}, 120_000);

test('a collation change of the key between two batches is refused too; a state edited to hold another keyShape is refused', async () => {
  const first = await poll('u');
  expect(keys(first.events)).toEqual(['B2', 'D4']);
  const edited = structuredClone(first.state) as TriggerState & { position: { keyShape?: unknown } };
  edited.position.keyShape = 42;
  expect(await failureOf(poll('u', edited))).toMatchObject({
    code: 'TRIGGER_STATE_INVALID',
    message: 'state.position.keyShape is not what table-sync writes (the state was edited)',
    problems: ['state.position.keyShape must be the one a previous poll returned'],
  });
  await db.sql('ALTER TABLE u ALTER COLUMN k TYPE text COLLATE "POSIX"');
  expect(await failureOf(poll('u', first.state))).toMatchObject({ code: 'TRIGGER_STATE_INVALID' });
}, 120_000);
