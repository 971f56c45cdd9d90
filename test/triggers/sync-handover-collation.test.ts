/**
 * REVIEW4 R43: table-sync cuts its batches in `ORDER BY key`, i.e. in each key column's own
 * collation, so the handover must place a change's key in a batch comparing in that collation too,
 * not in the database's (here C, where 'B' < 'D' < 'a' < 'c' and 'Ä' sorts after every ASCII key,
 * while ICU orders _x a Ä B c D e F). A key placed in a later batch is judged against a snapshot
 * that already saw its update: the update is dropped and the copy keeps the old row for good.
 *
 * Every row is updated right after the poll that read it, so every one of those updates must be
 * delivered by the handed-over CDC state, and the copy (sync rows, then changes) must equal the table.
 */
import { activateTrigger, deactivateTrigger, handoverState, pollTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { syncThenChanges } from './helpers.js';

const server = useReplicationServer();
// The database's collation C: ICU keys order differently from it.
beforeAll(() => server.sql("CREATE DATABASE handover_collation TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"), 60_000);

const sql = (text: string) => server.sql(text, undefined, 'handover_collation');
const connection = () => server.config({ database: 'handover_collation' });
const CODES = ['a', 'B', 'c', 'D', 'e', 'F', '_x', 'Ä', 'b', 'C', 'ä', 'Z', 'z'];

test('keys with a column collation (ICU) other than the database\'s (C): each update made after its row\'s batch is delivered, the copy equals the table (REVIEW4 R43)', async () => {
  expect((await sql("SELECT count(*)::int AS n FROM pg_collation WHERE collname = 'und-x-icu'"))[0]!.n).toBe(1); // the server is built with ICU
  const values = CODES.map((code, i) => `('${code}', ${i}, 0)`).join(', ');
  await sql(`CREATE TABLE coded (code text COLLATE "und-x-icu" PRIMARY KEY, v int NOT NULL);
    CREATE TABLE paired (code varchar(8) COLLATE "und-x-icu", n int, v int NOT NULL, PRIMARY KEY (code, n));
    INSERT INTO coded SELECT code, 0 FROM (VALUES ${values}) AS s(code, i, v);
    INSERT INTO paired SELECT code, n, 0 FROM (VALUES ${values}) AS s(code, i, v), generate_series(1, 2) AS n`);
  // The orders really differ: C puts 'B' before 'a', ICU after it.
  expect((await sql('SELECT array_agg(code ORDER BY code COLLATE "C") AS c, array_agg(code ORDER BY code) AS icu FROM coded'))[0]).toEqual({
    c: ['B', 'C', 'D', 'F', 'Z', '_x', 'a', 'b', 'c', 'e', 'z', 'Ä', 'ä'],
    icu: ['_x', 'a', 'ä', 'Ä', 'b', 'B', 'c', 'C', 'D', 'e', 'F', 'z', 'Z'],
  });
  const tables = ['coded', 'paired'];
  const cdc = { connection: connection(), config: { tables, heartbeatSeconds: 0 } };
  const sync = { connection: connection(), config: { tables, batchSize: 2, handover: {} } };
  await activateTrigger('table-changes-cdc', cdc);
  try {
    const keyOf = (event: TriggerEvent, row: Record<string, unknown>) => JSON.stringify([event.table, row.code, row.n ?? null]);
    const { copy, updates, delivered } = await syncThenChanges(
      { sync, cdc },
      keyOf,
      // after the batch that read it: only the CDC can bring this version
      (event, row) => sql(`UPDATE ${event.table} SET v = v + 1 WHERE code = '${row.code}'${row.n === undefined ? '' : ` AND n = ${row.n}`}`),
      () => sql("INSERT INTO coded VALUES ('end marker', -1)"), // after every update: the CDC has delivered all of them when it arrives
      (copy) => copy.has(JSON.stringify(['coded', 'end marker', null])),
    );
    expect(updates).toBe(CODES.length * 3);
    const rows = [...(await sql('SELECT code, v FROM coded')), ...(await sql('SELECT code, n, v FROM paired'))];
    const differing = rows.filter((row) => copy.get(JSON.stringify([row.n === undefined ? 'coded' : 'paired', row.code, row.n ?? null]))?.v !== row.v);
    expect(differing).toEqual([]);
    expect(copy.size).toBe(rows.length);
    expect(delivered).toBe(updates + 1); // every update was made after its row's batch
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
});

test('a key column renamed before the handover ends: SYNC_HANDOVER_BROKEN, not a silent comparison in the database\'s collation (REVIEW5 R107)', async () => {
  await sql(`CREATE TABLE renamed (code text COLLATE "und-x-icu" PRIMARY KEY, v int NOT NULL);
    INSERT INTO renamed SELECT code, 0 FROM unnest(ARRAY['${CODES.join("','")}']) AS code`);
  const cdc = { connection: connection(), config: { tables: ['renamed'], heartbeatSeconds: 0 } };
  const sync = { connection: connection(), config: { tables: ['renamed'], batchSize: 2, handover: {} } };
  await activateTrigger('table-changes-cdc', cdc);
  try {
    let state: TriggerState | undefined;
    for (let polls = 1; polls < 100; polls++) {
      const result = await pollTrigger('table-sync', { ...sync, state });
      state = result.state;
      if (result.events.length === 0) break;
      for (const event of result.events) await sql(`UPDATE renamed SET v = v + 1 WHERE code = '${(event.new as { code: string }).code}'`);
    }
    await sql('ALTER TABLE renamed RENAME COLUMN code TO kode');
    let cdcState = handoverState(state);
    let failure: unknown;
    for (let polls = 0; polls < 20 && failure === undefined; polls++) {
      try {
        cdcState = (await pollTrigger('table-changes-cdc', { ...cdc, state: cdcState })).state;
      } catch (error) {
        failure = error;
      }
    }
    expect(failure).toMatchObject({ code: 'SYNC_HANDOVER_BROKEN', message: expect.stringContaining('"code"') });
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
});
