/**
 * Test connection with a change-capture trigger chosen (testConnection(connection, { changeCapture })):
 * diagnoseReplication's checks come with the usual diagnosis, on a real wal_level=logical server;
 * a connection pooler in the way (declared, or only detected) is a failed check with the fix, and
 * subscribeTrigger refuses it with REPLICATION_THROUGH_POOLER, behind a real PgBouncer too.
 */
import { closeAll, testConnection, type ConnectionDiagnosis, type PgActionsError } from '../../connection/index.js';
import { activateTrigger, pollTrigger, subscribeTrigger } from '../../triggers/index.js';
import { describeWithPgBouncer, startPgBouncer, type PgBouncer } from '../harness/pgbouncer.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { failureOf, waitFor } from './helpers.js';

const server = useReplicationServer();
beforeAll(() => server.sql('CREATE TABLE orders (id int PRIMARY KEY, note text); CREATE TABLE loose (a int)'), 60_000);

async function diagnosis(connection: object, tables: string[]): Promise<ConnectionDiagnosis> {
  const result = await testConnection(connection, { changeCapture: { tables } });
  if (!result.ok) throw result.error;
  return result;
}
const failed = (d: ConnectionDiagnosis) => d.changeCapture!.checks.filter((c) => c.level === 'failed').map((c) => c.code);

test('without a change-capture trigger there is no CDC section; with one, the readiness checks of its tables', async () => {
  const plain = await testConnection(server.config());
  expect(plain.ok && 'changeCapture' in plain).toBe(false);
  const ready = await diagnosis(server.config(), ['orders']);
  expect(ready.changeCapture).toMatchObject({ ready: true, user: ready.user, database: 'postgres' });
  expect(failed(ready)).toEqual([]);
  expect(ready.changeCapture!.setup.join('\n')).toContain('REPLICATION');
  const notReady = await diagnosis(server.config(), ['orders', 'loose']);
  expect(notReady.changeCapture!.ready).toBe(false);
  expect(failed(notReady)).toEqual(['TABLE_WITHOUT_REPLICA_IDENTITY']);
  expect(notReady.changeCapture!.checks.find((c) => c.code === 'TABLE_WITHOUT_REPLICA_IDENTITY')!.fixes.join(' ')).toContain('REPLICA IDENTITY');
});

test('a role without REPLICATION: the CDC section says so with the fix; the connection itself is fine', async () => {
  await server.sql("CREATE ROLE plain_cdc LOGIN PASSWORD 'plain-cdc-pw'; GRANT SELECT ON orders TO plain_cdc");
  const result = await diagnosis(server.config({ user: 'plain_cdc', password: 'plain-cdc-pw' }), ['orders']);
  expect(result.ok).toBe(true);
  expect(failed(result)).toContain('NO_REPLICATION_PRIVILEGE');
  expect(result.changeCapture!.checks.find((c) => c.code === 'NO_REPLICATION_PRIVILEGE')!.fixes[0]).toBe('ALTER ROLE "plain_cdc" WITH REPLICATION;');
});

test('a declared pooler: a failed REPLICATION_THROUGH_POOLER check, and subscribeTrigger refuses before streaming', async () => {
  await activateTrigger('table-changes-cdc', { connection: server.config(), config: { tables: ['orders'] } });
  for (const pooler of ['transaction', 'session'] as const) {
    const connection = { ...server.config(), pooler };
    const result = await diagnosis(connection, ['orders']);
    expect(result.changeCapture!.ready).toBe(false);
    expect(result.changeCapture!.checks[0]).toMatchObject({ code: 'REPLICATION_THROUGH_POOLER', level: 'failed' });
    expect(result.changeCapture!.checks[0]!.message).toContain(`"${pooler}"`);
    expect(result.changeCapture!.checks[0]!.fixes.join(' ')).toMatch(/server itself/);
    const refused = await failureOf(subscribeTrigger('table-changes-cdc', { connection, config: { tables: ['orders'] } }, () => undefined));
    expect(refused.code).toBe('REPLICATION_THROUGH_POOLER');
    expect(refused.fixes.join(' ')).toContain('pooler "none"');
  }
  expect(await server.sql("SELECT count(*)::int AS n FROM pg_stat_replication WHERE application_name IS NOT NULL")).toEqual([{ n: 0 }]);
});

describeWithPgBouncer('behind a real PgBouncer', () => {
  let bouncer: PgBouncer;
  beforeAll(async () => {
    await server.sql('CREATE DATABASE via_bouncer');
    await server.sql('CREATE TABLE orders (id int PRIMARY KEY, note text)', [], 'via_bouncer');
    bouncer = await startPgBouncer({ server: { host: server.server.host, port: server.server.port, user: server.server.user, password: server.server.password }, mode: 'session' });
  }, 60_000);
  afterAll(async () => {
    await closeAll();
    await bouncer?.dispose();
  });

  test('an undeclared pooler is detected in the CDC section', async () => {
    const result = await diagnosis(bouncer.config('via_bouncer'), ['orders']);
    expect(result.pooler).toBe(true);
    expect(result.changeCapture!.checks[0]).toMatchObject({ code: 'REPLICATION_THROUGH_POOLER', level: 'failed' });
    expect(result.changeCapture!.checks[0]!.message).toContain('pooler, not the server itself');
  });

  test('subscribeTrigger through it: REPLICATION_THROUGH_POOLER once, no retry loop; pollTrigger works through it', async () => {
    const direct = { connection: server.config({ database: 'via_bouncer' }), config: { tables: ['orders'], heartbeatSeconds: 0 } };
    await activateTrigger('table-changes-cdc', direct);
    const connection = bouncer.config('via_bouncer');
    const errors: unknown[] = [];
    const subscription = await subscribeTrigger('table-changes-cdc', { connection, config: direct.config, onError: (e: unknown) => void errors.push(e) }, () => undefined);
    try {
      await waitFor(() => errors.length >= 1, 'the refusal');
      await new Promise((r) => setTimeout(r, 1000));
      expect(errors.map((e) => (e as PgActionsError).code)).toEqual(['REPLICATION_THROUGH_POOLER']);
    } finally {
      await subscription.close();
    }
    const { state } = await pollTrigger('table-changes-cdc', { connection, config: direct.config });
    await server.sql("INSERT INTO orders VALUES (1, 'polled through the pooler')", [], 'via_bouncer');
    const batch = await pollTrigger('table-changes-cdc', { connection, config: direct.config, state });
    expect(batch.events.map((e) => e.key)).toEqual([{ id: 1 }]);
  });
});
