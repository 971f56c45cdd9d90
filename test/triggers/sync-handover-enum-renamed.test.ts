/**
 * REVIEW11 R175, the handover's side: a handover's batch bounds are the key as the server wrote it,
 * for an enum its label's text, and table-changes-cdc reads them again by the enum's input function.
 * Labels renamed after the table's batches were read (b and f swapped: b → x, f → b, x → f) give
 * the bounds other places in the enum's order, while the type oids R163 checks stay the same: the
 * change to b (read by the first batch, updated after the second) was placed in the third batch, whose
 * snapshot saw it, and dropped. The handover records the labels' fingerprint (enum-labels.ts) and
 * table-changes-cdc refuses a rename with SYNC_HANDOVER_BROKEN.
 */
import { activateTrigger, deactivateTrigger, handoverState, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { cdcUntil, failureOf, syncInPairs } from './helpers.js';

const server = useReplicationServer();
const DATABASE = 'handover_enum_renamed';
const sql = (text: string, values?: unknown[]) => server.sql(text, values, DATABASE);

beforeAll(async () => {
  await server.sql(`CREATE DATABASE ${DATABASE} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
  await sql(`CREATE TYPE e AS ENUM ('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'); CREATE TABLE t (k e PRIMARY KEY, v int NOT NULL);
    INSERT INTO t SELECT l, 0 FROM unnest(enum_range(NULL::e)) AS l`);
}, 60_000);

type Handed = TriggerState & { position: { handover: { tables: { labels?: string }[] } } };

test('enum labels renamed after the sync read the table are refused with SYNC_HANDOVER_BROKEN; an older state without the labels is read as before', async () => {
  const connection = server.config({ database: DATABASE });
  const cdc = { connection, config: { tables: ['t'], heartbeatSeconds: 0 } };
  await activateTrigger('table-changes-cdc', cdc);
  try {
    // After the second batch (a b | c d | e f | g h): only the CDC can bring this version of b.
    const { copy, state } = await syncInPairs(connection, (batch) => (batch === 1 ? sql("UPDATE t SET v = 1 WHERE k = 'b'") : Promise.resolve()));
    expect([...copy.keys()]).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
    expect((state as Handed).position.handover.tables[0]!.labels).toMatch(/^\d+:[0-9a-f]{32}$/);
    await sql("INSERT INTO t VALUES ('h', 2) ON CONFLICT (k) DO UPDATE SET v = 2"); // after the update: once it arrives, every earlier change has

    await sql("ALTER TYPE e RENAME VALUE 'b' TO 'x'; ALTER TYPE e RENAME VALUE 'f' TO 'b'; ALTER TYPE e RENAME VALUE 'x' TO 'f'");
    const refused = await failureOf(pollTrigger('table-changes-cdc', { ...cdc, state: handoverState(state) }));
    expect(refused.code).toBe('SYNC_HANDOVER_BROKEN');
    expect(refused.message).toContain('public.t: a label of an enum its key holds was renamed');

    const edited = structuredClone(state) as Handed;
    edited.position.handover.tables[0]!.labels = 'b';
    expect(() => handoverState(edited)).toThrow(expect.objectContaining({ code: 'TRIGGER_STATE_INVALID' }));

    // A state recorded before the labels were kept: placed by the labels of now, as before.
    const older = structuredClone(state) as Handed;
    delete older.position.handover.tables[0]!.labels;
    await cdcUntil(cdc, handoverState(older), copy, () => copy.get('h') === 2);
    // What the refusal prevents: b (in the change's text, as the WAL decodes it) now sorts where f was, in the
    // third batch, whose snapshot saw the update: dropped, the copy keeps 0.
    expect(copy.get('b')).toBe(0);
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
}, 180_000);
