/**
 * table-sync and table-changes-cdc rows and failures (REVIEW3 R18, R21, R15): a column named
 * "__proto__" is an own property, never the row's prototype; a batch that waits out its timeout
 * (a lock held by a migration) is QUERY_TIMEOUT; a role with SELECT on a partitioned table's parent
 * only (partitions never inherit GRANTs) can sync it, on every version (PostgreSQL 12's LOCK wanted
 * privileges on each partition: `npm run test:matrix -- 12 test/triggers/sync-rows.test.ts`).
 */
import pg from 'pg';
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { failureOf } from './helpers.js';

const server = useReplicationServer();
beforeAll(() => server.sql('CREATE DATABASE sync_rows'), 60_000);

const sql = (text: string, values?: unknown[]) => server.sql(text, values, 'sync_rows');
const connection = (extra: Record<string, unknown> = {}) => ({ ...server.config({ database: 'sync_rows' }), ...extra });

function expectOwnProto(row: Record<string, unknown>, value: unknown) {
  expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
  expect(Object.keys(row)).toContain('__proto__');
  expect(Object.getOwnPropertyDescriptor(row, '__proto__')?.value).toEqual(value);
  expect((row as { isAdmin?: unknown }).isAdmin).toBeUndefined();
}

test('a column named "__proto__" is a plain value in table-sync and table-changes-cdc events, never the prototype', async () => {
  await sql(`CREATE TABLE odd (id int PRIMARY KEY, "__proto__" jsonb, note text); INSERT INTO odd VALUES (1, '{"isAdmin": true}', 'a')`);
  const sync = (await pollTrigger('table-sync', { connection: connection(), config: { tables: ['odd'] } })).events as unknown as { new: Record<string, unknown> }[];
  expect(sync).toHaveLength(1);
  expectOwnProto(sync[0]!.new, { isAdmin: true });
  expect(JSON.parse(JSON.stringify(sync[0]!.new))).toEqual(JSON.parse('{"id":1,"__proto__":{"isAdmin":true},"note":"a"}'));

  const cdc = { connection: connection(), config: { tables: ['odd'] } };
  await activateTrigger('table-changes-cdc', cdc);
  await sql(`INSERT INTO odd VALUES (2, '{"isAdmin": true}', 'b')`);
  const events = (await pollTrigger('table-changes-cdc', cdc)).events as unknown as { new: Record<string, unknown> }[];
  expect(events).toHaveLength(1);
  expectOwnProto(events[0]!.new, { isAdmin: true });
  await deactivateTrigger('table-changes-cdc', cdc);
});

test('a table-sync batch that waits out its timeout behind a lock is QUERY_TIMEOUT with the lock fix', async () => {
  await sql('CREATE TABLE busy (id int PRIMARY KEY); INSERT INTO busy VALUES (1)');
  const holder = new pg.Client({ ...server.config({ database: 'sync_rows' }), ssl: false });
  await holder.connect();
  try {
    await holder.query('BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE');
    const error = await failureOf(pollTrigger('table-sync', { connection: connection({ statementTimeoutMs: 1000 }), config: { tables: ['busy'] } }));
    expect(error.code).toBe('QUERY_TIMEOUT');
    expect(error.message).toContain('1000 ms');
    expect(error.fixes.join(' ')).toMatch(/lock/i);
  } finally {
    await holder.end();
  }
});

test('a role with SELECT on a partitioned table (not on its partitions) syncs it', async () => {
  await sql(`CREATE TABLE sales (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
             CREATE TABLE sales_eu PARTITION OF sales FOR VALUES IN ('eu');
             INSERT INTO sales VALUES (1, 'eu'), (2, 'eu');
             CREATE ROLE syncer LOGIN PASSWORD 'pw'; GRANT SELECT ON sales TO syncer`);
  const request = { connection: server.config({ database: 'sync_rows', user: 'syncer', password: 'pw' }), config: { tables: ['sales'] } };
  const events = (await pollTrigger('table-sync', request)).events as unknown as { new: Record<string, unknown> }[];
  expect(events.map((e) => e.new)).toEqual([{ id: 1, region: 'eu' }, { id: 2, region: 'eu' }]);
});
