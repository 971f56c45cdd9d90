/**
 * Behind a transaction pooler a client's reported settings are those the pooler told it at login and
 * the server connections it met reported since, not those of the connection its next transaction meets:
 * pg-actions sets every output format in every step of such a pool (execute.ts POOLER_FORMAT_SETS;
 * REVIEW4 R30 first set only those some client had been told were needed). Here PgBouncer (1.18 does not track IntervalStyle; it
 * tells every client the style of its first server connection) serves the database through one server
 * connection, replaced after `ALTER DATABASE … SET IntervalStyle = 'iso_8601'`. Another application
 * sets the style back for its session on it, so the first step of pg-actions there reads intervals
 * right; that step's reset (RESET ALL) brings back iso_8601, which the server reports to that step's
 * client only. From then on every step of the pool, the other client's included, must fix it.
 */
import pg from 'pg';
import { execute, type ConnectionConfig } from '../../connection/index.js';
import { serverLogin } from '../harness/db.js';
import { eventually } from '../harness/failures.js';
import { describeWithPgBouncer, usePgBouncer } from '../harness/pgbouncer.js';
import { useTestDatabase } from '../harness/use-test-database.js';

describeWithPgBouncer('behind PgBouncer in transaction pooling, server connections with different output formats (REVIEW4 R30)', () => {
  // The other application's session ends first (before PgBouncer stops).
  const db = useTestDatabase('format_memory', { beforeDrop: () => other?.end() });
  const bouncer = usePgBouncer({ server: serverLogin(), mode: 'transaction', poolSize: 1 });
  let connection: ConnectionConfig;
  let other: pg.Client | undefined;
  const RIGHT = { style: 'postgres', d: '2024-03-05', iv: '1 day 02:00:00' };
  const styled = (config: ConnectionConfig) =>
    execute(config, { text: `SELECT current_setting('IntervalStyle') AS style, '2024-03-05'::date AS d, '1 day 02:00'::interval AS iv` }).then(({ rows }) => rows[0]);
  /** PgBouncer's server connections (the file's database has no other sessions but the admin's). */
  const serverConnections = () => db.sql(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [db.name]);

  beforeAll(async () => {
    // A database default PgBouncer does track (it is every client's from login on): a fix the pool knows from its first step.
    await db.sql(`ALTER DATABASE ${db.name} SET DateStyle = 'SQL, DMY'`);
    connection = bouncer.config(db.name, { pooler: 'transaction', applicationName: 'format-memory' });
    // Two clients of one pool (two steps at once), both told IntervalStyle postgres at login.
    expect(await Promise.all([styled(connection), styled(connection)])).toEqual([RIGHT, RIGHT]);
    await db.sql(`ALTER DATABASE ${db.name} SET IntervalStyle = 'iso_8601'`);
    // PgBouncer's one server connection goes; the next one logs in with the new default.
    const [first, ...more] = await serverConnections();
    expect({ first: typeof first?.pid, more }).toEqual({ first: 'number', more: [] });
    await db.sql('SELECT pg_terminate_backend($1)', [first!.pid]);
    expect(await eventually(async () => !(await serverConnections()).some((row) => row.pid === first!.pid), 10_000)).toBe(true);
    // Another application through the same PgBouncer sets the style for its session (transaction pooling resets nothing).
    other = new pg.Client({ ...bouncer.config(db.name), ssl: false });
    await other.connect();
    await other.query(`SET IntervalStyle = 'postgres'`);
  }, 60_000);

  test("a client told of the server connection's style by a step's reset fixes it next; so does every other client of the pool", async () => {
    // Reads postgres (the other application's setting); its RESET ALL brings back iso_8601, reported to this client.
    expect(await styled(connection)).toEqual(RIGHT);
    // The same client (the pool hands out the one used last): two styles to fix now, one of them new to the pool.
    expect(await styled(connection)).toEqual(RIGHT);
    // Both clients at once, on the one server connection: the other client was never told of iso_8601.
    expect(await Promise.all([styled(connection), styled(connection)])).toEqual([RIGHT, RIGHT]);
  }, 60_000);
});
