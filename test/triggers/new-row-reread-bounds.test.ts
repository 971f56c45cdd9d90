/**
 * new-row's cursor (triggers/table-cursor.ts) read again when the key's type changed under it, and the
 * bounds of that: the start and the poll read at most three times while the key keeps changing type
 * (REVIEW8 R145, REVIEW7 R124), the poll then refuses with INVALID_INPUT; and R146's retry after a failed
 * poll statement is for the SQLSTATEs of a value of the wrong type only (22xxx, 42883, 42804), not for
 * one that merely holds 22 further on (42P22). The mutation run of 2026-11-30 found these unpinned.
 *
 * How the key changes type "during" a read: the test holds the table locked (ACCESS EXCLUSIVE) in one
 * session after another. A statement of the trigger that reads the table waits for that lock after the
 * trigger read the key's columns and types from the catalog (which takes no lock on the table); while it
 * waits, the holding session may retype the key, then commits, and the next holder has already queued
 * behind the waiting statement, so the trigger's next statement on the table waits again. Every read of
 * the table is thus seen (pg_locks), and a retype lands exactly between the catalog read and the read
 * that uses it.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf, session, waitFor } from './helpers.js';

const reader = `reread_reader_${randomBytes(4).toString('hex')}`;
const db = useTestDatabase('new_row_reread_bounds', {
  beforeDrop: () => db.sql(`DROP OWNED BY ${reader}; DROP ROLE IF EXISTS ${reader}`).then(() => undefined),
});

type Kind = 'start' | 'horizon' | 'poll' | 'other';

/** Which of the trigger's statements waits: the start's read, the horizon's, the poll's rows. */
function kindOf(query: string): Kind {
  if (query.startsWith('WITH open AS')) return 'horizon';
  if (query.startsWith('SELECT t.*,')) return 'poll';
  // (pg_stat_activity keeps the first 1024 bytes of a statement: the start's select list is longer.)
  if (query.startsWith('SELECT t."seq", t."id", (SELECT CASE')) return 'start';
  return 'other';
}

interface LockedRun<T> {
  /** The trigger's statements that read the table, in order. */
  reads: Kind[];
  outcome: { value: T } | { error: unknown };
}

/**
 * Runs `work` while `table` is held locked as described above; at each read of the table `retype(kind,
 * reads so far)` may give an ALTER TABLE that the holder runs before it lets that read go on. After
 * `limit` reads the table is let go (so a run that reads without end still ends).
 */
async function underLock<T>(table: string, work: () => Promise<T>, retype: (kind: Kind, reads: Kind[]) => string | undefined, limit = 10): Promise<LockedRun<T>> {
  const holders: pg.Client[] = [];
  const hold = async (): Promise<{ client: pg.Client; locked: Promise<unknown> }> => {
    const client = await session(db);
    holders.push(client);
    await client.query('BEGIN');
    return { client, locked: client.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`) };
  };
  const waiting = async (pids: number[], exclude: boolean): Promise<string | undefined> => {
    const [row] = await db.sql<{ query: string }>(
      `SELECT a.query FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE NOT l.granted AND l.locktype = 'relation' AND l.relation = $1::regclass AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND (CASE WHEN $3 THEN NOT (l.pid = ANY ($2::int[])) ELSE l.pid = ANY ($2::int[]) END)`,
      [table, pids, exclude],
    );
    return row?.query;
  };
  const pids = () => holders.map((client) => (client as unknown as { processID: number }).processID);
  let current = await hold();
  await current.locked;
  let settled = false;
  const outcome = work().then((value) => ({ value }), (error: unknown) => ({ error })).finally(() => (settled = true));
  const reads: Kind[] = [];
  try {
    for (;;) {
      const query = await waitFor(async () => (settled ? ' settled' : await waiting(pids(), true)), `a read of ${table} (or the end of the work)`, 60_000);
      if (query === ' settled') break;
      reads.push(kindOf(query!));
      const next = reads.length < limit ? await hold() : undefined;
      if (next) await waitFor(() => waiting(pids().slice(-1), false), 'the next holder queued behind the read');
      const alter = retype(reads.at(-1)!, reads);
      if (alter) await current.client.query(alter);
      await current.client.query('COMMIT');
      if (!next) break;
      await next.locked;
      current = next;
    }
    return { reads, outcome: await outcome };
  } finally {
    for (const client of holders) await client.query('ROLLBACK').catch(() => undefined);
    for (const client of holders) await client.end();
  }
}

/** The type of `id` of `table` now. */
async function typeOf(table: string): Promise<string> {
  const [row] = await db.sql<{ type: string }>(`SELECT format_type(atttypid, NULL) AS type FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'id'`, [table]);
  return row!.type;
}

/** Retypes `id` at each of the first `times` reads of `kind`. */
function retypeAt(table: string, kind: Kind, times: number, types: string[]) {
  return (read: Kind, reads: Kind[]) => (read === kind && reads.filter((k) => k === kind).length <= times ? `ALTER TABLE ${table} ALTER COLUMN id TYPE ${types[reads.filter((k) => k === kind).length - 1]}` : undefined);
}

beforeAll(async () => {
  await db.sql(`CREATE TABLE reread_start (seq int NOT NULL, id int PRIMARY KEY); INSERT INTO reread_start SELECT g, g FROM generate_series(1, 3) g;
    CREATE TABLE reread_poll (seq int NOT NULL, id int PRIMARY KEY); INSERT INTO reread_poll SELECT g, g FROM generate_series(1, 3) g;
    CREATE TABLE guarded (seq int NOT NULL, id int PRIMARY KEY); INSERT INTO guarded SELECT g, g FROM generate_series(1, 3) g;
    CREATE ROLE ${reader} LOGIN PASSWORD 'reader-pass'; GRANT SELECT ON guarded TO ${reader};
    -- The poll's read of the rows fails (and only it: not the horizon's), with a SQLSTATE that holds 22 past its class.
    CREATE FUNCTION guard(int) RETURNS boolean LANGUAGE plpgsql STABLE AS $f$
      BEGIN
        IF current_query() LIKE 'SELECT t.*,%' THEN RAISE EXCEPTION 'row % is guarded', $1 USING ERRCODE = 'indeterminate_collation'; END IF;
        RETURN true;
      END $f$;
    ALTER TABLE guarded ENABLE ROW LEVEL SECURITY; CREATE POLICY guarded_rows ON guarded FOR SELECT USING (guard(id))`);
}, 60_000);

test('a start whose key changes type during each of three reads reads no more: the third read is the start', async () => {
  expect(await typeOf('reread_start')).toBe('integer');
  const config = { table: 'reread_start', column: 'seq', batchSize: 1 };
  await pollTrigger('new-row', { connection: db.config, config }); // caches the shape and the key's orders: id int
  const run = await underLock('reread_start', () => pollTrigger('new-row', { connection: db.config, config }), retypeAt('reread_start', 'start', 3, ['bigint', 'integer', 'bigint']));
  // Three reads of the start, each stale (read again), the third returned; then the first poll's horizon.
  expect(run.reads).toEqual(['start', 'start', 'start', 'horizon']);
  // The third read's row: id is a bigint by then (three changes), which events carry as text.
  expect(await typeOf('reread_start')).toBe('bigint');
  expect('value' in run.outcome && run.outcome.value.state.position).toMatchObject({ after: [3, '3'], afterText: ['3', '3'] });
  await db.sql('INSERT INTO reread_start VALUES (4, 4)');
  const next = await pollTrigger('new-row', { connection: db.config, config, state: (run.outcome as { value: { state: TriggerState } }).value.state });
  expect(next.events.map((event) => (event as unknown as { key: unknown }).key)).toEqual([{ id: '4' }]);
}, 180_000);

test('a poll whose key changes type during each of three reads refuses (INVALID_INPUT), reads no fourth time, and the next poll goes on', async () => {
  const config = { table: 'reread_poll', column: 'seq', batchSize: 1, from: 'beginning' as const };
  const first = await pollTrigger('new-row', { connection: db.config, config }); // row 1; caches the shape and orders: id int
  expect(first.events.map((event) => (event as unknown as { key: unknown }).key)).toEqual([{ id: 1 }]);
  const run = await underLock('reread_poll', () => pollTrigger('new-row', { connection: db.config, config, state: first.state }), retypeAt('reread_poll', 'poll', 3, ['bigint', 'integer', 'bigint']));
  expect(run.reads).toEqual(['horizon', 'poll', 'horizon', 'poll', 'horizon', 'poll']);
  const refused = 'error' in run.outcome ? (run.outcome.error as { code?: string; message?: string; problems?: string[] }) : undefined;
  expect({ code: refused?.code, message: refused?.message, problems: refused?.problems }).toEqual({
    code: 'INVALID_INPUT',
    message: "config.table: the key's type of public.reread_poll changed while each of three polls was read; poll again once the schema change is over",
    problems: ["config.table's key changed type during the poll"],
  });
  // Once the schema change is over, the same state polls on from row 2.
  const next = await pollTrigger('new-row', { connection: db.config, config, state: first.state });
  expect(next.events.map((event) => (event as unknown as { key: unknown }).key)).toEqual([{ id: '2' }]);
}, 180_000);

test('a poll statement that fails with a SQLSTATE holding 22 past its class (42P22) is thrown as it is: not taken for a retyped key, not read again', async () => {
  const config = { table: 'guarded', column: 'seq', batchSize: 1, from: 'beginning' as const };
  const connection = { ...db.config, user: reader, password: 'reader-pass' };
  // A state past row 1 (as the owner, whom the policy does not bind) whose horizon covers rows 2 and 3.
  const first = await pollTrigger('new-row', { connection: db.config, config });
  expect(first.events.map((event) => (event as unknown as { key: unknown }).key)).toEqual([{ id: 1 }]);
  const run = await underLock('guarded', () => pollTrigger('new-row', { connection, config, state: first.state }), () => undefined);
  expect(run.reads).toEqual(['horizon', 'poll']);
  const error = 'error' in run.outcome ? (run.outcome.error as { sqlstate?: string; message?: string }) : undefined;
  expect(error?.sqlstate).toBe('42P22');
  expect(error?.message).toMatch(/^Row 2 is guarded/);
  // The same failure without the lock: thrown as well.
  expect((await failureOf(pollTrigger('new-row', { connection, config, state: first.state }))).sqlstate).toBe('42P22');
}, 180_000);
