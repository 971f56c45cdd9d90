/**
 * REVIEW11 R175: a table-sync cursor over an enum key is the label's text. `ALTER TYPE … RENAME VALUE`
 * between two batches gave that text another place in the enum's order (the cursor 'b': 'b' renamed
 * 'bb', then 'd' renamed 'b'), and the keyShape (type oids) did not change: the next batch started
 * after the old 'd', and the rows of 'c' and 'd' were never read. The state keeps a fingerprint of the
 * labels of the enums the key reaches: a rename refuses the state (TRIGGER_STATE_INVALID, sync again);
 * a label added since (ADD VALUE, which never reorders the others) does not.
 */
import { pollTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf } from './helpers.js';

const db = useTestDatabase('sync_enum_renamed');

beforeAll(async () => {
  await db.sql(`CREATE TYPE e1 AS ENUM ('a', 'b', 'c', 'd', 'e', 'f'); CREATE TABLE t (k e1 PRIMARY KEY);
    CREATE TYPE e2 AS ENUM ('a', 'b', 'c', 'd', 'e', 'f'); CREATE TABLE u (k e2 PRIMARY KEY);
    CREATE TYPE e3 AS ENUM ('a', 'b', 'c', 'd', 'e', 'f'); CREATE TABLE w (k e3[] PRIMARY KEY);
    CREATE TYPE e4 AS ENUM ('a', 'b', 'c', 'd', 'e', 'f'); CREATE TABLE o (k e4 PRIMARY KEY);
    INSERT INTO t SELECT unnest(enum_range(NULL::e1)); INSERT INTO u SELECT unnest(enum_range(NULL::e2));
    INSERT INTO w SELECT ARRAY[l] FROM unnest(enum_range(NULL::e3)) AS l; INSERT INTO o SELECT unnest(enum_range(NULL::e4))`);
}, 60_000);

const poll = (table: string, state?: TriggerState) => pollTrigger('table-sync', { connection: db.config, config: { tables: [table], batchSize: 2 }, state });
const keys = (events: TriggerEvent[]) => events.map((event) => JSON.stringify((event as unknown as { key: { k: unknown } }).key.k));

async function syncAll(table: string, from?: TriggerState): Promise<string[]> {
  const seen: string[] = [];
  let state = from;
  for (let polls = 0; polls < 10; polls++) {
    const result = await poll(table, state);
    state = result.state;
    if (result.events.length === 0) return seen;
    seen.push(...keys(result.events));
  }
  throw new Error('the sync did not end in 10 polls');
}

test('an enum label renamed between two batches so that the cursor\'s text names a later place is refused with TRIGGER_STATE_INVALID; a new sync delivers every row', async () => {
  const first = await poll('t');
  expect(keys(first.events)).toEqual(['"a"', '"b"']);
  await db.sql("ALTER TYPE e1 RENAME VALUE 'b' TO 'bb'; ALTER TYPE e1 RENAME VALUE 'd' TO 'b'");
  const refused = await failureOf(poll('t', first.state));
  expect(refused.code).toBe('TRIGGER_STATE_INVALID');
  expect(refused.message).toContain('an enum the primary key of public.t (config.tables[0]) holds had other labels');
  expect(refused.message).toMatch(/sync again$/);
  expect(refused.problems).toEqual(['state.position was made with the enum\'s old labels: start table-sync again without a state']);
  // Whichever form the cursor has (sync-cursor-stale-forms.test): `after` alone and `afterText` alone are refused too.
  const position = first.state.position as { after: unknown; afterText?: unknown };
  for (const form of [{ ...position, afterText: undefined }, { ...position, after: null }]) {
    expect(await failureOf(poll('t', { ...first.state, position: form } as TriggerState))).toMatchObject({ code: 'TRIGGER_STATE_INVALID', message: expect.stringContaining('had other labels') });
  }
  expect(await syncAll('t')).toEqual(['"a"', '"bb"', '"c"', '"b"', '"e"', '"f"']);
}, 120_000);

test('the same for an enum inside the key\'s type (an array of it); an edited keyLabels is refused', async () => {
  const first = await poll('w');
  expect(keys(first.events)).toEqual(['["a"]', '["b"]']);
  const edited = structuredClone(first.state) as TriggerState & { position: { keyLabels?: unknown } };
  const made = edited.position.keyLabels as string;
  expect(made).toMatch(/^\d+:[0-9a-f]{32}$/);
  for (const wrong of ['x', `x${made}`, `${made}0`]) {
    edited.position.keyLabels = wrong;
    expect(await failureOf(poll('w', edited))).toMatchObject({ code: 'TRIGGER_STATE_INVALID', message: expect.stringMatching(/^state\.position\.keyLabels/), problems: ['state.position.keyLabels must be the one a previous poll returned'] });
  }
  await db.sql("ALTER TYPE e3 RENAME VALUE 'b' TO 'bb'; ALTER TYPE e3 RENAME VALUE 'd' TO 'b'");
  expect(await failureOf(poll('w', first.state))).toMatchObject({ code: 'TRIGGER_STATE_INVALID', message: expect.stringContaining('had other labels') });
}, 120_000);

test('a label added between two batches, even before the cursor, does not stop the sync: every row that existed when it began is delivered', async () => {
  const first = await poll('u');
  expect(keys(first.events)).toEqual(['"a"', '"b"']);
  await db.sql("ALTER TYPE e2 ADD VALUE 'a2' BEFORE 'b'");
  await db.sql("ALTER TYPE e2 ADD VALUE 'z'");
  await db.sql("INSERT INTO u VALUES ('a2')"); // a row made after the run began, before the cursor: not promised
  expect(await syncAll('u', first.state)).toEqual(['"c"', '"d"', '"e"', '"f"']);
}, 120_000);

test('a state made before keyLabels was kept is read as before (a rename is not seen)', async () => {
  const first = await poll('o');
  const older = structuredClone(first.state) as TriggerState & { position: { keyLabels?: string } };
  expect(older.position.keyLabels).toBeDefined();
  delete older.position.keyLabels;
  expect(keys((await poll('o', older)).events)).toEqual(['"c"', '"d"']); // no rename: as with the state as made
  await db.sql("ALTER TYPE e4 RENAME VALUE 'b' TO 'bb'; ALTER TYPE e4 RENAME VALUE 'd' TO 'b'");
  // As before REVIEW11 R175: the cursor 'b' now stands where 'd' is, and c and the old d are not read.
  expect(keys((await poll('o', older)).events)).toEqual(['"e"', '"f"']);
}, 120_000);
