/**
 * REVIEW10 R163: table-sync's handover recorded the key's types as format_type wrote them, without
 * their schema when visible on the sync session's search_path (`citext` with `search_path = public,
 * ext`), and table-changes-cdc resolved the name again on its own path. A role with CREATE on public
 * made `DOMAIN public.citext AS text` after the sync: the CDC placed the keys in text's order and
 * dropped an update the copy never saw. The types are recorded with their schema; a name that now
 * resolves to another type than the column's (an older state's unqualified name) is refused.
 */
import { activateTrigger, deactivateTrigger, handoverState, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { cdcUntil, failureOf, syncInPairs } from './helpers.js';

const server = useReplicationServer();
const DATABASE = 'handover_type_path';
const sql = (text: string, values?: unknown[]) => server.sql(text, values, DATABASE);

beforeAll(async () => {
  await server.sql(`CREATE DATABASE ${DATABASE} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
  await server.sql(`ALTER DATABASE ${DATABASE} SET search_path = public, ext`); // an extension's schema on the path, after public
  await server.sql('DROP ROLE IF EXISTS r163path; CREATE ROLE r163path');
  await sql(`CREATE SCHEMA ext; CREATE EXTENSION citext SCHEMA ext; GRANT CREATE ON SCHEMA public TO r163path;
    CREATE TABLE t (k ext.citext PRIMARY KEY, v int NOT NULL);
    INSERT INTO t SELECT c || i, 0 FROM unnest(ARRAY['a', 'B', 'c', 'D', 'e', 'F', 'g', 'H']) WITH ORDINALITY AS u(c, i)`);
}, 60_000);

type Handed = TriggerState & { position: { handover: { tables: { types: string[] }[] } } };

test('a look-alike type made on the search_path after the sync: the update made after its row was read is delivered; an older state\'s unqualified name is refused, not misread', async () => {
  const connection = server.config({ database: DATABASE });
  const cdc = { connection, config: { tables: ['t'], heartbeatSeconds: 0 } };
  await activateTrigger('table-changes-cdc', cdc);
  try {
    // After the first batch, which read a1 (citext order: a1 B2 | c3 D4 | …): only the CDC can bring this version.
    const { copy, state } = await syncInPairs(connection, (batch) => (batch === 0 ? sql("UPDATE t SET v = 1 WHERE k = 'a1'") : Promise.resolve()));
    expect(copy.get('a1')).toBe(0);
    expect((state as Handed).position.handover.tables[0]!.types).toEqual(['ext.citext']); // not "citext": ext is on the path
    // A state recorded before the names were qualified, resolved where nothing shadows the name: read as before.
    const older = structuredClone(state) as Handed;
    older.position.handover.tables[0]!.types = ['citext'];
    expect((await pollTrigger('table-changes-cdc', { ...cdc, state: handoverState(older) })).events.length).toBeGreaterThan(0);

    await sql('SET ROLE r163path; CREATE DOMAIN public.citext AS pg_catalog.text; RESET ROLE');
    await sql("INSERT INTO t VALUES ('zz', 2)"); // after the update: once it arrives, every earlier change has
    // The older state's name now finds the look-alike (text's order: a1 after D4): refused, never placed by it.
    const refused = await failureOf(pollTrigger('table-changes-cdc', { ...cdc, state: handoverState(older) }));
    expect(refused).toMatchObject({ code: 'SYNC_HANDOVER_BROKEN', message: expect.stringContaining('the key column "k" has the type ext.citext, but the handover recorded "citext"') });

    await cdcUntil(cdc, handoverState(state), copy, () => copy.has('zz'));
    // Placed by text's order, a1 fell in the last batch's range, whose snapshot saw the update: dropped, the copy kept 0.
    expect(copy.get('a1')).toBe(1);
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
}, 180_000);
