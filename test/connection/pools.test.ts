/** Pools: one per distinct configuration, reused across steps, closed by closeAll() (healed after a restart: pool-restart.test.ts). */
import { closeAll, execute, type ConnectionConfig } from '../../connection/index.js';
import { openPoolCount } from '../../connection/pools.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { eventually } from '../harness/failures.js';

const db = useTestDatabase('pools');

beforeAll(async () => {
  await closeAll();
}, 60_000);

async function backendPid(config: unknown): Promise<number> {
  const { rows } = await execute(config, { text: 'SELECT pg_backend_pid() AS pid' });
  return rows[0]!.pid as number;
}

async function appConnections(): Promise<{ pid: number; application_name: string }[]> {
  return db.sql(
    `SELECT pid, application_name FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend' ORDER BY pid`,
    [db.name],
  );
}

describe('on the suite server', () => {
  let first: number;

  test('sequential steps reuse one pooled connection (same backend pid)', async () => {
    expect(openPoolCount()).toBe(0);
    first = await backendPid(db.config);
    expect(await backendPid(db.config)).toBe(first);
    expect(await backendPid(db.config)).toBe(first);
    // an equal configuration in another object is the same pool
    expect(await backendPid({ ...db.config })).toBe(first);
    expect(openPoolCount()).toBe(1);
    expect((await appConnections()).map((c) => c.pid)).toEqual([first]);
  });

  test('a different configuration gets its own pool', async () => {
    const other: ConnectionConfig = { ...db.config, applicationName: 'pga-other' };
    const otherPid = await backendPid(other);
    expect(otherPid).not.toBe(first);
    expect(await backendPid(other)).toBe(otherPid);
    expect(await backendPid(db.config)).toBe(first);
    expect(openPoolCount()).toBe(2);
  });

  test('application_name shows pg-actions (or the configured name) in pg_stat_activity', async () => {
    const byPid = new Map((await appConnections()).map((c) => [c.pid, c.application_name]));
    expect(byPid.get(first)).toBe('pg-actions');
    expect([...byPid.values()].sort()).toEqual(['pg-actions', 'pga-other']);
  });

  test('concurrent steps share the pool, at most 10 connections', async () => {
    const pids = await Promise.all(
      Array.from({ length: 14 }, () => execute(db.config, { text: 'SELECT pg_backend_pid() AS pid, pg_sleep(0.15)' }).then((r) => r.rows[0]!.pid as number)),
    );
    const distinct = new Set(pids);
    expect(distinct.size).toBeGreaterThan(1);
    expect(distinct.size).toBeLessThanOrEqual(10);
    expect(distinct.has(first)).toBe(true);
    const own = (await appConnections()).filter((c) => c.application_name === 'pg-actions');
    expect(own.length).toBe(distinct.size);
  });

  test('concurrent first steps of a new "prefer" pool against a server without SSL all succeed', async () => {
    // libpq's prefer: TLS first, plaintext when the server says it has no SSL, per connection.
    const config: ConnectionConfig = { ...db.config, sslMode: 'prefer', applicationName: 'pga-concurrent' };
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => execute(config, { text: 'SELECT 1 AS one' })));
    const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [`${(o.reason as { code?: string }).code}: ${(o.reason as Error).message}`] : []));
    expect(failures).toEqual([]);
  });

  test('closeAll() closes every connection', async () => {
    expect((await appConnections()).length).toBeGreaterThan(1);
    await closeAll();
    expect(openPoolCount()).toBe(0);
    // the backends leave pg_stat_activity a moment after their sockets close
    expect(await eventually(async () => (await appConnections()).length === 0, 10_000)).toBe(true);
    // and the next step simply opens a new pool
    const fresh = await backendPid(db.config);
    expect(fresh).not.toBe(first);
    expect(openPoolCount()).toBe(1);
  });
});
