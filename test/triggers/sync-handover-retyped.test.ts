/**
 * REVIEW8 R149: table-sync recorded the handover's key types from describeTable's 30 s cache, which no
 * stale check covers. A key retyped text → citext just before a handover sync was recorded as "text":
 * table-changes-cdc placed changed keys in text's order (C: upper case first) while the batches were
 * cut in citext's, judged a key by a later batch's snapshot, and dropped an update the copy never saw.
 * The types are read by the batch's own statement.
 */
import { activateTrigger, deactivateTrigger, handoverState, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { cdcUntil, syncInPairs } from './helpers.js';

const server = useReplicationServer();
const DATABASE = 'handover_retyped';

beforeAll(async () => {
  await server.sql(`CREATE DATABASE ${DATABASE} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
  await sql(`CREATE SCHEMA ext; CREATE EXTENSION citext SCHEMA ext; CREATE TABLE t (k text PRIMARY KEY, v int NOT NULL);
    INSERT INTO t SELECT c || i, 0 FROM unnest(ARRAY['a', 'B', 'c', 'D', 'e', 'F', 'g', 'H']) WITH ORDINALITY AS u(c, i)`);
}, 60_000);

const sql = (text: string, values?: unknown[]) => server.sql(text, values, DATABASE);

test('a handover sync right after the key was retyped text → citext records citext, and the CDC delivers an update made after its row was read', async () => {
  const connection = server.config({ database: DATABASE });
  // A plain sync first: the table's shape (key type text) is cached.
  let state: TriggerState | undefined;
  for (let polls = 0; polls < 10; polls++) {
    const result = await pollTrigger('table-sync', { connection, config: { tables: ['t'], batchSize: 2 }, state });
    state = result.state;
    if (result.events.length === 0) break;
  }
  await sql('ALTER TABLE t ALTER COLUMN k TYPE ext.citext');
  const cdc = { connection, config: { tables: ['t'], heartbeatSeconds: 0 } };
  await activateTrigger('table-changes-cdc', cdc);
  try {
    // After the first batch, which read a1 (citext order: a1 B2 | c3 D4 | …): only the CDC can bring this version.
    const { copy, state: synced } = await syncInPairs(connection, (batch) => (batch === 0 ? sql("UPDATE t SET v = 1 WHERE k = 'a1'") : Promise.resolve()));
    state = synced;
    expect([...copy.keys()]).toEqual(['a1', 'B2', 'c3', 'D4', 'e5', 'F6', 'g7', 'H8']);
    const handover = (state!.position as { handover: { tables: { types: string[] }[] } }).handover;
    expect(handover.tables[0]!.types).toEqual(['ext.citext']);
    await sql("INSERT INTO t VALUES ('zz', 2)"); // after the update: once it arrives, every earlier change has
    await cdcUntil(cdc, handoverState(state), copy, () => copy.has('zz'));
    // Placed by text's order, a1 fell in the last batch's range, whose snapshot saw the update: dropped, the copy kept 0.
    expect(copy.get('a1')).toBe(1);
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
}, 180_000);
