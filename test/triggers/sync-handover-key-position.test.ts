/**
 * The handover compares each change's key with the batch bounds as the key's own type, which
 * table-sync records per batch from the table's columns (keyset.ts: the type of each primary key
 * column, found by name). Every other handover test keys its tables by their first column; here the
 * key is the last column, a text of digits, after an int column: compared as the first column's
 * type (int), '10' would sort after '9', and changes around the bounds would be judged against the
 * wrong batch. Found by the mutation run of keyset.ts (2026-11-30, ks-2): `c.name === name` → `true`
 * survived every handover file. The same steps as sync-handover-key-types.test, polled.
 */
import { activateTrigger, deactivateTrigger, handoverState, pollTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';

const server = useReplicationServer();
const DATABASE = 'handover_key_position';
const KEYS = ['1', '2', '3', '9', '10', '11', '19', '20', '100', '5', '55', '7', '8'];

beforeAll(async () => {
  await server.sql(`CREATE DATABASE ${DATABASE} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
  await sql('CREATE TABLE later_key (id int UNIQUE NOT NULL, v int NOT NULL, k text PRIMARY KEY)');
  await sql('INSERT INTO later_key SELECT i, 0, k FROM unnest($1::text[]) WITH ORDINALITY AS s(k, i)', [KEYS]);
}, 60_000);

const sql = (text: string, values?: unknown[]) => server.sql(text, values, DATABASE);

test('a key that is not the table\'s first column: each change around the batch bounds is judged against the batch that read its row', async () => {
  expect((await sql('SELECT array_agg(k ORDER BY k) AS k FROM later_key'))[0]!.k).toEqual(['1', '10', '100', '11', '19', '2', '20', '3', '5', '55', '7', '8', '9']);
  const cdc = { connection: server.config({ database: DATABASE }), config: { tables: ['later_key'], heartbeatSeconds: 0 } };
  const sync = { connection: server.config({ database: DATABASE }), config: { tables: ['later_key'], batchSize: 2, handover: {} } };
  await activateTrigger('table-changes-cdc', cdc);
  try {
    const copy = new Map<number, { id: number; v: number }>();
    const read: number[] = [];
    let state: TriggerState | undefined;
    let afterRead = 0;
    for (let polls = 1; ; polls++) {
      expect(polls).toBeLessThan(100);
      const result = await pollTrigger('table-sync', { ...sync, state });
      state = result.state;
      if (result.events.length === 0) break;
      const rows = result.events.map((event) => event.new as { id: number; v: number });
      for (const row of rows) copy.set(row.id, row);
      read.push(...rows.map((row) => row.id));
      // After the batch that read them: only the CDC can bring these versions. Before the batches that will read them: the copy gets them from the sync.
      afterRead += (await sql('UPDATE later_key SET v = v + 1 WHERE id = ANY($1::int[]) RETURNING id', [rows.map((row) => row.id)])).length;
      await sql('UPDATE later_key SET v = v + 100 WHERE id <> ALL($1::int[])', [read]);
    }
    expect(read.length).toBe(KEYS.length);
    await sql("INSERT INTO later_key VALUES (-1, 0, '999')"); // after every update: once it arrives, the CDC has delivered them all
    const delivered: { id: number; v: number }[] = [];
    let cdcState = handoverState(state);
    for (let polls = 0; !copy.has(-1); polls++) {
      expect(polls).toBeLessThan(100);
      const result = await pollTrigger('table-changes-cdc', { ...cdc, state: cdcState });
      for (const event of result.events as TriggerEvent[]) {
        const row = event.new as { id: number; v: number };
        copy.set(row.id, row);
        delivered.push(row);
      }
      cdcState = result.state;
    }
    const differing: unknown[] = [];
    for (const row of await sql('SELECT id, v FROM later_key')) if (copy.get(row.id as number)?.v !== row.v) differing.push({ ...row, copy: copy.get(row.id as number)?.v });
    expect(differing).toEqual([]);
    // Exactly the updates made after their row's batch (no +100 update delivered), and the marker.
    expect(delivered.filter((change) => change.v % 100 === 0 && change.id !== -1)).toEqual([]);
    expect(delivered.length).toBe(afterRead + 1);
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
}, 180_000);
