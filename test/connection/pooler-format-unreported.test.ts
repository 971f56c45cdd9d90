/**
 * A server connection whose output formats no client was ever told of (found by the mutation work,
 * 2026-11-30): PgBouncer 1.18 tells every client the IntervalStyle of its first server connection and
 * never updates it, and PostgreSQL reports a setting only when it differs at ReadyForQuery from what it
 * last reported. After `ALTER DATABASE … SET IntervalStyle = 'iso_8601'` a new server connection starts
 * with iso_8601 and tells nobody: pg-actions' steps there read intervals as `P1DT2H`. Behind a
 * transaction pooler every step now sets the formats its parsers read, whatever the clients were told.
 */
import { execute, type ConnectionConfig } from '../../connection/index.js';
import { serverLogin } from '../harness/db.js';
import { eventually } from '../harness/failures.js';
import { describeWithPgBouncer, usePgBouncer } from '../harness/pgbouncer.js';
import { useTestDatabase } from '../harness/use-test-database.js';

describeWithPgBouncer('behind PgBouncer in transaction pooling, a server connection with formats no client was told of', () => {
  const db = useTestDatabase('format_unreported');
  const bouncer = usePgBouncer({ server: serverLogin(), mode: 'transaction', poolSize: 1 });
  let connection: ConnectionConfig;
  const styled = (config: ConnectionConfig) =>
    execute(config, { text: `SELECT '2024-03-05'::date AS d, '1 day 02:00'::interval AS iv` }).then(({ rows }) => rows[0]);
  const serverConnections = () => db.sql(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [db.name]);

  beforeAll(async () => {
    connection = bouncer.config(db.name, { pooler: 'transaction', applicationName: 'format-unreported' });
    expect(await styled(connection)).toEqual({ d: '2024-03-05', iv: '1 day 02:00:00' });
  }, 60_000);

  test('after ALTER DATABASE … SET IntervalStyle and a new server connection, intervals and dates still read right', async () => {
    await db.sql(`ALTER DATABASE ${db.name} SET IntervalStyle = 'iso_8601'`);
    await db.sql(`ALTER DATABASE ${db.name} SET DateStyle = 'SQL, DMY'`);
    const [first] = await serverConnections();
    await db.sql('SELECT pg_terminate_backend($1)', [first!.pid]);
    expect(await eventually(async () => !(await serverConnections()).some((row) => row.pid === first!.pid), 10_000)).toBe(true);
    for (let step = 0; step < 3; step++) expect(await styled(connection)).toEqual({ d: '2024-03-05', iv: '1 day 02:00:00' });
  }, 60_000);
});
