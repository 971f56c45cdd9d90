/**
 * REVIEW7 R141 (found by helper fxh): the owner of an enum (or range, composite) type may make a cast
 * from text to it with a function of their own, and `(text)::type` then runs that function. table-sync
 * reads its cursor back from text, so the function ran with the flow's role at every batch after the
 * first. Such a key type is refused, naming the cast, also when the cast is made mid-sync; new-row
 * binds its cursor as a parameter (read by the type's input function, no cast) and is not affected.
 */
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('trojan_text_cast');

beforeAll(async () => {
  await db.sql(`CREATE TYPE mood AS ENUM ('a', 'b', 'c', 'd', 'e');
    CREATE TABLE moods (k mood PRIMARY KEY, n int NOT NULL DEFAULT 1); INSERT INTO moods (k) VALUES ('a'), ('b'), ('c'), ('d'), ('e');
    CREATE FUNCTION evil(text) RETURNS mood LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'evil ran as %', current_user; END $f$; DO $d$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cast_owner') THEN CREATE ROLE cast_owner; END IF; END $d$; ALTER FUNCTION evil(text) OWNER TO cast_owner`);
}, 60_000);

const syncPoll = (state?: TriggerState) => pollTrigger('table-sync', { connection: db.config, config: { tables: ['moods'], batchSize: 2 }, state });

test('a cast from text made after the first batch: the next batch is refused naming it, and the cast never runs', async () => {
  const first = await syncPoll();
  expect(first.events).toHaveLength(2);
  await db.sql('CREATE CAST (text AS mood) WITH FUNCTION evil(text)');
  try {
    const error = await syncPoll(first.state).then(() => undefined, (e: unknown) => e as { code?: string; message?: string });
    expect(error?.message).not.toMatch(/evil ran/i);
    expect(error?.code).toBe('INVALID_INPUT');
    expect(error?.message).toMatch(/"k" has the type public\.mood, which has a cast from text made by a user \(evil\(text\)/);
    // A new run is refused at its first batch too.
    await expect(syncPoll()).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    // new-row binds its cursor as a parameter: every row, and the cast never runs.
    let state: TriggerState | undefined;
    const keys: unknown[] = [];
    for (let polls = 0; polls < 6; polls++) {
      const result = await pollTrigger('new-row', { connection: db.config, config: { table: 'moods', column: 'k', from: 'beginning', batchSize: 2 }, state });
      state = result.state;
      keys.push(...result.events.map((event) => (event as unknown as { key: { k: string } }).key.k));
    }
    expect(keys).toEqual(['a', 'b', 'c', 'd', 'e']);
  } finally {
    await db.sql('DROP CAST (text AS mood)');
  }
  // Without the cast the sync goes on from its state.
  const rest = await syncPoll(first.state);
  expect(rest.events.map((event) => (event as unknown as { key: { k: string } }).key.k)).toEqual(['c', 'd']);
}, 60_000);
