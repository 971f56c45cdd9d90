/**
 * REVIEW8 R152: an edited table-sync state's position.handover (tables or batches not lists, the
 * handover a string) failed every poll with a plain TypeError, no code and no fix; and a
 * table-changes-cdc handover whose recorded key type was edited to a pseudo-type or a type without a
 * btree ordering (record, void, point) failed with DATABASE_ERROR. Both say the state is the problem:
 * TRIGGER_STATE_INVALID naming state.position.handover.
 */
import { activateTrigger, deactivateTrigger, handoverState, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';

const server = useReplicationServer({ beforeStop: () => deactivateTrigger('table-changes-cdc', cdc()).then(() => undefined) });
const DATABASE = 'handover_state_edits';

const sql = (text: string, values?: unknown[]) => server.sql(text, values, DATABASE);
const connection = () => server.config({ database: DATABASE });
const cdc = () => ({ connection: connection(), config: { tables: ['t'], heartbeatSeconds: 0 } });
const sync = () => ({ connection: connection(), config: { tables: ['t'], batchSize: 2, handover: {} } });

type Handover = { lsn: string; tables: { types: string[]; batches: unknown }[] };
let first: TriggerState;
let complete: TriggerState;

beforeAll(async () => {
  await server.sql(`CREATE DATABASE ${DATABASE}`);
  await sql('CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL); INSERT INTO t SELECT g, 0 FROM generate_series(1, 6) g');
  await activateTrigger('table-changes-cdc', cdc());
  let state: TriggerState | undefined;
  for (let polls = 0; polls < 10; polls++) {
    const result = await pollTrigger('table-sync', { ...sync(), state });
    state = result.state;
    if (polls === 0) first = state;
    // A change after each batch: the handover has several batches, and changes to place among them.
    await sql('UPDATE t SET v = v + 1');
    if (result.events.length === 0) break;
  }
  complete = state!;
}, 120_000);

const failureOf = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error as { code?: string; message?: string; problems?: string[] });

function edited(state: TriggerState, edit: (handover: Handover) => unknown): TriggerState {
  const copy = structuredClone(state) as TriggerState & { position: { handover: unknown } };
  copy.position.handover = edit(copy.position.handover as Handover);
  return copy;
}

const EDITS: [string, (handover: Handover) => unknown][] = [
  ['tables = 5', (h) => ({ ...h, tables: 5 })],
  ['tables = {}', (h) => ({ ...h, tables: {} })],
  ['handover = "x"', () => 'x'],
  ['handover = null', () => null],
  ['tables[0].batches = 7', (h) => ({ ...h, tables: [{ ...h.tables[0], batches: 7 }] })],
  ['lsn = "x"', (h) => ({ ...h, lsn: 'x' })],
];

test.each(EDITS)('table-sync with an edited handover (%s): TRIGGER_STATE_INVALID naming state.position.handover', async (_, edit) => {
  const failure = await failureOf(pollTrigger('table-sync', { ...sync(), state: edited(first, edit) }));
  expect(failure?.code).toBe('TRIGGER_STATE_INVALID');
  expect(failure?.message).toMatch(/^state\.position\.handover is not/);
});

test('the state as returned still works, and hands over', async () => {
  const next = await pollTrigger('table-sync', { ...sync(), state: first });
  expect(next.events.map((event) => (event.key as { id: number }).id)).toEqual([3, 4]);
  expect(() => handoverState(complete)).not.toThrow();
});

test.each(EDITS.filter(([label]) => label !== 'handover = null'))('handoverState of a complete sync with an edited handover (%s): TRIGGER_STATE_INVALID', (_, edit) => {
  let failure: { code?: string; message?: string } | undefined;
  try {
    handoverState(edited(complete, edit));
  } catch (error) {
    failure = error as { code?: string; message?: string };
  }
  expect(failure?.code).toBe('TRIGGER_STATE_INVALID');
  expect(failure?.message).toMatch(/^state\.position\.handover is not/);
});

test.each(['record', 'void', 'pg_catalog.point', 'anyelement'])('table-changes-cdc with the handover\'s key type edited to %s: TRIGGER_STATE_INVALID, not a database error', async (type) => {
  const handed = structuredClone(handoverState(complete)) as TriggerState & { position: { handover: Handover } };
  expect((handed.position.handover.tables[0]!.batches as unknown[]).length).toBeGreaterThan(1);
  handed.position.handover.tables[0]!.types = [type];
  const failure = await failureOf(pollTrigger('table-changes-cdc', { ...cdc(), state: handed }));
  expect(failure?.code).toBe('TRIGGER_STATE_INVALID');
  expect(failure?.message).toMatch(/^state\.position\.handover holds a key type/);
});

test('the handed-over state as made delivers the changes the copy does not hold', async () => {
  const result = await pollTrigger('table-changes-cdc', { ...cdc(), state: handoverState(complete) });
  expect(result.events.length).toBeGreaterThan(0);
});
