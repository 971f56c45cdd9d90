/**
 * table-sync's keyset cursor over every kind of primary key (REVIEW5 R101-R103): since events carry
 * values as Query Rows parses them (a domain over bytea as base64, arrays as arrays, big jsonb
 * numbers exactly), a cursor rebuilt from those values no longer cast back to the key it came
 * from: the sync stopped early, looped, or failed at its second batch. The cursor is the key's
 * text as PostgreSQL wrote it. Each table is read in batches of 2: every row exactly once, in key
 * order, and the sync ends.
 */
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('sync_key_types');

const TABLES: Record<string, string> = {
  t_arr: 'CREATE TABLE t_arr (k int[] PRIMARY KEY); INSERT INTO t_arr SELECT ARRAY[i, i + 1] FROM generate_series(1, 7) i',
  t_darr: 'CREATE TABLE t_darr (k ints PRIMARY KEY); INSERT INTO t_darr SELECT ARRAY[i, i + 1] FROM generate_series(1, 7) i',
  t_adom: 'CREATE TABLE t_adom (k posint[] PRIMARY KEY); INSERT INTO t_adom SELECT ARRAY[i, i + 1]::posint[] FROM generate_series(1, 7) i',
  t_jb: `CREATE TABLE t_jb (k jb PRIMARY KEY); INSERT INTO t_jb SELECT jsonb_build_object('a', i, 'n', 12345678901234567890 + i) FROM generate_series(1, 7) i`,
  t_jbn: 'CREATE TABLE t_jbn (k jsonb PRIMARY KEY); INSERT INTO t_jbn SELECT to_jsonb(12345678901234567890 + i) FROM generate_series(1, 7) i',
  t_mood: `CREATE TABLE t_mood (k mood[] PRIMARY KEY); INSERT INTO t_mood VALUES ('{sad}'), ('{ok}'), ('{happy}'), ('{sad,ok}'), ('{happy,happy}'), ('{ok,ok}'), ('{}')`,
  t_by: `CREATE TABLE t_by (k by PRIMARY KEY); INSERT INTO t_by SELECT decode(lpad(to_hex(i * 37), 4, '0'), 'hex') FROM generate_series(1, 13) i`,
  t_bytea: `CREATE TABLE t_bytea (k bytea PRIMARY KEY); INSERT INTO t_bytea SELECT decode(lpad(to_hex(i * 37), 4, '0'), 'hex') FROM generate_series(1, 13) i`,
  t_text: `CREATE TABLE t_text (k text PRIMARY KEY); INSERT INTO t_text VALUES (E'tab\\there'), (E'new\\nline'), (E'back\\\\slash'), ('plain'), ('ünï'), (''), (' ')`,
  // citext in a schema off the search_path (Supabase's `extensions`): its `>` must be the one the batches are ordered by (REVIEW5 R108).
  t_citext: `CREATE TABLE t_citext (k ext.citext COLLATE "C" PRIMARY KEY); INSERT INTO t_citext VALUES ('a1'), ('B2'), ('c3'), ('D4'), ('e5'), ('F6'), ('_x7'), ('b8'), ('C9'), ('Z10'), ('z11')`,
  // …and a domain over a domain over it: the operator is the one of the ultimate base type's opclass, through every level (REVIEW6 R109).
  t_citext2: `CREATE TABLE t_citext2 (k cd2 COLLATE "C" PRIMARY KEY); INSERT INTO t_citext2 VALUES ('a1'), ('B2'), ('c3'), ('D4'), ('e5'), ('F6'), ('_x7'), ('b8'), ('C9'), ('Z10'), ('z11')`,
  // A key whose columns' operators live in different schemas (ext, pg_catalog): compared column by column.
  t_citext_int: `CREATE TABLE t_citext_int (a cd2 COLLATE "C", b int, PRIMARY KEY (a, b)); INSERT INTO t_citext_int SELECT k, i FROM unnest('{a,B,c,D,_,e,F}'::text[]) k, generate_series(1, 2) i`,
  t_two: 'CREATE TABLE t_two (a by, b ints, PRIMARY KEY (a, b)); INSERT INTO t_two SELECT decode(lpad(to_hex(i % 3), 2, \'0\'), \'hex\'), ARRAY[i] FROM generate_series(1, 9) i',
};

beforeAll(async () => {
  await db.sql(`CREATE DOMAIN ints AS int[]; CREATE DOMAIN posint AS int CHECK (VALUE > 0); CREATE DOMAIN jb AS jsonb;
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); CREATE DOMAIN by AS bytea;
    CREATE SCHEMA ext; CREATE EXTENSION citext SCHEMA ext; CREATE DOMAIN cd1 AS ext.citext; CREATE DOMAIN cd2 AS cd1`);
  for (const create of Object.values(TABLES)) await db.sql(create);
});

async function keysInBatchesOf(table: string, batchSize: number): Promise<string[]> {
  let state: TriggerState | undefined;
  const seen: string[] = [];
  for (let polls = 0; ; polls++) {
    const result = await pollTrigger('table-sync', { connection: db.config, config: { tables: [table], batchSize }, state });
    state = result.state;
    if (result.events.length === 0) return seen;
    for (const event of result.events) seen.push(JSON.stringify((event as unknown as { key: unknown }).key));
    if (polls > 20) throw new Error(`${table}: still delivering after ${polls} polls: ${seen.join(' ')}`);
  }
}

test.each(Object.keys(TABLES))('%s: batches of 2 deliver every row once, in key order, and end', async (table) => {
  const rows = await db.sql(`SELECT count(*)::int AS n FROM ${table}`);
  // One batch reads the table in one ORDER BY key, with no cursor: the reference order.
  const inOneBatch = await keysInBatchesOf(table, 1000);
  expect(inOneBatch).toHaveLength(rows[0]!.n as number);
  expect(new Set(inOneBatch).size).toBe(inOneBatch.length);
  expect(await keysInBatchesOf(table, 2)).toEqual(inOneBatch);
}, 60_000);
