/**
 * The same rows give the same event ids and values whatever the session's bytea_output (REVIEW10
 * R167), and the same row-changes event reads with the same writtenAt whatever the reading
 * session's TimeZone (REVIEW10 R171). bytea_output 'escape' (a database's, role's or session's
 * default) writes the bytes 61 62 as `ab` instead of `\x6162`: new-row's and table-sync's ids of a
 * bytea key are made of that text, and row-changes' capture wrote the writer's format. Triggers
 * read and write bytea in hex; actions parse both formats.
 */
import { closeAll, execute } from '../../connection/index.js';
import { activateTrigger, deactivateTrigger, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { session } from './helpers.js';

const db = useTestDatabase('bytea_output_pinned');

interface RowEvent {
  id: string;
  key: Record<string, unknown>;
  new: Record<string, unknown>;
  writtenAt?: string;
}

beforeAll(async () => {
  await db.sql('CREATE TABLE files (k bytea PRIMARY KEY, n int NOT NULL)');
  await db.sql(`INSERT INTO files VALUES ('\\x0a01', 1), ('\\x6162', 2), ('\\x5c783631', 3)`);
});

/** Every session pg-actions opens from now on starts with `setting` = `value` (its pools are closed first). */
async function databaseDefault(setting: string, value: string): Promise<void> {
  await db.sql(`ALTER DATABASE ${db.name} SET ${setting} = '${value}'`);
  await closeAll();
  const { rows } = await execute(db.config, { text: `SELECT pg_catalog.current_setting('${setting}') AS v` });
  expect(rows[0]!.v).toBe(value);
}

async function pollWith(output: string, key: string, request: { connection: object; config: object; state?: TriggerState }): Promise<{ events: RowEvent[]; state: TriggerState }> {
  await databaseDefault('bytea_output', output);
  const result = await pollTrigger(key, request);
  return { events: result.events as unknown as RowEvent[], state: result.state };
}

test.each(['none', 'transaction'])('new-row (pooler %s): a bytea key read under database bytea_output hex and escape gives the same ids, keys and state', async (pooler) => {
  const request = { connection: { ...db.config, pooler }, config: { table: 'files', column: 'k', from: 'beginning', batchSize: 2 } };
  const [a, b] = [await pollWith('hex', 'new-row', request), await pollWith('escape', 'new-row', request)];
  expect(a.events).toHaveLength(2);
  expect(a.events.map((e) => e.id.slice(e.id.indexOf(':')))).toEqual([':["\\\\x0a01"]', ':["\\\\x5c783631"]']);
  expect(b.events).toEqual(a.events);
  expect(b.state).toEqual(a.state);
  // The next batch from each state, under the other setting: the same row again.
  const [c, d] = [await pollWith('escape', 'new-row', { ...request, state: a.state }), await pollWith('hex', 'new-row', { ...request, state: b.state })];
  expect(c.events.map((e) => e.id.slice(e.id.indexOf(':')))).toEqual([':["\\\\x6162"]']);
  expect(d.events).toEqual(c.events);
}, 60_000);

test.each(['none', 'transaction'])('table-sync (pooler %s): a batch of bytea keys read from the same state under database bytea_output hex and escape gives the same ids, keys and cursor', async (pooler) => {
  const connection = { ...db.config, pooler };
  const config = { tables: ['files'], batchSize: 1 };
  const first = await pollWith('hex', 'table-sync', { connection, config }); // a sync's ids carry its run: later batches share it
  expect(first.events.map((e) => e.id.slice(e.id.indexOf(':')))).toEqual([':["\\\\x0a01"]']);
  const [a, b] = [await pollWith('hex', 'table-sync', { connection, config, state: first.state }), await pollWith('escape', 'table-sync', { connection, config, state: first.state })];
  expect(a.events.map((e) => e.id.slice(e.id.indexOf(':')))).toEqual([':["\\\\x5c783631"]']);
  expect(b.events).toEqual(a.events);
  expect(b.state).toEqual(a.state);
  const [c, d] = [await pollWith('escape', 'table-sync', { connection, config, state: a.state }), await pollWith('hex', 'table-sync', { connection, config, state: b.state })];
  expect(c.events.map((e) => e.id.slice(e.id.indexOf(':')))).toEqual([':["\\\\x6162"]']);
  expect(d.events).toEqual(c.events);
}, 60_000);

test('row-changes: bytes written by sessions with bytea_output hex and escape are captured as the same hex text; writtenAt reads the same under two TimeZones', async () => {
  const config = { tables: ['blobs'] };
  await db.sql('CREATE TABLE blobs (id int PRIMARY KEY, b bytea)');
  await activateTrigger('row-changes', { connection: db.config, config });
  try {
    const start = await pollTrigger('row-changes', { connection: db.config, config });
    for (const [i, output] of ['hex', 'escape'].entries()) {
      const app = await session(db); // an application's session, not pg-actions'
      try {
        await app.query(`SET bytea_output = '${output}'`);
        await app.query(`INSERT INTO blobs VALUES ($1, '\\x6162')`, [i + 1]);
      } finally {
        await app.end();
      }
    }
    const read = async (zone: string): Promise<RowEvent[]> => {
      await databaseDefault('TimeZone', zone);
      return (await pollTrigger('row-changes', { connection: db.config, config, state: start.state })).events as unknown as RowEvent[];
    };
    const [a, b] = [await read('America/New_York'), await read('Asia/Tokyo')];
    expect(a.map((event) => event.new)).toEqual([{ id: 1, b: '\\x6162' }, { id: 2, b: '\\x6162' }]);
    expect(a[0]!.writtenAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(b.map((event) => event.writtenAt)).toEqual(a.map((event) => event.writtenAt));
    expect(b).toEqual(a);
  } finally {
    await deactivateTrigger('row-changes', { connection: db.config, config });
  }
}, 120_000);

test('actions read bytea in either format: Query Rows returns the same bytes under database bytea_output hex and escape', async () => {
  const query = { text: 'SELECT k, ARRAY[k] AS ks FROM files ORDER BY n' };
  await databaseDefault('bytea_output', 'hex');
  const { rows: hex } = await execute(db.config, query);
  await databaseDefault('bytea_output', 'escape');
  const { rows: escape } = await execute(db.config, query);
  const bytes = ['0a01', '6162', '5c783631'].map((h) => Buffer.from(h, 'hex').toString('base64'));
  expect(hex.map((r) => r.k)).toEqual(bytes);
  expect(hex.map((r) => r.ks)).toEqual(bytes.map((b) => [b]));
  expect(escape).toEqual(hex);
});
