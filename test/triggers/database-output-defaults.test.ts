/**
 * A database whose defaults change how the server writes values (REVIEW6 R111): with
 * extra_float_digits 0 or less it writes floats with 15 significant digits, so distinct float8
 * values came back equal from every reader, and table-sync's keyset cursor (the key's text) landed
 * above the last row read and skipped the rest. Non-ISO DateStyle and IntervalStyle would change
 * the text the COPY parser reads. pg-actions sets the formats it parses, whatever the defaults.
 */
import pg from 'pg';
import { closeAll, execute } from '../../connection/index.js';
import { activateTrigger, deactivateTrigger, pollTrigger, type TriggerState } from '../../triggers/index.js';
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

/**
 * row-changes' values are written by its capture functions in the writer's session (to_jsonb), with
 * the writer's formats: 15-digit floats and sql_standard intervals under these defaults (REVIEW7
 * R126). The functions carry the formats pg-actions parses in their definition.
 */
test('row-changes delivers rows written by an application\'s session with these defaults exactly as Query Rows reads them', async () => {
  const config = { tables: ['floats_written'] };
  await db.sql('CREATE TABLE floats_written (k float8 PRIMARY KEY, r real NOT NULL, span interval NOT NULL)');
  await activateTrigger('row-changes', { connection: db.config, config });
  try {
    const start = await pollTrigger('row-changes', { connection: db.config, config });
    // An application's session, opened after the defaults were set: writes with them, not pg-actions' formats.
    const app = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
    await app.connect();
    try {
      const session = await app.query("SELECT current_setting('extra_float_digits') AS digits, current_setting('IntervalStyle') AS style");
      expect(session.rows[0]).toEqual({ digits: '0', style: 'sql_standard' });
      await app.query(`INSERT INTO floats_written SELECT k, 0.1234567::real + i::real * 1e-7::real, interval '1 day 2 hours' * i - interval '5 days' FROM unnest($1::float8[]) WITH ORDINALITY AS u(k, i)`, [KEYS]);
    } finally {
      await app.end();
    }
    const events: Record<string, unknown>[] = [];
    let state = start.state;
    for (let polls = 0; polls < 20 && events.length < KEYS.length; polls++) {
      const result = await pollTrigger('row-changes', { connection: db.config, config, state });
      state = result.state;
      events.push(...result.events.map((event) => (event as unknown as { new: Record<string, unknown> }).new));
    }
    const { rows } = await execute(db.config, { text: 'SELECT * FROM floats_written ORDER BY k' });
    expect(new Set(events.map((row) => row.k)).size).toBe(KEYS.length);
    expect([...events].sort((a, b) => (a.k as number) - (b.k as number))).toEqual(rows);
  } finally {
    await deactivateTrigger('row-changes', { connection: db.config, config });
  }
}, 120_000);
