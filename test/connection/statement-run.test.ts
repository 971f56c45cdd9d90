/**
 * connection/statement.ts's StatementRun driven directly, with plans execute() makes only in some
 * set-ups (a transaction pooler's check, a named probe and its forgery check, a failure after the
 * step's COMMIT), on a plain pg.Client with the result gate installed as pools.ts installs it, against
 * the real server. Cheap enough to run per mutant (npm run test:mutation).
 */
import { jest } from '@jest/globals';
import pg from 'pg';
import { installGate } from '../../connection/result-gate.js';
import { preparedCount, shapeCacheSize, StatementRun, type StatementPlan } from '../../connection/statement.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('statement_run');
// Each test takes a second or two: a step that never ends fails here, not at a 2-minute bound (mutation runs).
jest.setTimeout(20_000);
let client: pg.Client;
let overflows = 0;
let breaks = 0;

/** A new gated client in place of the test's (the one before may have been broken on purpose). */
async function freshClient(): Promise<void> {
  await client?.end().catch(() => undefined);
  client = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
  installGate(client.connection, 1 << 30);
  await client.connect();
}

beforeEach(async () => {
  await freshClient();
  overflows = breaks = 0;
}, 30_000);
afterEach(async () => {
  await client.end().catch(() => undefined);
}, 30_000);

const destroy = () => (client.connection as unknown as { stream: { destroy(): void } }).stream.destroy();

function start(extra: Partial<StatementPlan>): StatementRun {
  const plan: StatementPlan = { text: 'SELECT 1 AS one', values: [], before: [], after: [], maxResultBytes: 1_000_000, discardRows: false, typeParser: (oid) => pg.types.getTypeParser(oid), ...extra };
  const run = new StatementRun(plan, () => (overflows++, destroy()), () => (breaks++, destroy()));
  void client.query(run);
  return run;
}

async function failedAt(extra: Partial<StatementPlan>): Promise<[string | undefined, string | undefined]> {
  const run = start(extra);
  const code = await run.done.then(() => 'resolved', (error: { code?: string }) => error.code);
  // Once its ReadyForQuery has come (the next query waits for it), a failed round trip is still not finished.
  await client.query('SELECT 1');
  return [run.failedAt, run.finished ? `${code}, finished` : code];
}

test('failedAt tells where the round trip failed: before the statement, at it, after it, or after its commit', async () => {
  expect(await failedAt({ before: ['SELECT 1 / 0'] })).toEqual(['before', '22012']);
  expect(await failedAt({ text: 'SELECT 1 / 0' })).toEqual(['statement', '22012']);
  expect(await failedAt({ after: ['SELECT 1 / 0'] })).toEqual(['after', '22012']);
  // Within the commit it is not committed yet; from the probe right after it on, it is.
  expect(await failedAt({ commit: ['SELECT 1 / 0'] })).toEqual(['after', '22012']);
  expect(await failedAt({ commit: ['SELECT 2'], probe: { text: 'SELECT 1 / 0' } })).toEqual(['committed', '22012']);
  expect(await failedAt({ commit: ['SELECT 2'], after: ['SELECT 1 / 0'] })).toEqual(['committed', '22012']);
  expect(await failedAt({ before: ['SELECT 2'], commit: ['SELECT 3'], after: ['SELECT 1 / 0'] })).toEqual(['committed', '22012']);
  // One of our Parses refused (the name is taken): nothing ran, though the error comes first of all.
  await client.query('PREPARE pg_actions_taken AS SELECT 1');
  expect(await failedAt({ after: [{ name: 'pg_actions_taken', text: 'SELECT 2' }] })).toEqual(['before', '42P05']);
  // The user's own statement failing with 42P05 (its name is not one we parsed now) is the statement's.
  expect(await failedAt({ text: 'PREPARE pg_actions_taken AS SELECT 3' })).toEqual(['statement', '42P05']);
});

test('a named statement is parsed once per connection, then only bound', async () => {
  const begin = { name: 'pg_actions_test_begin', text: 'BEGIN' };
  const rollback = { name: 'pg_actions_test_rollback', text: 'ROLLBACK' };
  for (let i = 0; i < 3; i++) {
    const outcome = await start({ before: [begin], after: [rollback] }).done;
    expect(outcome.rows).toEqual([{ one: 1 }]);
  }
  expect(preparedCount(client)).toBe(2);
  const { rows } = await client.query('SELECT name, statement FROM pg_prepared_statements ORDER BY name');
  expect(rows).toEqual([{ name: 'pg_actions_test_begin', statement: 'BEGIN' }, { name: 'pg_actions_test_rollback', statement: 'ROLLBACK' }]);
  expect((await client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
});

test('only the statement\'s rows and fields are kept, whatever comes before and after it', async () => {
  const run = start({ before: [`SELECT 'b' AS before_col`], text: 'SELECT g AS n FROM generate_series(1, 2) g', commit: [`SELECT 'c' AS commit_col`], after: [`SELECT 'a' AS after_col`], tail: [`SELECT 't' AS tail_col`] });
  const outcome = await run.done;
  expect(outcome).toEqual({ command: 'SELECT', rowCount: 2, rows: [{ n: 1 }, { n: 2 }], fields: [{ name: 'n', dataTypeID: 23 }] });
  expect([run.result, run.command]).toEqual([outcome, 'SELECT']);
  expect([run.finished, run.settledEarly, run.needsReset, run.failedAt, run.sessionReading]).toEqual([true, false, false, undefined, undefined]);
});

test('the probe\'s row becomes the session reading; a named probe\'s check overrules its count, or marks a forgery', async () => {
  const probe = `SELECT true AS unlocked, false AS objects, 7 AS own, 'x=1' AS settings`;
  const plain = start({ commit: ['SELECT 9 AS not_the_probe'], probe: { text: probe }, after: ['SELECT 8 AS not_the_probe_either'] });
  await plain.done;
  expect(plain.sessionReading).toEqual({ objects: false, own: 7, settings: 'x=1' });
  const checked = start({ commit: ['SELECT 9'], probe: { text: probe, name: 'pg_actions_test_probe', check: 'SELECT 3 AS own, false AS forged' }, after: ['SELECT 4, true'] });
  await checked.done;
  expect(checked.sessionReading).toEqual({ objects: false, own: 3, settings: 'x=1' });
  const forged = start({ probe: { text: probe, name: 'pg_actions_test_probe', check: 'SELECT 3 AS own, true AS forged' } });
  await forged.done;
  expect(forged.sessionReading).toEqual({ objects: true, own: 7, settings: 'x=1' });
  const rows = start({
    before: ['SELECT 5'],
    probe: { text: `SELECT true, false AS temp, false AS from_sql, 'pg_actions_a' AS name UNION ALL SELECT true, false, false, 'other'`, rows: true },
  });
  await rows.done;
  expect(rows.sessionReading).toEqual({ objects: false, own: 1, rows: 2 });
});

test('a failed check leaves the step done with needsReset, its transaction open for the owner; a failure before the check is the step\'s', async () => {
  const plans: Partial<StatementPlan>[] = [
    { before: ['BEGIN'], after: ['SELECT 2'], check: 'SELECT 1 / 0', tail: ['COMMIT'] },
    { before: ['BEGIN'], commit: ['SELECT 2'], probe: { text: 'SELECT true, false, 0' }, check: 'SELECT 1 / 0', tail: ['COMMIT'] },
    { before: ['BEGIN'], probe: { text: 'SELECT true, false, 0', name: 'pg_actions_test_probe', check: 'SELECT 0, false' }, after: ['SELECT 3', 'SELECT 4'], check: 'SELECT 1 / 0', tail: ['COMMIT'] },
  ];
  for (const plan of plans) {
    const run = start(plan);
    expect(await run.done).toMatchObject({ command: 'SELECT', rows: [{ one: 1 }] });
    expect([run.needsReset, run.finished, run.failedAt]).toEqual([true, true, undefined]);
    // The server skipped the tail's COMMIT: the failed transaction is still there.
    await expect(client.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
    await client.query('ROLLBACK');
  }
  const failed = start({ before: ['BEGIN'], after: ['SELECT 1 / 0'], check: 'SELECT 2', tail: ['COMMIT'] });
  await expect(failed.done).rejects.toMatchObject({ code: '22012' });
  expect([failed.needsReset, failed.failedAt]).toEqual([false, 'after']);
  await client.query('ROLLBACK');
});

test('early resolves once the outcome is final (a Flush sends it at once), before the rest of the round trip', async () => {
  // The statement after it waits for a lock this test holds: the round trip cannot end before it is released.
  const locker = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
  await locker.connect();
  try {
    for (const plan of [{ outcomeAt: 0 }, { commit: ['SELECT 2', 'SELECT 3'], outcomeAt: 2 }]) {
      await locker.query('SELECT pg_advisory_lock(4242)');
      const run = start({ ...plan, after: ['SELECT pg_advisory_lock(4242)', 'SELECT pg_advisory_unlock(4242)'] });
      const first = await Promise.race([run.early.then(() => 'early'), run.done.then(() => 'done'), new Promise((resolve) => setTimeout(resolve, 5000, 'nothing within 5 s'))]);
      await locker.query('SELECT pg_advisory_unlock(4242)');
      expect(first).toBe('early');
      expect([(await run.early).rows, run.settledEarly]).toEqual([[{ one: 1 }], true]);
      await run.done;
    }
  } finally {
    await locker.end();
  }
  // Not when settlesEarly says the outcome still hangs on a later reply, nor for a refused result.
  for (const plan of [{ outcomeAt: 0, settlesEarly: () => false }, { text: 'SELECT 1 AS x, 2 AS x', outcomeAt: 0 }, { outcomeAt: 1 }]) {
    await freshClient(); // a refused result breaks its session: each run on a client of its own
    const run = start(plan);
    await run.done.catch(() => undefined);
    // A broken session may reject `early` later (Connection terminated): that is "not early" too, never an unhandled rejection.
    expect(await Promise.race([run.early.then(() => 'early', () => 'not early'), new Promise((resolve) => setTimeout(resolve, 50, 'not early'))])).toBe('not early');
    expect(run.settledEarly).toBe(false);
  }
  // An empty statement completes too (EmptyQueryResponse).
  await freshClient();
  const empty = start({ text: '', outcomeAt: 0 });
  expect(await empty.early).toMatchObject({ command: '', rowCount: 0, rows: [] });
  await empty.done; // the round trip ends before the client does (afterEach), or its rejection goes unhandled
});

test('passing the cap: the owner is told once, the rows are dropped, the step fails', async () => {
  // About 180 rows fit under the cap, over several socket reads: those already kept are dropped too.
  const run = start({ text: `SELECT repeat('x', 1000) AS filler FROM generate_series(1, 2000)`, maxResultBytes: 200_000 });
  await expect(run.done).rejects.toThrow('result too large');
  expect([run.overflowed, overflows, breaks, run.result.rows]).toEqual([true, 1, 0, []]);
});

test('a value the reader cannot read fails the step with RESULT_UNREADABLE and breaks the session; NULLs are not read', async () => {
  const run = start({
    text: `SELECT NULL::int AS nothing, g AS n FROM generate_series(1, 3) g`,
    typeParser: () => (text) => {
      if (text === '2') throw new RangeError('bad value');
      return Number(text);
    },
  });
  await expect(run.done).rejects.toMatchObject({ code: 'RESULT_UNREADABLE', message: 'The value of column "n" (type oid 23) could not be read (bad value); the step was stopped.', cause: new RangeError('bad value') });
  expect([run.broken, breaks, overflows, run.result.rows]).toEqual([true, 1, 0, []]);
});

test('COPY … FROM STDIN fails the step and breaks the session, nothing copied', async () => {
  await client.query('CREATE TABLE IF NOT EXISTS inbox (v text)');
  const run = start({ text: 'COPY inbox FROM STDIN' });
  await expect(run.done).rejects.toMatchObject({
    code: 'INVALID_INPUT',
    message: 'COPY … FROM STDIN reads data from the client, which a step cannot send; nothing was copied.',
    problems: ['input.query must not be COPY … FROM STDIN'],
    fixes: ['Insert many rows with one statement: INSERT INTO t (a, b) SELECT * FROM pg_catalog.unnest($1::pg_catalog.text[], $2::int[]).', 'COPY … FROM a server-side file or program needs pg_read_server_files and runs on the database host.'],
    query: 'COPY inbox FROM STDIN',
  });
  expect([run.broken, breaks]).toEqual([true, 1]);
});

test('a result shape is read once per SQL text (its type parsers looked up once)', async () => {
  let lookups = 0;
  const typeParser = (oid: number) => (lookups++, pg.types.getTypeParser(oid));
  const text = `SELECT 1 AS a, 'x' AS b -- shape ${Date.now()}`;
  expect((await start({ text, typeParser }).done).rows).toEqual([{ a: 1, b: 'x' }]);
  expect(lookups).toBe(2);
  expect((await start({ text, typeParser }).done).rows).toEqual([{ a: 1, b: 'x' }]);
  expect(lookups).toBe(2);
});

test('the shape cache stays bounded: at most 500 texts and 1 MiB of their text, none longer than 16 KiB', async () => {
  const run = (text: string) => start({ text }).done;
  const padded = (length: number, tag: string) => {
    const head = `SELECT 1 AS one -- ${tag} `;
    return head + 'x'.repeat(length - head.length);
  };
  let { chars } = shapeCacheSize();
  await run(padded(16 * 1024 + 1, `long ${Date.now()}`));
  expect(shapeCacheSize().chars).toBe(chars);
  const longest = padded(16 * 1024, `longest ${Date.now()}`);
  await run(longest);
  expect(shapeCacheSize().chars).toBe(chars + longest.length);
  // The same text with other columns replaces its entry.
  chars = shapeCacheSize().chars;
  await client.query('CREATE TABLE IF NOT EXISTS reshaped_cache (a int)');
  await run('SELECT * FROM reshaped_cache');
  await client.query('ALTER TABLE reshaped_cache RENAME COLUMN a TO b');
  await run('SELECT * FROM reshaped_cache');
  expect(shapeCacheSize().chars).toBe(chars + 'SELECT * FROM reshaped_cache'.length);
  // 600 texts: never more than 500 kept, and the count starts again when full.
  let most = 0;
  for (let i = 0; i < 600; i++) {
    await run(`SELECT ${i} AS n`);
    most = Math.max(most, shapeCacheSize().texts);
  }
  expect(most).toBe(500);
  expect(shapeCacheSize().texts).toBeLessThan(500);
  // 80 texts of 16,000 characters (1.3 MB): never more than 1 MiB of text kept.
  let mostChars = 0;
  for (let i = 0; i < 80; i++) {
    await run(padded(16_000, `wide ${i} ${Date.now()}`));
    mostChars = Math.max(mostChars, shapeCacheSize().chars);
  }
  expect(mostChars).toBeLessThanOrEqual(1024 * 1024);
  expect(mostChars).toBeGreaterThan(1024 * 1024 - 16_000);
});

test('two columns of one name: the step fails once the statement is over, saying whether it was committed', async () => {
  const rolledBack = start({ text: 'SELECT 1 AS x, 2 AS x' });
  await expect(rolledBack.done).rejects.toMatchObject({
    code: 'INVALID_INPUT',
    message: 'The result has two columns named "x"; a row keeps one value per name, so one would be lost.',
    problems: ['input.query must give each result column a distinct name (two are named "x")'],
    fixes: ['Name the columns apart with AS, e.g. SELECT a.id AS a_id, b.id AS b_id …'],
  });
  // The repeated name, not the first column's.
  const committed = start({ text: 'SELECT 1 AS z, 2 AS y, 3 AS y', commitsItself: true });
  await expect(committed.done).rejects.toMatchObject({
    message: 'The result has two columns named "y"; a row keeps one value per name, so one would be lost. The statement was committed all the same (it ran as its own transaction).',
    fixes: ['Name the columns apart with AS, e.g. SELECT a.id AS a_id, b.id AS b_id …', 'Check what the statement changed before running it again: it was committed, and would be a second time.'],
  });
  expect(committed.finished).toBe(false);
  // Only the statement's own columns count: a probe or a discarded result may repeat a name.
  expect((await start({ text: 'SELECT 1 AS x, 2 AS x', discardRows: true }).done).rowCount).toBe(1);
  expect((await start({ before: ['SELECT 1 AS x, 2 AS x'], probe: { text: 'SELECT true AS x, false AS x, 0 AS x' } }).done).rows).toEqual([{ one: 1 }]);
});

test('an onProgress that throws ends the step (INVALID_INPUT, the session broken); without onProgress a large result is simply read', async () => {
  const text = `SELECT repeat('x', 1000) AS filler FROM generate_series(1, 3000)`;
  const thrown = new Error('host bug');
  const run = start({ text, maxResultBytes: 10_000_000, onProgress: () => { throw thrown; } });
  await expect(run.done).rejects.toMatchObject({
    code: 'INVALID_INPUT',
    message: 'The onProgress callback threw (host bug); the step was stopped.',
    problems: ['onProgress must not throw'],
    fixes: ['Catch errors inside the onProgress callback.'],
    cause: thrown,
    query: text,
  });
  expect([run.broken, breaks, run.result.rows]).toEqual([true, 1, []]);
  await client.end();
  client = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
  installGate(client.connection, 1 << 30);
  await client.connect();
  expect((await start({ text, maxResultBytes: 10_000_000 }).done).rows).toHaveLength(3000);
});

test('a value that cannot be sent fails the step, and the connection stays in step', async () => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  const run = start({ text: 'SELECT $1::jsonb AS doc', values: [circular] });
  await expect(run.done).rejects.toThrow(/circular/i);
  expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
  // Its ReadyForQuery came (to the run: no error message was read), yet the step did not go through.
  expect(run.finished).toBe(false);
});

test('once the round trip is over, the connection\'s own hard limit applies again to queries that are not steps', async () => {
  const guarded = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
  let tripped = 0;
  const stream = () => (guarded.connection as unknown as { stream: { destroy(): void } }).stream;
  installGate(guarded.connection, 64 * 1024);
  await guarded.connect();
  guarded.on('error', () => undefined);
  try {
    const run = new StatementRun(
      { text: 'SELECT 1 AS one', values: [], before: [], after: [], maxResultBytes: 1_000_000, discardRows: false, typeParser: (oid) => pg.types.getTypeParser(oid) },
      () => (tripped++, stream().destroy()),
    );
    void guarded.query(run);
    expect((await run.done).rows).toEqual([{ one: 1 }]);
    // 100 KB through pg's own query: past the 64 KiB crash guard, the connection is cut.
    await expect(guarded.query(`SELECT repeat('y', 100000) AS filler`)).rejects.toThrow();
    expect(tripped).toBe(0);
  } finally {
    await guarded.end().catch(() => undefined);
  }
});

describe('what the mutation run of lines 262-497 found unpinned', () => {
  test('a command tag with a count of two digits or more: the command is the tag\'s words, the count its number', async () => {
    await client.query('CREATE TEMP TABLE twelve (n int)');
    const outcome = await start({ text: 'INSERT INTO twelve SELECT generate_series(1, 12)' }).done;
    expect([outcome.command, outcome.rowCount]).toEqual(['INSERT', 12]);
    const selected = await start({ text: 'SELECT n FROM twelve' }).done;
    expect([selected.command, selected.rowCount, selected.rows.length]).toEqual(['SELECT', 12, 12]);
  });

  test('a named probe\'s check that returns no row marks the reading forged, whatever rows came before the probe', async () => {
    const probe = `SELECT true AS unlocked, false AS objects, 7 AS own, 'x=1' AS settings`;
    // The commit's row reaches the run (rows before the statement are dropped by the gate), the check gives none.
    const run = start({ commit: ['SELECT 5 AS own'], probe: { text: probe, name: 'pg_actions_test_probe', check: 'SELECT 3 AS own, false AS forged WHERE false' } });
    await run.done;
    expect(run.sessionReading).toEqual({ objects: true, own: 7, settings: 'x=1' });
  });

  test('a named probe\'s check as the last statement of the round trip still gives the reading its count', async () => {
    const probe = `SELECT true AS unlocked, false AS objects, 7 AS own, 'x=1' AS settings`;
    const run = start({ probe: { text: probe, name: 'pg_actions_test_probe', check: 'SELECT 3 AS own, false AS forged' } });
    await run.done;
    expect(run.sessionReading).toEqual({ objects: false, own: 3, settings: 'x=1' });
  });

  test('an empty statement settles early only where the plan says, and the statements after it keep their places', async () => {
    const plain = start({ text: '' });
    expect(await plain.done).toMatchObject({ command: '', rows: [] });
    expect([plain.settledEarly, plain.finished]).toEqual([false, true]);
    const atCommit = start({ text: '', commit: ['SELECT 2'], outcomeAt: 1, probe: { text: `SELECT true, false, 4, 's'` } });
    await atCommit.done;
    expect([atCommit.settledEarly, atCommit.sessionReading]).toEqual([true, { objects: false, own: 4, settings: 's' }]);
  });

  test('only a 42P05 naming one of the statements parsed in this round trip is ours', async () => {
    await client.query('PREPARE pg_actions_users_own AS SELECT 1');
    // The user's PREPARE of a taken name, in a round trip that parsed one of ours: the statement's failure.
    expect(await failedAt({ text: 'PREPARE pg_actions_users_own AS SELECT 3', after: [{ name: 'pg_actions_fresh_a', text: 'SELECT 2' }] })).toEqual(['statement', '42P05']);
    // Another error that quotes the name of one we parsed now: the statement's too.
    expect(await failedAt({ text: 'SELECT * FROM pg_actions_fresh_b', after: [{ name: 'pg_actions_fresh_b', text: 'SELECT 2' }] })).toEqual(['statement', '42P01']);
  });
});
