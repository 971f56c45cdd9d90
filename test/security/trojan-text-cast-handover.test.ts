/**
 * REVIEW7 R141 on the handover's side: table-changes-cdc places each changed key among table-sync's
 * batch bounds by casting keys and bounds from text to the key's type, which ran a cast from text
 * that the type's owner made (its function with the CDC role's rights). The handover refuses such a
 * key type, naming the cast, and the function never runs.
 */
import { activateTrigger, handoverState, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';

const pg = useReplicationServer();

test('a cast from text to the key\'s type made during the handover: SYNC_HANDOVER_BROKEN naming it, the cast never runs', async () => {
  await pg.sql('CREATE DATABASE casts');
  const sql = (text: string) => pg.sql(text, [], 'casts');
  await sql(`CREATE TYPE mood AS ENUM ('a', 'b', 'c', 'd', 'e');
    CREATE TABLE moods (k mood PRIMARY KEY, n int NOT NULL DEFAULT 1); INSERT INTO moods (k) VALUES ('a'), ('b'), ('c'), ('d'), ('e');
    CREATE FUNCTION evil(text) RETURNS mood LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'evil ran as %', current_user; END $f$; DO $d$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cast_owner') THEN CREATE ROLE cast_owner; END IF; END $d$; ALTER FUNCTION evil(text) OWNER TO cast_owner`);
  const connection = pg.config({ database: 'casts' });
  const cdc = { connection, config: { tables: ['moods'], heartbeatSeconds: 0 } };
  await activateTrigger('table-changes-cdc', cdc);
  let state: TriggerState | undefined;
  for (let polls = 0; polls < 10; polls++) {
    const result = await pollTrigger('table-sync', { connection, config: { tables: ['moods'], batchSize: 2, handover: {} }, state });
    state = result.state;
    if (result.events.length === 0) break;
    if (polls === 0) await sql("UPDATE moods SET n = 2 WHERE k = 'd'"); // a change inside the handover's window: it is placed among the bounds
  }
  await sql('CREATE CAST (text AS mood) WITH FUNCTION evil(text)');
  const error = await pollTrigger('table-changes-cdc', { ...cdc, state: handoverState(state!) }).then(() => undefined, (e: unknown) => e as { code?: string; message?: string });
  expect(error?.message).not.toMatch(/evil ran/i);
  expect(error?.code).toBe('SYNC_HANDOVER_BROKEN');
  expect(error?.message).toMatch(/"k" has the type public\.mood, which has a cast from text made by a user \(evil\(text\)\)/);
}, 120_000);
