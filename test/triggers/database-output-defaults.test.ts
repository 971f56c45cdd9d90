/**
 * A database whose defaults change how the server writes values (REVIEW6 R111): with
 * extra_float_digits 0 or less it writes floats with 15 significant digits, so distinct float8
 * values came back equal from every reader, and table-sync's keyset cursor (the key's text) landed
 * above the last row read and skipped the rest. Non-ISO DateStyle and IntervalStyle would change
 * the text the COPY parser reads. pg-actions sets the formats it parses, whatever the defaults.
 */
import { closeAll, execute } from '../../connection/index.js';
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('output_defaults');

/** Eight distinct float8 values that agree in their first 15 significant digits. */
const KEYS = Array.from({ length: 8 }, (_, i) => 0.12345678901234561 + i * 3e-17);

beforeAll(async () => {
  // Set before pg-actions' first connection to this database: every session it opens starts with them.
  await db.sql(`ALTER DATABASE ${db.name} SET extra_float_digits = 0`);
  await db.sql(`ALTER DATABASE ${db.name} SET DateStyle = 'SQL, DMY'`);
  await db.sql(`ALTER DATABASE ${db.name} SET IntervalStyle = 'sql_standard'`);
  await db.sql(`CREATE TABLE floats (k float8 PRIMARY KEY, day date NOT NULL, span interval NOT NULL)`);
  await db.sql(`INSERT INTO floats SELECT k, date '2024-03-01' + i::int, interval '1 day 2 hours' * i FROM unnest($1::float8[]) WITH ORDINALITY AS u(k, i)`, [KEYS]);
  // The database really has those defaults for every new session.
  const defaults = await db.sql(`SELECT pg_catalog.array_to_string(setconfig, ';') AS s FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND setrole = 0`);
  expect(defaults[0]!.s).toBe('extra_float_digits=0;DateStyle=SQL, DMY;IntervalStyle=sql_standard');
}, 60_000);

test('Query Rows returns every float exactly (8 distinct values)', async () => {
  const { rows } = await execute(db.config, { text: 'SELECT k FROM floats ORDER BY k' });
  expect(rows.map((row) => row.k)).toEqual([...KEYS].sort((a, b) => a - b));
  expect(new Set(rows.map((row) => row.k)).size).toBe(KEYS.length);
});

async function syncedRows(connection: object): Promise<{ id: string; new: Record<string, unknown> }[]> {
  await closeAll(); // sessions no step has used: the batch's own transaction sets the formats
  let state: TriggerState | undefined;
  const events: { id: string; new: Record<string, unknown> }[] = [];
  for (let polls = 0; polls < 20; polls++) {
    const result = await pollTrigger('table-sync', { connection, config: { tables: ['floats'], batchSize: 2 }, state });
    state = result.state;
    if (result.events.length === 0) break;
    events.push(...(result.events as unknown as { id: string; new: Record<string, unknown> }[]));
  }
  return events;
}

// Behind a declared pooler no session-level format is set: only the batch's own SETs hold (REVIEW6 R117).
test.each(['none', 'transaction', 'session'])('table-sync (pooler %s) in batches of 2 delivers every row once, exact, with ISO dates and intervals', async (pooler) => {
  const events = await syncedRows({ ...db.config, pooler });
  expect(events.map((event) => event.new.k)).toEqual([...KEYS].sort((a, b) => a - b));
  expect(new Set(events.map((event) => event.id)).size).toBe(KEYS.length);
  const { rows } = await execute(db.config, { text: 'SELECT k, day, span FROM floats ORDER BY k' });
  expect(events.map((event) => event.new)).toEqual(rows);
  expect(events[0]!.new).toMatchObject({ day: '2024-03-02' });
}, 60_000);
