/**
 * The handover places each change's key in the batch that read it by comparing it with the batch
 * bounds (REVIEW5 R101-R103, R108). Bounds re-serialised from the events' parsed values did not cast
 * back to the key for a domain over bytea (base64 read as bytes), arrays (a JSON array is no array
 * literal) or jsonb numbers beyond a double (a JSON string, which sorts before every number); and a
 * `<` looked up on the search_path was text's for citext installed in a schema off it (case-
 * sensitive, while the batches were cut case-insensitively). A key judged against the wrong batch
 * loses the update made right after its row was read, or delivers one the copy already holds.
 *
 * Each table is read in batches of 2 (C database). After every poll, each row just read is updated
 * (only the CDC can bring that version: it must be delivered) and every row not read yet is updated
 * too (its batch will read that version: it must be dropped), so both sides of each batch bound
 * change between the batches. Two tables have REPLICA IDENTITY FULL: their updates carry the old
 * key, which must not look moved because two parsed arrays or objects are never ===. The changes are
 * read both ways: polled (SQL peek) and subscribed (replication connection).
 */
import { activateTrigger, deactivateTrigger, handoverState, pollTrigger, subscribeTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { failureOf } from './helpers.js';

const server = useReplicationServer();
const DATABASE = 'handover_key_types';

// Keys whose parsed form orders differently: base64 puts 0xf0 ("8A==") before 0x01 ("AQ=="); big
// jsonb numbers become strings; citext ignores case where C does not.
const TABLES: Record<string, { key: string; keys: string[]; marker: string; full?: boolean }> = {
  k_by: { key: 'by', marker: "'\\xffff'", keys: ['01', '12', '5a', '80', 'a0', 'd0', 'e0', 'f0', 'f8', '7f', '3e', '00ff', '0101'].map((hex) => `'\\x${hex}'`) },
  k_arr: { key: 'int[]', marker: "'{1000}'", full: true, keys: ['{1}', '{1,2}', '{1,NULL}', '{2}', '{-1,5}', '{10}', '{1,2,3}', '{}', '{3,1}', '{100}', '{9}', '{0}', '{2,2}'].map((a) => `'${a}'`) },
  k_jb: {
    key: 'jsonb',
    marker: `'{"n": 1000}'`,
    full: true,
    keys: ['1', '2', '12345678901234567891', '12345678901234567892', '0.99999999999999999991', '0.99999999999999999992', '99999999999999999999', '-12345678901234567891', '3', '1.5', '"s"'].map((n) => `'{"n": ${n}}'`),
  },
  k_ci: { key: 'ext.citext', marker: "'end marker'", keys: ['a', 'B', 'c', 'D', 'e', 'F', '_x', 'b1', 'C1', 'Z', 'z1', 'd1', 'A1'].map((code) => `'${code}'`) },
};

beforeAll(async () => {
  await server.sql(`CREATE DATABASE ${DATABASE} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
  // citext where Supabase and hardening guides put it: a schema off the search_path.
  await sql('CREATE SCHEMA ext; CREATE EXTENSION citext SCHEMA ext; CREATE DOMAIN by AS bytea');
  // One table per key type and way of reading the changes (polled, subscribed).
  for (const [name, { key, keys, full }] of Object.entries(TABLES)) {
    for (const table of [name, `${name}_s`]) {
      await sql(`CREATE TABLE ${table} (k ${key} PRIMARY KEY, id int UNIQUE NOT NULL, v int NOT NULL);
        INSERT INTO ${table} SELECT k::${key}, i, 0 FROM unnest(ARRAY[${keys.join(', ')}]::text[]) WITH ORDINALITY AS s(k, i)${full ? `; ALTER TABLE ${table} REPLICA IDENTITY FULL` : ''}`);
    }
  }
}, 60_000);

const sql = (text: string, values?: unknown[]) => server.sql(text, values, DATABASE);
const connection = () => server.config({ database: DATABASE });

test('the keys really order otherwise than their parsed values (base64 text) and text\'s `<` (C)', async () => {
  expect((await sql("SELECT array_agg(encode(k, 'hex') ORDER BY k) AS k FROM k_by"))[0]!.k).toEqual(['00ff', '01', '0101', '12', '3e', '5a', '7f', '80', 'a0', 'd0', 'e0', 'f0', 'f8']);
  expect((await sql('SELECT array_agg(k::text ORDER BY k) AS k FROM k_ci'))[0]!.k).toEqual(['_x', 'a', 'A1', 'B', 'b1', 'c', 'C1', 'D', 'd1', 'e', 'F', 'Z', 'z1']);
  expect((await sql("SELECT array_agg(k::text ORDER BY k::text COLLATE \"C\") AS k FROM k_ci"))[0]!.k).toEqual(['A1', 'B', 'C1', 'D', 'F', 'Z', '_x', 'a', 'b1', 'c', 'd1', 'e', 'z1']);
});

test.each(Object.keys(TABLES).flatMap((name) => [[name, 'poll'], [name, 'subscribe']]))('%s (%s): each change around the batch bounds is judged against the batch that read its row (REVIEW5 R101-R103, R108)', async (name, mode) => {
  const table = mode === 'poll' ? name : `${name}_s`;
  const tables = [table];
  const cdc = { connection: connection(), config: { tables, heartbeatSeconds: 0 } };
  const sync = { connection: connection(), config: { tables, batchSize: 2, handover: {} } };
  await activateTrigger('table-changes-cdc', cdc);
  try {
    const copy = new Map<number, Record<string, unknown>>(); // id → row
    const read: number[] = [];
    let state: TriggerState | undefined;
    let afterRead = 0;
    for (let polls = 1; ; polls++) {
      expect(polls).toBeLessThan(100);
      const result = await pollTrigger('table-sync', { ...sync, state });
      state = result.state;
      if (result.events.length === 0) break;
      const rows = result.events.map((event) => event.new as { id: number });
      for (const row of rows) copy.set(row.id, row);
      read.push(...rows.map((row) => row.id));
      // after the batch that read them: only the CDC can bring these versions
      afterRead += (await sql(`UPDATE ${table} SET v = v + 1 WHERE id = ANY($1::int[]) RETURNING id`, [rows.map((row) => row.id)])).length;
      // before the batches that will read them: the copy gets these versions from the sync
      await sql(`UPDATE ${table} SET v = v + 100 WHERE id <> ALL($1::int[])`, [read]);
    }
    expect(read.length).toBe(TABLES[name]!.keys.length);
    await sql(`INSERT INTO ${table} VALUES (${TABLES[name]!.marker}, -1, 0)`); // after every update: the CDC has delivered all of them when it arrives
    const delivered: { id: number; v: number }[] = [];
    const ops: string[] = [];
    const apply = (events: TriggerEvent[]) => {
      for (const event of events) {
        const row = event.new as { id: number; v: number };
        ops.push(event.op as string);
        copy.set(row.id, row);
        delivered.push(row);
      }
    };
    if (mode === 'poll') {
      let cdcState = handoverState(state);
      for (let polls = 0; !copy.has(-1); polls++) {
        expect(polls).toBeLessThan(100);
        const result = await pollTrigger('table-changes-cdc', { ...cdc, state: cdcState });
        apply(result.events);
        cdcState = result.state;
      }
    } else {
      const errors: unknown[] = [];
      const subscription = await subscribeTrigger('table-changes-cdc', { ...cdc, state: handoverState(state), onError: (error: unknown) => void errors.push(error) }, (events) => apply(events));
      try {
        for (let waits = 0; !copy.has(-1) && errors.length === 0; waits++) {
          expect(waits).toBeLessThan(600); // 60 s
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } finally {
        await subscription.close();
        // the walsender leaves the slot a moment after the connection closes (deactivating before refuses: REPLICATION_SLOT_IN_USE)
        for (let waits = 0; waits < 300 && (await sql('SELECT 1 FROM pg_replication_slots WHERE database = current_database() AND active')).length > 0; waits++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      expect(errors).toEqual([]);
    }
    expect(ops.filter((op) => op !== 'UPDATE' && op !== 'INSERT')).toEqual([]); // nothing turned into a DELETE
    const differing: unknown[] = [];
    for (const row of await sql(`SELECT id, v FROM ${table}`)) if (copy.get(row.id as number)?.v !== row.v) differing.push({ ...row, copy: copy.get(row.id as number)?.v });
    expect(differing).toEqual([]);
    // Exactly the updates made after their row's batch (each v ends in 1..n: no +100 update delivered), and the marker.
    expect(delivered.filter((change) => change.v % 100 === 0 && change.id !== -1)).toEqual([]);
    expect(delivered.length).toBe(afterRead + 1);
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
});

test('a state made before the bounds were kept as text: its parsed bounds are cast as before, and an array bound, which never cast back, is refused with TRIGGER_STATE_INVALID', async () => {
  await sql('CREATE TABLE k_old (k int[] PRIMARY KEY, v int NOT NULL)');
  const cdc = { connection: connection(), config: { tables: ['k_old'], heartbeatSeconds: 0 } };
  await activateTrigger('table-changes-cdc', cdc);
  try {
    const start = (await pollTrigger('table-changes-cdc', cdc)).state as TriggerState & { position: Record<string, unknown> };
    await sql("INSERT INTO k_old VALUES ('{1}', 1), ('{3}', 3)");
    const until = (await sql('SELECT pg_current_wal_lsn()::text AS l'))[0]!.l as string;
    // two batches split at {1,2}, read in a snapshot that saw neither insert ('1:1:'): both are delivered
    const withBound = (bound: unknown) => ({
      ...start,
      position: { ...start.position, handover: { until, tables: [{ schema: 'public', table: 'k_old', key: ['k'], types: ['integer[]'], batches: [[bound, '1:1:'], [null, '1:1:']] }] } },
    });
    const refused = await failureOf(pollTrigger('table-changes-cdc', { ...cdc, state: withBound([[1, 2]]) }));
    expect(refused).toMatchObject({ code: 'TRIGGER_STATE_INVALID', message: expect.stringContaining('sync again') });
    const polled = await pollTrigger('table-changes-cdc', { ...cdc, state: withBound({ text: ['{1,2}'] }) });
    expect(polled.events.map((event) => event.new)).toEqual([{ k: [1], v: 1 }, { k: [3], v: 3 }]);
    for (const edited of [{ text: [1] }, { text: ['{1,2}', '{3}'] }, { text: ['not an array'] }, null]) {
      expect(await failureOf(pollTrigger('table-changes-cdc', { ...cdc, state: withBound(edited) }))).toMatchObject({ code: 'TRIGGER_STATE_INVALID' });
    }
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
});

test('a citext key removed and inserted again in another case ("D", then "d") is the same key: its later changes are delivered after the removal (REVIEW4 R26 with the key type\'s equality); one updated to another case is not moved', async () => {
  await sql("CREATE TABLE k_again (k ext.citext PRIMARY KEY, v int NOT NULL); INSERT INTO k_again VALUES ('a', 0), ('b', 0), ('c', 0), ('D', 0), ('e', 0), ('f', 0)");
  const cdc = { connection: connection(), config: { tables: ['k_again'], heartbeatSeconds: 0 } };
  const sync = { connection: connection(), config: { tables: ['k_again'], batchSize: 2, handover: {} } };
  await activateTrigger('table-changes-cdc', cdc);
  try {
    // The consumer's copy is keyed as the table is: case-insensitively.
    const copy = new Map<string, unknown>();
    const keyOf = (row: unknown) => String((row as { k: string }).k).toLowerCase();
    let state: TriggerState | undefined;
    for (let polls = 1; ; polls++) {
      expect(polls).toBeLessThan(100);
      const result = await pollTrigger('table-sync', { ...sync, state });
      for (const event of result.events) copy.set(keyOf(event.new), event.new);
      state = result.state;
      // after the first batch, before the one of "D": removed, and the same key inserted again as "d", read by that batch;
      // "e" updated to "E" (the same key: no move), read by its batch too
      if (polls === 1) await sql("DELETE FROM k_again WHERE k = 'D'; INSERT INTO k_again VALUES ('d', 1); UPDATE k_again SET k = 'E', v = 2 WHERE k = 'e'");
      if (result.events.length === 0) break;
    }
    await sql("INSERT INTO k_again VALUES ('zz', 9)");
    let cdcState = handoverState(state);
    const delivered: unknown[] = [];
    for (let polls = 0; !copy.has('zz'); polls++) {
      expect(polls).toBeLessThan(100);
      const result = await pollTrigger('table-changes-cdc', { ...cdc, state: cdcState });
      for (const event of result.events) {
        delivered.push([event.op, event.key]);
        if (event.op === 'DELETE') copy.delete(keyOf(event.key));
        else copy.set(keyOf(event.new), event.new);
      }
      cdcState = result.state;
    }
    // The DELETE of "D" may have been missed by the copy (delivered: apply as "if present"), and then "d" must follow it.
    expect(delivered).toEqual([['DELETE', { k: 'D' }], ['INSERT', { k: 'd' }], ['INSERT', { k: 'zz' }]]);
    expect([...copy.values()].sort((x, y) => keyOf(x).localeCompare(keyOf(y)))).toEqual(await sql('SELECT k::text AS k, v FROM k_again ORDER BY lower(k::text)'));
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
});
