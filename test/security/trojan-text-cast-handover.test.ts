/**
 * REVIEW7 R141 / REVIEW8 R143 on the handover's side: table-changes-cdc places each changed key among
 * table-sync's batch bounds; cast from text to the key's type, keys and bounds ran a cast from text
 * that the type's owner made (its function with the CDC role's rights), and R141's refusal was checked
 * in an earlier statement than the one that cast. Keys are now read through the type's input function
 * (jsonb_to_record), which consults no cast: the changes are placed, and the function never runs.
 */
import { activateTrigger, handoverState, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';

const pg = useReplicationServer();

test('a cast from text to the key\'s type made during the handover never runs: the changes are placed among the bounds', async () => {
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
    if (polls === 0) await sql("UPDATE moods SET n = 2 WHERE k IN ('a', 'd')"); // changes inside the handover's window: placed among the bounds
  }
  await sql('CREATE CAST (text AS mood) WITH FUNCTION evil(text)');
  try {
    const result = await pollTrigger('table-changes-cdc', { ...cdc, state: handoverState(state!) });
    // 'a' was copied before its change (delivered), 'd' after it (the copy has it: dropped).
    expect(result.events.map((event) => [event.op, (event as unknown as { key: { k: string } }).key.k])).toEqual([['UPDATE', 'a']]);
  } finally {
    await sql('DROP CAST (text AS mood)');
  }
}, 120_000);
