/**
 * Behind a real transaction pooler (PgBouncer, one server connection) the server connection goes to the
 * next client as soon as a round trip ends outside a transaction (ReadyForQuery 'I'). What a step leaves
 * on it must be cleaned before that: execute.ts keeps the step's own BEGIN open around the statement and
 * runs the pooler check inside a transaction (a failure there leaves status 'E', so the connection stays
 * with the step for its reset), and sets its output-format fixes LOCAL in the step's transaction, never
 * in a round trip of their own. Another application's client, queued at PgBouncer while the step runs,
 * must find nothing of it.
 */
import pg from 'pg';
import { execute, type ConnectionConfig, type Statement } from '../../connection/index.js';
import { serverLogin } from '../harness/db.js';
import { eventually } from '../harness/failures.js';
import { describeWithPgBouncer, usePgBouncer, type PgBouncer } from '../harness/pgbouncer.js';
import { useTestDatabase } from '../harness/use-test-database.js';

/** Another application's session through PgBouncer (closed before PgBouncer stops: see the files' beforeDrop). */
async function otherClient(bouncer: PgBouncer, database: string, opened: pg.Client[]): Promise<pg.Client> {
  const client = new pg.Client({ ...bouncer.config(database), ssl: false });
  client.on('error', () => undefined);
  opened.push(client);
  await client.connect();
  return client;
}

/** Clients waiting at PgBouncer for a server connection (its admin console). */
async function waitingClients(bouncer: PgBouncer, database: string): Promise<number> {
  const admin = new pg.Client({ ...bouncer.config('pgbouncer'), ssl: false });
  await admin.connect();
  try {
    const { rows } = await admin.query('SHOW POOLS');
    return rows.filter((row: { database: string }) => row.database === database).reduce((sum: number, row: { cl_waiting: string }) => sum + Number(row.cl_waiting), 0);
  } finally {
    await admin.end();
  }
}

describeWithPgBouncer('behind PgBouncer in transaction pooling: the server connection reaches the next client clean', () => {
  const opened: pg.Client[] = [];
  const db = useTestDatabase('pooler_handover', { beforeDrop: () => Promise.all(opened.map((client) => client.end().catch(() => undefined))).then(() => undefined) });
  const bouncer = usePgBouncer({ server: serverLogin(), mode: 'transaction', poolSize: 1 });
  let connection: ConnectionConfig;
  beforeAll(() => {
    connection = bouncer.config(db.name, { pooler: 'transaction', applicationName: 'pooler-handover' });
  });

  /** Runs the step; once its statement runs, the other client asks for the server connection and reads what is left on it. */
  async function leftForNext(statement: Statement, marker: string) {
    const other = await otherClient(bouncer, db.name, opened);
    const step = execute(connection, statement).then(
      (result) => result.command,
      (error: { code?: string }) => `failed: ${error.code}`,
    );
    const running = await eventually(async () => (await db.sql(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE $2`, [db.name, `%${marker}%`])).length > 0, 10_000);
    expect(running).toBe(true);
    const seen = other.query(`SELECT (SELECT count(*)::int FROM pg_prepared_statements WHERE from_sql) AS prepared, (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory') AS locks`);
    return { outcome: await step, left: (await seen).rows[0] };
  }

  const leaves = (marker: string, fail = false) =>
    `DO $$BEGIN /* ${marker} */ EXECUTE 'PREPARE leftover_${marker} AS SELECT 1'; PERFORM pg_advisory_lock(4242); PERFORM pg_sleep(0.5);${fail ? ` RAISE EXCEPTION 'failed on purpose';` : ''} END$$`;

  test.each([
    ['a committed step', 'committed', {}, 'DO'],
    ['a read-only step', 'read_only', { readOnly: true }, 'DO'],
    ['a failed step', 'failed', {}, 'failed: DATABASE_ERROR'],
  ] as const)('%s that leaves a SQL-prepared statement and a session lock: the next client finds neither', async (name, marker, extra, outcome) => {
    expect(await leftForNext({ text: leaves(marker, outcome !== 'DO'), ...extra }, marker)).toEqual({ outcome, left: { prepared: 0, locks: 0 } });
  }, 60_000);
});

describeWithPgBouncer('behind PgBouncer in transaction pooling: output-format fixes stay in the step (REVIEW4 R30)', () => {
  const opened: pg.Client[] = [];
  const db = useTestDatabase('pooler_local_formats', { beforeDrop: () => Promise.all(opened.map((client) => client.end().catch(() => undefined))).then(() => undefined) });
  const bouncer = usePgBouncer({ server: serverLogin(), mode: 'transaction', poolSize: 1 });
  beforeAll(async () => {
    // Before PgBouncer's first server login: every client is told iso_8601, so pg-actions fixes it in each step.
    await db.sql(`ALTER DATABASE ${db.name} SET IntervalStyle = 'iso_8601'`);
  }, 60_000);

  test("a step queued behind another client's transaction: the client queued after it reads the database's own style", async () => {
    const connection = bouncer.config(db.name, { pooler: 'transaction', applicationName: 'pooler-local-formats' });
    const holder = await otherClient(bouncer, db.name, opened);
    const next = await otherClient(bouncer, db.name, opened);
    await holder.query('BEGIN');
    await holder.query('SELECT 1'); // holds the one server connection
    const step = execute(connection, { text: `SELECT '1 day 02:00'::interval AS iv` });
    expect(await eventually(async () => (await waitingClients(bouncer, db.name)) >= 1, 10_000)).toBe(true);
    const seen = next.query(`SELECT current_setting('IntervalStyle') AS style`);
    expect(await eventually(async () => (await waitingClients(bouncer, db.name)) >= 2, 10_000)).toBe(true);
    await holder.query('COMMIT');
    expect((await step).rows).toEqual([{ iv: '1 day 02:00:00' }]);
    expect((await seen).rows).toEqual([{ style: 'iso_8601' }]);
  }, 60_000);
});
