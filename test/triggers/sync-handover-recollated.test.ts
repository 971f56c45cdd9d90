/**
 * REVIEW11 R174: table-sync's handover recorded the key's types but not its collation, and
 * table-changes-cdc compared the changed keys with the batch bounds in the column's collation of the
 * moment. `ALTER COLUMN k TYPE text COLLATE "C"` between the sync and the handover (the type stays
 * text: R163's check passed) reordered the keys: the bounds were cut in ICU's order (a1 B2 | c3 D4 |
 * e5 F6 | g7 H8), the CDC placed a1 after every upper-case bound (C order), in the last batch, whose
 * snapshot saw a1's update: dropped, the copy kept the old row. The collation is recorded with the
 * types and a change of it refused with SYNC_HANDOVER_BROKEN; with the collation back, the update is
 * delivered.
 */
import { activateTrigger, deactivateTrigger, handoverState, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { cdcUntil, failureOf, syncInPairs } from './helpers.js';

const server = useReplicationServer();
const DATABASE = 'handover_recollated';
const sql = (text: string, values?: unknown[]) => server.sql(text, values, DATABASE);

beforeAll(async () => {
  await server.sql(`CREATE DATABASE ${DATABASE} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
  await sql(`CREATE TABLE t (k text COLLATE "und-x-icu" PRIMARY KEY, v int NOT NULL);
    INSERT INTO t SELECT c || i, 0 FROM unnest(ARRAY['a', 'B', 'c', 'D', 'e', 'F', 'g', 'H']) WITH ORDINALITY AS u(c, i)`);
}, 60_000);

type Handed = TriggerState & { position: { handover: { tables: { collations?: (string | null)[] }[] } } };

test('a key given another collation between the sync and the handover is refused with SYNC_HANDOVER_BROKEN naming the column and both collations; with the collation back, the update made after its row was read is delivered', async () => {
  const connection = server.config({ database: DATABASE });
  const cdc = { connection, config: { tables: ['t'], heartbeatSeconds: 0 } };
  await activateTrigger('table-changes-cdc', cdc);
  try {
    // After the first batch, which read a1 (ICU order: a1 B2 | c3 D4 | …): only the CDC can bring this version.
    const { copy, state } = await syncInPairs(connection, (batch) => (batch === 0 ? sql("UPDATE t SET v = 1 WHERE k = 'a1'") : Promise.resolve()));
    expect([...copy.keys()]).toEqual(['a1', 'B2', 'c3', 'D4', 'e5', 'F6', 'g7', 'H8']);
    expect(copy.get('a1')).toBe(0);
    await sql("INSERT INTO t VALUES ('zz', 2)"); // after the update: once it arrives, every earlier change has

    await sql('ALTER TABLE t ALTER COLUMN k TYPE text COLLATE "C"');
    const refused = await failureOf(pollTrigger('table-changes-cdc', { ...cdc, state: handoverState(state) }));
    expect(refused.code).toBe('SYNC_HANDOVER_BROKEN');
    expect(refused.message).toContain('the key column "k" has the collation pg_catalog."C", but table-sync cut its batches in pg_catalog."und-x-icu"');
    expect(refused.fixes.join(' ')).toContain('ALTER TABLE "public"."t" ALTER COLUMN "k" TYPE pg_catalog.text COLLATE pg_catalog."und-x-icu"');

    const edited = structuredClone(state) as TriggerState & { position: { handover: { tables: { collations?: unknown }[] } } };
    edited.position.handover.tables[0]!.collations = [42];
    expect(() => handoverState(edited)).toThrow(expect.objectContaining({ code: 'TRIGGER_STATE_INVALID' }));

    // A state recorded before collations were kept: read as before (in the column's collation now), not refused.
    const older = structuredClone(state) as Handed;
    delete older.position.handover.tables[0]!.collations;
    expect((await pollTrigger('table-changes-cdc', { ...cdc, state: handoverState(older) })).events.length).toBeGreaterThan(0);

    const back = refused.fixes.find((fix) => fix.includes('ALTER TABLE'))!;
    await sql(back.slice(back.indexOf('ALTER TABLE'))); // the printed fix, as an admin runs it
    await cdcUntil(cdc, handoverState(state), copy, () => copy.has('zz'));
    // Placed in C order, a1 fell in the last batch's range, whose snapshot saw the update: dropped, the copy kept 0.
    expect(copy.get('a1')).toBe(1);
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
}, 180_000);
