/**
 * Behind PgBouncer in session pooling, IntervalStyle is not reported to the client (PgBouncer < 1.20
 * does not track it), so the session's style is unknown: a database default of iso_8601 gave
 * 'P1DT2H' where pg-actions reads postgres-style intervals. An unreported IntervalStyle is set like a
 * wrong one (connection/pools.ts outputFormatFixes), once per server session.
 */
import { closeAll, execute, type ConnectionConfig } from '../../connection/index.js';
import { describeWithPgBouncer, startPgBouncer, type PgBouncer } from '../harness/pgbouncer.js';
import { serverLogin } from '../harness/db.js';
import { useTestDatabase } from '../harness/use-test-database.js';

describeWithPgBouncer('behind PgBouncer in session pooling', () => {
  const db = useTestDatabase('bouncer_interval');
  let bouncer: PgBouncer;
  let connection: ConnectionConfig;

  beforeAll(async () => {
    await db.sql(`ALTER DATABASE ${db.name} SET IntervalStyle = 'iso_8601'`);
    bouncer = await startPgBouncer({ server: serverLogin(), mode: 'session', poolSize: 2 });
    connection = bouncer.config(db.name, { pooler: 'session' });
  }, 60_000);

  afterAll(async () => {
    await closeAll();
    await bouncer?.dispose();
  }, 30_000);

  test('a database default IntervalStyle the client was not told of is set back for the step', async () => {
    for (let i = 0; i < 3; i++) {
      const { rows } = await execute(connection, { text: `SELECT '1 day 2 hours'::interval AS i, pg_catalog.current_setting('IntervalStyle') AS style` });
      expect(rows[0]).toEqual({ i: '1 day 02:00:00', style: 'postgres' });
    }
  }, 60_000);
});
