/**
 * Issue 10's smaller defects, each against the real server: retryable errors with their own
 * codes, a throwing onProgress, redaction before capitalisation, one pool per connection however
 * it is spelled, bytea[] from Buffers, exact JSON numbers, and the edge cases of results and values.
 */
import pg from 'pg';
import { closeAll, execute, PgActionsError, type ConnectionConfig } from '../../connection/index.js';
import { openPoolCount } from '../../connection/pools.js';
import { eventually, failure } from '../harness/failures.js';
import { serverUrl } from '../harness/db.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('edges');
beforeAll(async () => {
  await db.sql(`CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)`);
  await db.sql(`INSERT INTO items VALUES (1, 0), (2, 0)`);
});

/** A second session of the admin's, to hold locks and race the step. */
async function otherSession(): Promise<pg.Client> {
  const client = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
  await client.connect();
  return client;
}

describe('errors worth retrying have their own codes and say so', () => {
  test('55P03 LOCK_NOT_AVAILABLE (NOWAIT on a locked row)', async () => {
    const other = await otherSession();
    try {
      await other.query('BEGIN; SELECT * FROM items WHERE id = 1 FOR UPDATE');
      const error = await failure(execute(db.config, { text: 'SELECT * FROM items WHERE id = 1 FOR UPDATE NOWAIT' }));
      expect(error.code).toBe('LOCK_NOT_AVAILABLE');
      expect([error.retryable, error.toJSON().retryable]).toEqual([true, true]);
    } finally {
      await other.query('ROLLBACK');
      await other.end();
    }
  });

  test('40P01 DEADLOCK_DETECTED (two steps lock two rows in opposite orders)', async () => {
    // Each step locks its first row, then waits at a gate this test holds (a transaction-level advisory lock, so
    // the steps' sessions keep nothing): once both wait there, each holds the row the other needs next. No
    // sleep decides it (a hold of 1.5 s was not enough under load: a step starting late found nothing to deadlock with).
    const config: ConnectionConfig = { ...db.config, applicationName: 'edges-deadlock' };
    const gate = await otherSession();
    let outcomes: (PgActionsError | undefined)[];
    try {
      await gate.query('BEGIN; SELECT pg_advisory_xact_lock(4040)');
      const crossing = (first: number, second: number) =>
        execute(config, {
          text: `WITH a AS (UPDATE items SET v = v + 1 WHERE id = ${first} RETURNING pg_advisory_xact_lock_shared(4040))
                 UPDATE items SET v = v + 1 WHERE id = ${second} AND (SELECT count(*) FROM a) = 1`,
        }).then(() => undefined, (error: unknown) => error as PgActionsError);
      const crossed = Promise.all([crossing(1, 2), crossing(2, 1)]);
      const atGate = async () =>
        (await db.sql(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'edges-deadlock' AND wait_event = 'advisory'`, [db.name])).length === 2;
      expect(await eventually(atGate, 20_000)).toBe(true);
      await gate.query('COMMIT');
      outcomes = await crossed;
    } finally {
      await gate.end();
    }
    const failed = outcomes.filter((outcome): outcome is PgActionsError => outcome !== undefined);
    expect(failed).toHaveLength(1);
    expect(failed[0]!.code).toBe('DEADLOCK_DETECTED');
    expect([failed[0]!.sqlstate, failed[0]!.retryable]).toEqual(['40P01', true]);
  });

  test('40001 SERIALIZATION_FAILURE (a repeatable-read step updates a row another transaction changed)', async () => {
    const config: ConnectionConfig = { ...db.config, applicationName: 'edges-rr' };
    await db.sql(`ALTER ROLE CURRENT_USER IN DATABASE ${db.name} SET default_transaction_isolation = 'repeatable read'`);
    const other = await otherSession();
    try {
      await other.query('BEGIN; UPDATE items SET v = v + 1 WHERE id = 2');
      const step = failure(execute(config, { text: 'UPDATE items SET v = v + 10 WHERE id = 2' }));
      // The step waits for the other transaction's row lock (not a fixed sleep: under load it may start late).
      const waiting = async () => (await db.sql(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'edges-rr' AND wait_event_type = 'Lock'`, [db.name])).length === 1;
      expect(await eventually(waiting, 20_000)).toBe(true);
      await other.query('COMMIT');
      const error = await step;
      expect(error.code).toBe('SERIALIZATION_FAILURE');
      expect(error.retryable).toBe(true);
    } finally {
      await other.end();
      await db.sql(`ALTER ROLE CURRENT_USER IN DATABASE ${db.name} RESET default_transaction_isolation`);
    }
  });

  test('53400 TEMP_FILE_LIMIT_EXCEEDED (a sort that spills past temp_file_limit)', async () => {
    const config: ConnectionConfig = { ...db.config, applicationName: 'edges-temp' };
    await db.sql(`ALTER ROLE CURRENT_USER IN DATABASE ${db.name} SET temp_file_limit = '64kB'`);
    await db.sql(`ALTER ROLE CURRENT_USER IN DATABASE ${db.name} SET work_mem = '64kB'`);
    try {
      const error = await failure(execute(config, { text: 'SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC LIMIT 1' }));
      expect(error.code).toBe('TEMP_FILE_LIMIT_EXCEEDED');
      expect([error.sqlstate, error.retryable]).toEqual(['53400', true]);
    } finally {
      await db.sql(`ALTER ROLE CURRENT_USER IN DATABASE ${db.name} RESET temp_file_limit`);
      await db.sql(`ALTER ROLE CURRENT_USER IN DATABASE ${db.name} RESET work_mem`);
    }
  });

  test('an ordinary error is not retryable', async () => {
    const error = await failure(execute(db.config, { text: 'SELECT 1 / 0' }));
    expect(error.retryable).toBe(false);
  });
});

test('an onProgress callback that throws fails the step (the process lives on) and the next step works', async () => {
  const error = await failure(
    execute(db.config, {
      text: `SELECT repeat('x', 1000) AS filler FROM generate_series(1, 4000)`,
      onProgress: () => {
        throw new Error('host bug');
      },
    }),
  );
  expect(error.message).toMatch(/onProgress callback threw \(host bug\)/);
  expect((await execute(db.config, { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
});

test('a password at the start of a server message is redacted before the message is capitalised', async () => {
  const password = db.config.password!;
  expect(password[0]).toBe(password[0]!.toLowerCase()); // the case that used to slip through
  const error = await failure(execute(db.config, { text: `DO $$BEGIN RAISE EXCEPTION '%', $1; END$$`.replace('$1', `'${password} was here'`) }));
  expect(error.message.toLowerCase()).not.toContain(password.toLowerCase());
  expect(error.message).toMatch(/was here/);
});

test('six spellings of one connection share one pool', async () => {
  await closeAll();
  const url = new URL(serverUrl());
  const { host, port, user, password, database } = db.config as Required<ConnectionConfig>;
  const encoded = `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${database}`;
  const spellings: ConnectionConfig[] = [
    { host, port, user, password, database },
    { database, password, user, port, host }, // keys in another order
    { connectionString: encoded },
    { connectionString: `host=${host} port=${port} dbname=${database} user=${user} password=${password}` },
    { host: host.toUpperCase(), port, user, password, database, sslMode: 'prefer', applicationName: 'pg-actions' }, // defaults written out
    { connectionString: `${encoded}?sslmode=prefer`, statementTimeoutMs: 60000 },
  ];
  expect(url.hostname).toBe(host);
  for (const spelling of spellings) await execute(spelling, { text: 'SELECT 1' });
  expect(openPoolCount()).toBe(1);
});

test('Buffers and Uint8Arrays in an array are bytea[] elements, not their JSON', async () => {
  const { rows } = await execute(db.config, { text: 'SELECT $1::bytea[] AS b', values: [[Buffer.from([1, 2, 255]), new Uint8Array([0, 92, 34]), null]] });
  expect(rows[0]!.b).toEqual([Buffer.from([1, 2, 255]).toString('base64'), Buffer.from([0, 92, 34]).toString('base64'), null]);
});

test('json and jsonb numbers beyond a double come back exactly, as strings of their digits; the rest as numbers', async () => {
  const { rows } = await execute(db.config, {
    text: `SELECT '{"id":12345678901234567890,"big":1e400,"n":9007199254740993,"f":1.5,"i":42,"s":"1e5","a":[0.1,-0]}'::json AS j,
                  '{"id":12345678901234567890,"n":9007199254740993,"small":1e-400}'::jsonb AS jb`,
  });
  expect(rows[0]!.j).toEqual({ id: '12345678901234567890', big: '1e400', n: '9007199254740993', f: 1.5, i: 42, s: '1e5', a: [0.1, -0] });
  expect(rows[0]!.jb).toEqual({ id: '12345678901234567890', n: '9007199254740993', small: expect.stringMatching(/^0\.0{399}1$/) });
});

test('json and jsonb numbers of 16+ significant digits around the point come back exact, with or without an exponent elsewhere (REVIEW4 R34)', async () => {
  const { rows } = await execute(db.config, {
    text: `SELECT $1::jsonb AS jb, $1::json AS j, ($1::jsonb || '{"name": "x"}')::jsonb AS named`,
    values: ['{"amount": 9007199254740.993, "qty": 12345678.123456789, "cost": 19.99}'],
  });
  const exact = { amount: '9007199254740.993', qty: '12345678.123456789', cost: 19.99 };
  expect(rows[0]).toEqual({ jb: exact, j: exact, named: { ...exact, name: 'x' } });
});

test('a jsonb document nested 8,000 levels deep comes back whole, and the host process lives (no recursion per level)', async () => {
  const depth = 8000;
  const { rows } = await execute(db.config, {
    text: `SELECT (repeat('[', ${depth}) || '12345678901234567890' || repeat(']', ${depth}))::jsonb AS arrays,
                  (repeat('{"e":', ${depth}) || '1e400' || repeat('}', ${depth}))::jsonb AS objects`,
  });
  let arrays = rows[0]!.arrays as unknown;
  let objects = rows[0]!.objects as unknown;
  for (let level = 0; level < depth; level++) {
    expect(Array.isArray(arrays) && arrays.length === 1).toBe(true);
    expect(Object.keys(objects as object)).toEqual(['e']);
    arrays = (arrays as unknown[])[0];
    objects = (objects as Record<string, unknown>).e;
  }
  expect([arrays, objects]).toEqual(['12345678901234567890', '1' + '0'.repeat(400)]); // jsonb writes 1e400 out in full
});

test('a jsonb string value of 9 M characters (a base64 attachment, or escapes) comes back whole: no regex backtracking per character (REVIEW4 R27)', async () => {
  const chars = 9_000_000;
  const { rows } = await execute(db.config, {
    // A 20-digit id sends the documents down the exact-number path; the second string is all escapes.
    text: `SELECT jsonb_build_object('id', 12345678901234567890, 'name', 'invoice.pdf', 'content', repeat('QUJD', ${chars / 4})) AS plain,
                  jsonb_build_object('id', 12345678901234567890, 'name', repeat(E'"\\\\', ${chars / 4})) AS escaped`,
    maxResultBytes: 64 * 1048576,
  });
  const { plain, escaped } = rows[0] as { plain: { id: string; name: string; content: string }; escaped: { id: string; name: string } };
  expect([plain.id, escaped.id]).toEqual(['12345678901234567890', '12345678901234567890']);
  expect([plain.name, plain.content.length, plain.content.slice(0, 8)]).toEqual(['invoice.pdf', chars, 'QUJDQUJD']);
  expect([escaped.name.length, escaped.name.slice(0, 4)]).toEqual([chars / 2, '"\\"\\']);
});

describe('edge cases of results and values', () => {
  test('an array of a domain over a domain comes back as an array of its base type', async () => {
    await db.sql(`CREATE DOMAIN positive AS int CHECK (VALUE > 0); CREATE DOMAIN small_positive AS positive CHECK (VALUE < 100)`);
    const { rows } = await execute(db.config, { text: `SELECT ARRAY[1, 2]::small_positive[] AS a` });
    expect(rows[0]!.a).toEqual([1, 2]);
  });

  test('duplicate column names are refused with a clear error instead of dropping a column', async () => {
    const error = await failure(execute(db.config, { text: 'SELECT 1 AS x, 2 AS x', readOnly: true }));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(/two columns named "x"/);
    // only the count is wanted: nothing is dropped, so nothing to refuse
    expect((await execute(db.config, { text: 'SELECT 1 AS x, 2 AS x', discardRows: true })).rowCount).toBe(1);
  });

  test('duplicate column names in a write that committed: the error says so (REVIEW3 R25)', async () => {
    await db.sql('CREATE TABLE credits (id int PRIMARY KEY, credit int); INSERT INTO credits VALUES (7, 100)');
    const error = await failure(execute(db.config, { text: 'UPDATE credits c SET credit = credit - 30 FROM (SELECT 7 AS id) o WHERE c.id = o.id RETURNING c.id, o.id' }));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(/two columns named "id".*The statement was committed all the same/);
    expect(await db.sql('SELECT credit FROM credits')).toEqual([{ credit: 70 }]);
    const undone = await failure(execute(db.config, { text: 'UPDATE credits SET credit = 0 RETURNING id, id', expectCommands: ['UPDATE'] }));
    expect(undone.message).not.toMatch(/committed/);
    expect(await db.sql('SELECT credit FROM credits')).toEqual([{ credit: 70 }]);
  });

  test('float -0 is "-0" (JSON has no negative zero), like "NaN"', async () => {
    const { rows } = await execute(db.config, { text: `SELECT '-0'::float8 AS z, 0::float8 AS p` });
    expect(rows[0]).toEqual({ z: '-0', p: 0 });
  });

  test('a lone surrogate is refused (PostgreSQL would store U+FFFD in its place)', async () => {
    const error = await failure(execute(db.config, { text: 'SELECT $1::text AS t', values: ['broken \uD83D here'] }));
    expect(error.code).toBe('INVALID_VALUE');
    expect((await execute(db.config, { text: 'SELECT $1::text AS t', values: ['whole \uD83D\uDE00 emoji'] })).rows).toEqual([{ t: 'whole \uD83D\uDE00 emoji' }]);
  });

  test('a local-mean-time offset with seconds becomes the same instant in UTC (ISO 8601 has no offset seconds)', async () => {
    const { rows } = await execute(db.config, {
      text: `SELECT set_config('TimeZone', 'America/New_York', true), '1880-01-01 12:00:00.25 America/New_York'::timestamptz AS t`,
    });
    expect(rows[0]!.t).toBe('1880-01-01T16:56:02.25Z');
    expect(Number.isNaN(Date.parse(rows[0]!.t as string))).toBe(false);
  });

  test('65,537 values are refused with the real count, not "0 value(s) were sent"', async () => {
    const values = Array.from({ length: 65537 }, (_, i) => i);
    const error = await failure(execute(db.config, { text: 'SELECT $1::int AS one', values }));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(/65,537/);
  });
});
