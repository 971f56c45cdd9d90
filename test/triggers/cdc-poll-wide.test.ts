/**
 * A polled table-changes-cdc behind a transaction whose rows are wide (REVIEW6 R114): a peek cut
 * to one change still returned up to 16 more rows of the transaction (its slack for Begin,
 * Relation and Commit messages), so rows wider than maxResultBytes / 17 failed every poll with
 * RESULT_TOO_LARGE and the slot kept its WAL for good. Now a peek returns at most its limit of
 * changes: down to one per poll, every change once, in order; only a change that passes the cap
 * by itself stops the poll, with an error that says so and what to do.
 * A transaction whose decoding alone takes longer than statementTimeoutMs (R115): PostgreSQL decodes
 * it from its start at every peek, so every poll timed out with a plain QUERY_TIMEOUT; now
 * CDC_POLL_DECODE_TIMEOUT says why and what to do, and doing it (a longer timeout) moves on.
 * Such a transaction over many tables (REVIEW7 R125): a poll resuming it keeps the Relation rows of
 * its delivered part, and they used to count against the peek's 16 rows of slack: past 16 tables no
 * change fit, and every poll returned no event at the same position, silently, for good (likewise
 * the Type rows of a table with many enum columns, from the first poll).
 */
import { closeAll } from '../../connection/index.js';
import { activateTrigger, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { startReplicationServer, type ReplicationServer } from '../harness/replication-server.js';
import { failureOf, waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
const ROWS = 30;
let pg: ReplicationServer;

beforeAll(async () => {
  pg = await startReplicationServer();
  await pg.sql('CREATE DATABASE wide');
}, 60_000);
afterAll(async () => {
  await closeAll();
  await pg?.stop();
});

test(`one transaction of ${ROWS} rows of 400 KB, polled with maxResultBytes 4 MiB: every change once, in order; a change past the cap alone fails with RESULT_TOO_LARGE naming subscribeTrigger`, async () => {
  const sql = (text: string) => pg.sql(text, [], 'wide');
  await sql('CREATE TABLE wide (id int PRIMARY KEY, note text)');
  const request = { connection: { ...pg.config({ database: 'wide' }), maxResultBytes: 4 * 1048576 }, config: { tables: ['wide'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  let state: TriggerState = (await pollTrigger(KEY, request)).state;
  // 409,600 characters a row: its change is about 0.8 MB as the peek's hex text, more than 4 MiB / 17.
  await sql(`INSERT INTO wide SELECT i, repeat(md5(i::text), 12800) FROM generate_series(1, ${ROWS}) i`);
  await sql("INSERT INTO wide VALUES (0, 'after')");

  const keys: number[] = [];
  for (let polls = 0; keys.at(-1) !== 0; polls++) {
    if (polls > ROWS * 2) throw new Error(`no end after ${polls} polls: ${JSON.stringify(keys)}`);
    const result = await pollTrigger(KEY, { ...request, state });
    expect(result.events.length).toBeGreaterThan(0); // every poll moves on
    for (const event of result.events) {
      keys.push((event.key as { id: number }).id);
      if ((event.key as { id: number }).id !== 0) expect((event as unknown as { new: { note: string } }).new.note.length).toBe(409_600);
    }
    state = result.state;
  }
  expect(keys).toEqual([...Array.from({ length: ROWS }, (_, i) => i + 1), 0]);
  expect((await pollTrigger(KEY, { ...request, state })).events).toEqual([]);

  // One change alone over the cap: a clear error, the same at every poll (the state does not move past it).
  await sql("INSERT INTO wide VALUES (-1, repeat('x', 3 * 1048576))");
  for (let i = 0; i < 2; i++) {
    const error = await failureOf(pollTrigger(KEY, { ...request, state }));
    expect(error.code).toBe('RESULT_TOO_LARGE');
    expect(error.message).toMatch(/next change after position .* is larger than maxResultBytes by itself/);
    expect(error.fixes.join(' ')).toMatch(/subscribeTrigger/);
  }
}, 300_000);

/** Polls until the marker (key id 0) arrives; every poll must deliver something. The delivered changes as "table:id". */
async function drainUntilMarker(request: Parameters<typeof pollTrigger>[1], state: TriggerState, most: number): Promise<string[]> {
  const seen: string[] = [];
  for (let polls = 0; seen.at(-1)?.endsWith(':0') !== true; polls++) {
    if (polls > most) throw new Error(`no end after ${polls} polls: ${JSON.stringify(seen)}`);
    const result = await pollTrigger(KEY, { ...request, state });
    expect(result.events.length).toBeGreaterThan(0); // every poll moves on
    for (const event of result.events) {
      seen.push(`${event.table}:${(event.key as { id: number }).id}`);
      if ((event.key as { id: number }).id !== 0) expect((event as unknown as { new: { note: string } }).new.note.length).toBe(1_228_800);
    }
    state = result.state;
  }
  expect((await pollTrigger(KEY, { ...request, state })).events).toEqual([]);
  return seen;
}

// 1,228,800 characters a row: two changes pass 4 MiB as the peek's hex text, so the polls read one change at a time.
const WIDE_NOTE = 'repeat(md5(random()::text), 38400)';

test('one transaction writing a 1.2 MB row into each of 20 tables, polled with maxResultBytes 4 MiB: every change once, in order, then the next transaction (REVIEW7 R125)', async () => {
  await pg.sql('CREATE DATABASE tables20');
  const sql = (text: string) => pg.sql(text, [], 'tables20');
  const tables = Array.from({ length: 20 }, (_, i) => `w${i + 1}`);
  await sql(tables.map((table) => `CREATE TABLE ${table} (id int PRIMARY KEY, note text);`).join('\n'));
  const request = { connection: { ...pg.config({ database: 'tables20' }), maxResultBytes: 4 * 1048576 }, config: { tables, heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const state = (await pollTrigger(KEY, request)).state;
  await sql(`BEGIN; ${tables.map((table, i) => `INSERT INTO ${table} VALUES (${i + 1}, ${WIDE_NOTE});`).join(' ')} COMMIT;`);
  await sql("INSERT INTO w1 VALUES (0, 'after')");
  expect(await drainUntilMarker(request, state, 40)).toEqual([...tables.map((table, i) => `${table}:${i + 1}`), 'w1:0']);
}, 300_000);

test('one table with 24 enum and domain columns, one INSERT of 3 rows of 1.2 MB, polled with maxResultBytes 4 MiB: every change once, in order, then the next transaction (REVIEW7 R125)', async () => {
  await pg.sql('CREATE DATABASE typed');
  const sql = (text: string) => pg.sql(text, [], 'typed');
  // pgoutput sends one Type row per column of a non-built-in type, before the table's Relation row.
  const columns = Array.from({ length: 24 }, (_, i) => `c${i} ${i % 2 ? 'mood' : 'small'} NOT NULL DEFAULT ${i % 2 ? "'ok'" : '1'}`);
  await sql(`CREATE TYPE mood AS ENUM ('ok', 'sad'); CREATE DOMAIN small AS int CHECK (VALUE < 10);
    CREATE TABLE typed (id int PRIMARY KEY, ${columns.join(', ')}, note text)`);
  const request = { connection: { ...pg.config({ database: 'typed' }), maxResultBytes: 4 * 1048576 }, config: { tables: ['typed'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const state = (await pollTrigger(KEY, request)).state;
  await sql(`INSERT INTO typed (id, note) SELECT i, ${WIDE_NOTE} FROM generate_series(1, 3) i`);
  await sql("INSERT INTO typed (id, note) VALUES (0, 'after')");
  expect(await drainUntilMarker(request, state, 10)).toEqual(['typed:1', 'typed:2', 'typed:3', 'typed:0']);
}, 300_000);

test('a state pointing past the end of its transaction (edited): CDC_POLL_STALLED at every poll, not an empty batch at the same position for good', async () => {
  await pg.sql('CREATE DATABASE edited');
  const sql = (text: string) => pg.sql(text, [], 'edited');
  await sql('CREATE TABLE t (id int PRIMARY KEY, v int)');
  const request = { connection: pg.config({ database: 'edited' }), config: { tables: ['t'], heartbeatSeconds: 0, batchSize: 2 } };
  await activateTrigger(KEY, request);
  const start = (await pollTrigger(KEY, request)).state;
  await sql('INSERT INTO t SELECT i, i FROM generate_series(1, 5) i');
  const cut = await pollTrigger(KEY, { ...request, state: start });
  const position = (cut.state as { position: { lsn: string; inside: { rows: number } } }).position;
  expect(position.inside.rows).toBeGreaterThan(0); // a real place inside the transaction
  // Its rows past the transaction's Commit: the peek skips them all, and keeps only its Begin and Relation.
  const edited = { ...cut.state, position: { ...position, inside: { ...position.inside, rows: 1000 } } };
  for (let i = 0; i < 2; i++) {
    const error = await failureOf(pollTrigger(KEY, { ...request, state: edited }));
    expect(error.code).toBe('CDC_POLL_STALLED');
    expect(error.message).toMatch(/after its first 1000 rows but got neither a change nor a new position/);
  }
  // Within 16 of int4's end the peek's row count overflowed on the server (INVALID_VALUE, REVIEW7 R129): the same stop now.
  const nearEnd = { ...cut.state, position: { ...position, inside: { ...position.inside, rows: 2 ** 31 - 10 } } };
  expect((await failureOf(pollTrigger(KEY, { ...request, state: nearEnd }))).code).toBe('CDC_POLL_STALLED');
  // The state as the poll returned it goes on.
  const ids = cut.events.map((event) => (event.key as { id: number }).id);
  for (let state = cut.state, polls = 0; ids.length < 5 && polls < 5; polls++) {
    const result = await pollTrigger(KEY, { ...request, state });
    ids.push(...result.events.map((event) => (event.key as { id: number }).id));
    state = result.state;
  }
  expect(ids).toEqual([1, 2, 3, 4, 5]);
});

test('a transaction whose decoding alone takes longer than statementTimeoutMs: CDC_POLL_DECODE_TIMEOUT at every poll, naming subscribeTrigger; with a longer timeout the poll moves on', async () => {
  await pg.sql('CREATE DATABASE slow');
  const sql = (text: string) => pg.sql(text, [], 'slow');
  await sql('CREATE TABLE t (id int PRIMARY KEY, v int)');
  const request = { connection: { ...pg.config({ database: 'slow' }), statementTimeoutMs: 1000 }, config: { tables: ['t'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const start = (await pollTrigger(KEY, request)).state;
  await sql('INSERT INTO t SELECT i, i FROM generate_series(1, 800000) i'); // several seconds to decode, on any machine
  // A cancelled peek lets go of the slot a moment later (a poll before then: REPLICATION_SLOT_IN_USE), as a host's next poll finds it.
  const released = () => waitFor(async () => (await sql('SELECT 1 FROM pg_replication_slots WHERE active')).length === 0, 'the slot released', 60_000);
  for (let i = 0; i < 2; i++) {
    await released();
    const error = await failureOf(pollTrigger(KEY, { ...request, state: start }));
    expect(error.code).toBe('CDC_POLL_DECODE_TIMEOUT');
    expect(error.message).toMatch(/decoding the transaction after position .* took longer than statementTimeoutMs/);
    expect(error.fixes.join(' ')).toMatch(/subscribeTrigger/);
  }
  await released();
  const moved = await pollTrigger(KEY, { ...request, connection: { ...request.connection, statementTimeoutMs: 300_000 }, state: start });
  expect(moved.events.map((event) => (event.key as { id: number }).id)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
}, 300_000);
