/**
 * REVIEW7 R141 and REVIEW8 R143/R147: the owner of an enum (or range, composite) type may make a cast
 * from text to it with a function of their own, and `(text)::type` runs that function with the role of
 * the statement. table-sync read its cursor back from text; R141 refused such a type, but the check and
 * the COPY were two statements, and a cast made between them (the owner toggling CREATE CAST / DROP
 * CAST) still ran; the count of such casts in the staleness check made polls fail for any role's
 * unrelated cast (R147). pg-actions now reads keys through the type's input function (jsonb_to_record,
 * bound parameters), which consults no cast: the cast never runs, and nothing is refused.
 */
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('trojan_text_cast');

beforeAll(async () => {
  await db.sql(`CREATE TYPE mood AS ENUM ('a', 'b', 'c', 'd', 'e');
    CREATE TABLE moods (k mood PRIMARY KEY, n int NOT NULL DEFAULT 1); INSERT INTO moods (k) VALUES ('a'), ('b'), ('c'), ('d'), ('e');
    CREATE TYPE other AS ENUM ('x');
    CREATE FUNCTION evil(text) RETURNS mood LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'evil ran as %', current_user; END $f$;
    CREATE FUNCTION evil_other(text) RETURNS other LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'evil ran as %', current_user; END $f$;
    DO $d$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cast_owner') THEN CREATE ROLE cast_owner; END IF; END $d$;
    ALTER FUNCTION evil(text) OWNER TO cast_owner; ALTER FUNCTION evil_other(text) OWNER TO cast_owner`);
}, 60_000);

const syncPoll = (state?: TriggerState) => pollTrigger('table-sync', { connection: db.config, config: { tables: ['moods'], batchSize: 2 }, state });
const keyOf = (event: unknown) => (event as { key: { k: string } }).key.k;

test('a cast from text made after the first batch never runs: the sync goes on with every row', async () => {
  const first = await syncPoll();
  expect(first.events.map(keyOf)).toEqual(['a', 'b']);
  await db.sql('CREATE CAST (text AS mood) WITH FUNCTION evil(text)');
  try {
    const rest = await syncPoll(first.state);
    expect(rest.events.map(keyOf)).toEqual(['c', 'd']);
    const last = await syncPoll(rest.state);
    expect(last.events.map(keyOf)).toEqual(['e']);
    // new-row binds its cursor as a parameter: every row, and the cast never runs.
    let state: TriggerState | undefined;
    const keys: unknown[] = [];
    for (let polls = 0; polls < 6; polls++) {
      const result = await pollTrigger('new-row', { connection: db.config, config: { table: 'moods', column: 'k', from: 'beginning', batchSize: 2 }, state });
      state = result.state;
      keys.push(...result.events.map(keyOf));
    }
    expect(keys).toEqual(['a', 'b', 'c', 'd', 'e']);
  } finally {
    await db.sql('DROP CAST (text AS mood)');
  }
}, 60_000);

test('casts from text toggled while table-sync and new-row poll (the key type\'s own, and an unrelated type\'s): no poll fails, no cast runs', async () => {
  let toggling = true;
  let toggles = 0;
  const toggler = (async () => {
    while (toggling) {
      await db.sql('CREATE CAST (text AS mood) WITH FUNCTION evil(text); CREATE CAST (text AS other) WITH FUNCTION evil_other(text)');
      await db.sql('DROP CAST (text AS mood); DROP CAST (text AS other)');
      toggles++;
    }
  })();
  try {
    const failures: string[] = [];
    const synced: string[] = [];
    const added: string[] = [];
    let sync: TriggerState | undefined;
    let newRow: TriggerState | undefined;
    for (let polls = 0; polls < 30 || toggles < 10; polls++) {
      await syncPoll(sync).then((result) => {
        synced.push(...result.events.map(keyOf));
        sync = result.events.length === 0 ? undefined : result.state; // a finished run starts again
      }, (error: Error) => failures.push(error.message));
      await pollTrigger('new-row', { connection: db.config, config: { table: 'moods', column: 'k', from: 'beginning', batchSize: 1 }, state: newRow }).then((result) => {
        added.push(...result.events.map(keyOf));
        newRow = result.state;
      }, (error: Error) => failures.push(error.message));
    }
    expect(failures).toEqual([]);
    expect(synced.slice(0, 5)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(added).toEqual(['a', 'b', 'c', 'd', 'e']);
  } finally {
    toggling = false;
    await toggler;
    await db.sql('DROP CAST IF EXISTS (text AS mood); DROP CAST IF EXISTS (text AS other)');
  }
}, 120_000);
