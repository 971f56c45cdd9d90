/**
 * Behind a real PgBouncer (the harness starts the Debian package's binary in front of the suite
 * server: SCRAM between client and pooler, 3 server connections), in transaction and session
 * pooling: every action, many concurrent steps, the timeout and the server-side cancel, the
 * read-only framing, and nothing a step sets follows into the next one.
 */
import { closeAll, execute, testConnection, type ConnectionConfig } from '../../connection/index.js';
import { sendCancel } from '../../connection/cancel.js';
import pg from 'pg';
import { run, failure as stepFailure } from '../actions/helpers.js';
import { serverLogin } from '../harness/db.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failure, eventually } from '../harness/failures.js';
import { createTestPki } from '../harness/certs.js';
import { describeWithPgBouncer, startPgBouncer, type PgBouncer } from '../harness/pgbouncer.js';


describeWithPgBouncer('behind PgBouncer', () => {
  const db = useTestDatabase('bouncer');

  beforeAll(async () => {
    await db.sql(`CREATE TYPE mood AS ENUM ('sad', 'happy');
      CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL, status text NOT NULL DEFAULT 'new', moods mood[], seen timestamptz)`);
    // A database default that the type parsers could not read: the session is put back to ISO.
    await db.sql(`ALTER DATABASE ${db.name} SET DateStyle TO 'SQL, DMY'`);
  });

  describe.each(['transaction', 'session'] as const)('in %s pooling', (mode) => {
    let bouncer: PgBouncer;
    let connection: ConnectionConfig;

    beforeAll(async () => {
      bouncer = await startPgBouncer({ server: serverLogin(), mode, poolSize: 3 });
      connection = bouncer.config(db.name, { pooler: mode });
    });

    afterAll(async () => {
      await closeAll();
      await bouncer.dispose();
    });

    /** Backends PgBouncer holds open to this test's database. */
    const serverConnections = async () =>
      (await db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [db.name]))[0]!.n;

    test('all five actions work', async () => {
      const email = `${mode}@example.com`;
      const inserted = await run('insert-row', {
        connection,
        input: { table: 'users', columns: { email: '{{trigger.email}}', moods: ['happy', 'sad'], seen: '2026-01-15T10:30:00.123456Z' } },
        context: { trigger: { email } },
      });
      expect(inserted.row).toMatchObject({ email, status: 'new', moods: ['happy', 'sad'], seen: '2026-01-15T10:30:00.123456Z' });
      const queried = await run('query-rows', { connection, input: { query: 'SELECT email, moods, seen FROM users WHERE email = $1', parameters: [email] } });
      expect(queried).toEqual({ rows: [{ email, moods: ['happy', 'sad'], seen: '2026-01-15T10:30:00.123456Z' }], rowCount: 1 });
      const updated = await run('update-rows', { connection, input: { query: `UPDATE users SET status = 'active' WHERE email = $1`, parameters: [email] } });
      expect(updated.rowCount).toBe(1);
      const executed = await run('execute-query', { connection, input: { query: `UPDATE users SET status = status || '!' WHERE email = $1`, parameters: [email] } });
      expect(executed).toEqual({ success: true, rowCount: 1 });
      expect(await db.sql('SELECT status FROM users WHERE email = $1', [email])).toEqual([{ status: 'active!' }]);
      const deleted = await run('delete-rows', { connection, input: { query: 'DELETE FROM users WHERE email = $1', parameters: [email] } });
      expect(deleted.rowCount).toBe(1);
      expect(await db.sql('SELECT * FROM users WHERE email = $1', [email])).toEqual([]);
    });

    test('60 concurrent steps all get their own answer over 3 server connections', async () => {
      // In session mode each step opens a client connection of its own and waits for one of the 3 server connections:
      // the last waits for 57 others, which took more than the default 10 s connect timeout at load 24-40 (2 runs of 2).
      const patient = { ...connection, connectTimeoutMs: 90_000 };
      const steps = Array.from({ length: 60 }, (_, i) =>
        run('query-rows', { connection: patient, input: { query: 'SELECT $1::int AS i, pg_sleep(0.02) IS NULL AS slept', parameters: [i] } }),
      );
      const results = await Promise.all(steps);
      expect(results.map((result) => result.rows[0]!.i)).toEqual(Array.from({ length: 60 }, (_, i) => i));
      expect(await serverConnections()).toBeLessThanOrEqual(3);
    }, 120_000);

    test('a timeout cancels the statement on the server; the next steps run with the default timeout', async () => {
      // 3 s: in session mode the step opens its client connection inside its deadline (300 ms was CONNECTION_TIMEOUT at load 24).
      const error = await stepFailure('query-rows', { connection, input: { query: 'SELECT pg_sleep(30), $1::text AS marker', parameters: [`bouncer-${mode}`], timeoutMs: 3000 } });
      expect(error.code).toBe('QUERY_TIMEOUT');
      expect(await eventually(async () => (await db.sql(`SELECT 1 FROM pg_stat_activity WHERE query LIKE '%bouncer-' || 'x%' OR (query LIKE '%pg_sleep(30)%' AND state = 'active' AND pid <> pg_backend_pid())`)).length === 0)).toBe(true);
      // The 3 s stayed in that step's transaction: on whatever server connection PgBouncer picks
      // now, a 3.5 s statement runs, and every step sees the connection's 60 s default.
      for (let i = 0; i < 6; i++) {
        const next = await run('query-rows', { connection, input: { query: `SELECT current_setting('statement_timeout') AS t, pg_sleep(0.05) IS NULL AS slept` } });
        expect(next.rows[0]!.t).toBe('1min');
      }
      await run('execute-query', { connection, input: { query: 'SELECT pg_sleep(3.5)' } });
    }, 60_000);

    test('a CancelRequest (what the client deadline sends) reaches the server through PgBouncer', async () => {
      const client = new pg.Client({ host: bouncer.host, port: bouncer.port, user: connection.user, password: connection.password, database: db.name });
      await client.connect();
      try {
        const sleeping = client.query('SELECT pg_sleep(30)').then(() => 'finished', (error: { code?: string }) => error.code);
        // The cancel must find the statement running on the server (else it is dropped and pg_sleep(30) runs out the test).
        expect(await eventually(async () => (await db.sql(`SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'`)).length === 1)).toBe(true);
        const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
        expect(await sendCancel({ host: bouncer.host, port: bouncer.port, processID, secretKey, ssl: false })).toBe(true);
        expect(await sleeping).toBe('57014');
      } finally {
        await client.end();
      }
    });

    test('a write in Query Rows is READ_ONLY_VIOLATION, writes nothing, and the next step works', async () => {
      const error = await stepFailure('query-rows', { connection, input: { query: `INSERT INTO users (email) VALUES ('ro@example.com') RETURNING id` } });
      expect(error.code).toBe('READ_ONLY_VIOLATION');
      expect(await db.sql(`SELECT id FROM users WHERE email = 'ro@example.com'`)).toEqual([]);
      const inserted = await run('insert-row', { connection, input: { table: 'users', columns: { email: `after-ro-${mode}@example.com` } } });
      expect(inserted.rowCount).toBe(1);
    });

    // Session pooling: PgBouncer resets the server connection (DISCARD ALL) when the client closes.
    // Transaction pooling needs the reset inside the step's own transaction (the session guard).
    test.each([
      ['SET search_path TO nowhere', 'SELECT count(*)::int AS n FROM users'],
      ["SELECT set_config('search_path', 'nowhere', false)", 'SELECT count(*)::int AS n FROM users'],
    ])('a session change made by one step (%s) does not reach later steps', async (change, check) => {
      await run('execute-query', { connection, input: { query: change } });
      // Through transaction pooling the next steps may land on any of the 3 server connections.
      for (let i = 0; i < 6; i++) {
        const results = await Promise.all([1, 2, 3].map(() => run('query-rows', { connection, input: { query: check } })));
        for (const result of results) expect(result.rowCount).toBe(1);
      }
    });

    test('Test connection says it is talking to a pooler and what that implies', async () => {
      const result = await testConnection(connection);
      if (!result.ok) throw result.error;
      expect(result.pooler).toBe(true);
      expect(result.warnings.join('\n')).toMatch(/connection pooler \(PgBouncer or similar\)/);
    });
  });
});

describeWithPgBouncer('TLS from the client to PgBouncer', () => {
  const db = useTestDatabase('bouncer_tls');
  let bouncer: PgBouncer;
  let connection: ConnectionConfig;

  beforeAll(async () => {
    const pki = createTestPki();
    bouncer = await startPgBouncer({ server: serverLogin(), mode: 'transaction', tls: { certPem: pki.serverCertPem, keyPem: pki.serverKeyPem } });
    connection = bouncer.config(db.name, { sslMode: 'verify-full', sslCa: pki.caPem, pooler: 'transaction' });
  });

  afterAll(async () => {
    await bouncer.dispose();
  });

  test('Test connection reports the TLS of the link to the pooler, verified', async () => {
    const result = await testConnection(connection);
    if (!result.ok) throw result.error;
    expect(result.ssl).toMatchObject({ enabled: true, protocol: expect.stringMatching(/^TLSv1\.[23]$/) });
    expect(result.pooler).toBe(true);
    expect(result.warnings.join('\n')).not.toMatch(/not encrypted|not verified/);
  });

  test('steps run, and a timeout is cancelled on the server over TLS', async () => {
    expect(await run('query-rows', { connection, input: { query: 'SELECT 40 + 2 AS answer' } })).toEqual({ rows: [{ answer: 42 }], rowCount: 1 });
    const error = await stepFailure('query-rows', { connection, input: { query: 'SELECT pg_sleep(30)', timeoutMs: 300 } });
    expect(error.code).toBe('QUERY_TIMEOUT');
    expect(await eventually(async () => (await db.sql(`SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'`)).length === 0)).toBe(true);
    expect(await run('query-rows', { connection, input: { query: 'SELECT 1 AS one' } })).toEqual({ rows: [{ one: 1 }], rowCount: 1 });
  });

  test('a pooler certificate the CA did not sign is refused (SSL_CERTIFICATE_INVALID)', async () => {
    const error = await failure(execute({ ...connection, host: 'localhost', sslCa: createTestPki().otherCaPem }, { text: 'SELECT 1' }));
    expect(error.code).toBe('SSL_CERTIFICATE_INVALID');
  });
});

describeWithPgBouncer('behind PgBouncer in transaction pooling, with database defaults for the output formats (REVIEW4 R30)', () => {
  const db = useTestDatabase('bouncer_formats');
  let bouncer: PgBouncer;
  beforeAll(async () => {
    // IntervalStyle is not tracked by PgBouncer < 1.20 (Debian 12's is 1.18): a session SET of it reaches one server connection only.
    await db.sql(`ALTER DATABASE ${db.name} SET IntervalStyle = 'iso_8601'`);
    await db.sql(`ALTER DATABASE ${db.name} SET DateStyle = 'SQL, DMY'`);
    bouncer = await startPgBouncer({ server: serverLogin(), mode: 'transaction', poolSize: 2 });
  });
  afterAll(async () => {
    await bouncer.dispose();
  });

  test('concurrent steps read intervals and dates in one format, whichever server connection they meet', async () => {
    const connection = bouncer.config(db.name, { pooler: 'transaction' });
    const step = (i: number) =>
      execute(connection, { text: `SELECT '1 day 02:00'::interval AS iv, '2024-03-05'::date AS d, $1::int AS i`, values: [i], readOnly: i % 2 === 0 });
    const seen = new Set<string>();
    for (let round = 0; round < 5; round++) {
      for (const { rows } of await Promise.all(Array.from({ length: 8 }, (_, i) => step(i)))) seen.add(JSON.stringify([rows[0]!.iv, rows[0]!.d]));
    }
    expect([...seen]).toEqual([JSON.stringify(['1 day 02:00:00', '2024-03-05'])]);
  });
});
