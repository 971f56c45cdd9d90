/**
 * new-row's cursor (triggers/table-cursor.ts) where the mutation run of 2026-11-30 (third session)
 * found it unpinned: columns named like the ones the poll selects for itself (the key's types and
 * text), a poll that reads nothing keeping the cursor's text, and a state.position.afterText edited
 * by hand.
 */
import { pollTrigger, sampleEvents, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf } from './helpers.js';

const db = useTestDatabase('new_row_cursor_edges');

interface RowEvent {
  id: string;
  key: Record<string, unknown>;
  new: Record<string, unknown>;
}

const newRow = (table: string, state?: TriggerState, from: 'beginning' | 'now' = 'beginning') =>
  pollTrigger('new-row', { connection: db.config, config: { table, column: 'seq', batchSize: 2, from }, state });

async function pollAll(table: string, from?: TriggerState): Promise<{ events: RowEvent[]; state: TriggerState }> {
  let state = from;
  const events: RowEvent[] = [];
  for (let polls = 0; polls < 20; polls++) {
    const result = await newRow(table, state);
    state = result.state;
    if (result.events.length === 0) return { events, state };
    events.push(...(result.events as unknown as RowEvent[]));
  }
  throw new Error(`${table}: still delivering after 20 polls`);
}

beforeAll(async () => {
  await db.sql(`CREATE TABLE clash (seq int NOT NULL, id int PRIMARY KEY, pg_actions_key_types text, pg_actions_key_text text, pg_actions_key_text_2 text);
    INSERT INTO clash SELECT g, g, 'types ' || g, 'text ' || g, 'text2 ' || g FROM generate_series(1, 3) g;
    CREATE TABLE js (seq int NOT NULL, k jsonb PRIMARY KEY); INSERT INTO js VALUES (1, '"a"'), (2, '"b"');
    CREATE TABLE bk (seq int NOT NULL, k bytea PRIMARY KEY); INSERT INTO bk VALUES (1, '\\x01'), (1, '\\x02'), (1, '\\x03');
    CREATE TABLE bk_empty (seq int NOT NULL, k bytea PRIMARY KEY)`);
}, 60_000);

const clashRow = (g: number) => ({ seq: g, id: g, pg_actions_key_types: `types ${g}`, pg_actions_key_text: `text ${g}`, pg_actions_key_text_2: `text2 ${g}` });

test('a table with columns named pg_actions_key_types, pg_actions_key_text and pg_actions_key_text_2: every row whole, once, by polls, the sample and a start from "now"', async () => {
  const { events, state } = await pollAll('clash');
  expect(events.map((event) => event.new)).toEqual([1, 2, 3].map(clashRow));
  expect(events.map((event) => event.key)).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
  expect(new Set(events.map((event) => event.id)).size).toBe(3);
  expect((state.position as { afterText: string[] }).afterText).toEqual(['3', '3']);
  const sample = await sampleEvents('new-row', { connection: db.config, config: { table: 'clash', column: 'seq' } });
  expect(sample.events.map((event) => (event as unknown as RowEvent).new)).toEqual([3, 2, 1].map(clashRow));
  const start = await newRow('clash', undefined, 'now');
  expect(start.state.position).toMatchObject({ after: [3, 3], afterText: ['3', '3'] });
  await db.sql("INSERT INTO clash VALUES (4, 4, 'types 4', 'text 4', 'text2 4')");
  const next = await newRow('clash', start.state, 'now');
  expect(next.events.map((event) => (event as unknown as RowEvent).new)).toEqual([clashRow(4)]);
  expect(next.events[0]!.id).toBe(events[0]!.id.replace(/:.*/, ':["4"]'));
}, 60_000);

test('a poll that reads nothing keeps the cursor as text: the next row after a jsonb string key is delivered', async () => {
  const { events, state } = await pollAll('js');
  expect(events.map((event) => event.new.k)).toEqual(['a', 'b']);
  // pollAll's last poll read nothing: its position is still the text of "b" (its value, b, is not JSON).
  expect(state.position).toMatchObject({ after: [2, 'b'], afterText: ['2', '"b"'] });
  const idle = await newRow('js', state);
  expect(idle.events).toEqual([]);
  expect(idle.state.position).toEqual(state.position);
  await db.sql(`INSERT INTO js VALUES (3, '"c"')`);
  expect((await newRow('js', idle.state)).events.map((event) => (event as unknown as RowEvent).new.k)).toEqual(['c']);
}, 60_000);

test('state.position.afterText edited by hand: TRIGGER_STATE_INVALID unless it is one text per value of after; ignored before the first row', async () => {
  const first = await newRow('clash');
  const position = first.state.position as { after: unknown[]; afterText: string[] };
  expect(position.afterText).toEqual(['2', '2']);
  // ['2', 2]: one text is not enough, each value must be one (the cursor is read as the types' input text).
  for (const afterText of [['2'], [2, 2], ['2', 2], '22', { 0: '2', 1: '2', length: 2 }]) {
    const refused = await failureOf(newRow('clash', { ...first.state, position: { ...position, afterText } } as TriggerState));
    expect({ code: refused.code, message: refused.message, problems: refused.problems }).toEqual({
      code: 'TRIGGER_STATE_INVALID',
      message: "state.position does not fit the table's primary key (it changed since the state was made, or the state was edited)",
      problems: ['state.position.afterText must hold one text per value of state.position.after'],
    });
  }
  // after: null (before the first row): afterText is not read.
  const fresh = await newRow('clash', { ...first.state, position: { after: null, afterText: ['9', '9'] } } as TriggerState);
  expect(fresh.events.map((event) => (event as unknown as RowEvent).key)).toEqual([{ id: 1 }, { id: 2 }]);
}, 60_000);

test('a state without afterText (made before it) over a bytea key resumes after its key: `after` holds base64, not bytea\'s text', async () => {
  const first = await pollTrigger('new-row', { connection: db.config, config: { table: 'bk', column: 'seq', batchSize: 2, from: 'beginning' } });
  expect(first.state.position).toMatchObject({ after: [1, 'Ag=='], afterText: ['1', '\\x02'] });
  const legacy = { ...first.state, position: { ...(first.state.position as object), afterText: undefined } } as TriggerState;
  const next = await pollTrigger('new-row', { connection: db.config, config: { table: 'bk', column: 'seq', batchSize: 2, from: 'beginning' }, state: legacy });
  expect(next.events.map((event) => (event as unknown as RowEvent).key)).toEqual([{ k: 'Aw==' }]);
}, 60_000);

test('an afterText that is not a value of the key type fails the poll once (no endless re-read): TRIGGER_STATE_INVALID (REVIEW10 R166)', async () => {
  const first = await newRow('clash');
  const position = first.state.position as { after: unknown[]; afterText: string[] };
  const refused = await failureOf(newRow('clash', { ...first.state, position: { ...position, afterText: ['two', '2'] } } as TriggerState));
  expect(refused.code).toBe('TRIGGER_STATE_INVALID');
  expect(refused.problems).toEqual(["state.position.afterText does not read as the cursor columns' types"]);
}, 60_000);

const withPosition = (state: TriggerState, position: Record<string, unknown>) => ({ ...state, position }) as TriggerState;

test('a state without afterText whose bytea key value was edited to what base64 does not read: TRIGGER_STATE_INVALID naming state.position.after (R166)', async () => {
  const first = await pollTrigger('new-row', { connection: db.config, config: { table: 'bk', column: 'seq', batchSize: 2, from: 'beginning' } });
  const edited = withPosition(first.state, { ...(first.state.position as object), after: [1, 'not base64!'], afterText: undefined });
  const refused = await failureOf(pollTrigger('new-row', { connection: db.config, config: { table: 'bk', column: 'seq', batchSize: 2, from: 'beginning' }, state: edited }));
  expect(refused.code).toBe('TRIGGER_STATE_INVALID');
  expect(refused.problems).toEqual(["state.position.after does not read as the cursor columns' types"]);
}, 60_000);

test('a cursor that reads as its types (bytea as base64 in after, as its text in afterText) is not blamed when the poll fails for another reason: the failure is thrown after one retry', async () => {
  // bk_empty has no row, so the state's horizon is kept as it is: edited to what int does not read, every poll fails with 22P02.
  const config = { table: 'bk_empty', column: 'seq', batchSize: 2, from: 'beginning' as const };
  const first = await pollTrigger('new-row', { connection: db.config, config });
  for (const cursor of [{ after: [1, 'AQ=='] }, { after: [1, 'AQ=='], afterText: ['1', '\\x01'] }]) {
    const failed = await failureOf(pollTrigger('new-row', { connection: db.config, config, state: withPosition(first.state, { ...cursor, horizon: { through: 'abc' } }) }));
    expect({ code: failed.code, sqlstate: failed.sqlstate }).toEqual({ code: 'INVALID_VALUE', sqlstate: '22P02' });
  }
}, 60_000);
