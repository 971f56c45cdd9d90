/**
 * REVIEW7 R130: table-changes-cdc gave a partitioned table's changes under each partition's name
 * (pgoutput sends the leaf relation unless the publication says otherwise), unlike table-sync and
 * row-changes, which give the configured table's: a handover never matched them, and a consumer
 * applying changes by table name never saw them. The trigger's own publication publishes through
 * the partition root (PostgreSQL 13+), and an activation moves an older one over.
 */
import { activateTrigger, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';

const KEY = 'table-changes-cdc';
const pg = useReplicationServer();

interface Change {
  op: string;
  table: string;
  key: Record<string, unknown>;
}

async function changesAfter(request: { connection: object; config: object }, state: TriggerState, count: number): Promise<Change[]> {
  const changes: Change[] = [];
  for (let polls = 0; polls < 20 && changes.length < count; polls++) {
    const result = await pollTrigger(KEY, { ...request, state });
    state = result.state;
    changes.push(...result.events.map((event) => event as unknown as Change).map(({ op, table, key }) => ({ op, table, key })));
  }
  return changes;
}

test('changes in any partition come under the partitioned table\'s name and key, polled', async () => {
  await pg.sql('CREATE DATABASE parts');
  const sql = (text: string) => pg.sql(text, [], 'parts');
  await sql(`CREATE TABLE orders (id int PRIMARY KEY, total int) PARTITION BY RANGE (id);
    CREATE TABLE orders_a PARTITION OF orders FOR VALUES FROM (0) TO (100);
    CREATE TABLE orders_b PARTITION OF orders FOR VALUES FROM (100) TO (200)`);
  const request = { connection: pg.config({ database: 'parts' }), config: { tables: ['orders'], heartbeatSeconds: 0 } };
  const [{ version }] = (await sql("SELECT current_setting('server_version_num')::int AS version")) as [{ version: number }];
  if (version < 130000) {
    // PostgreSQL 12 cannot publish a partitioned table at all (documented: publish its partitions).
    await expect(activateTrigger(KEY, request)).rejects.toThrow(/"orders" is a partitioned table/);
    return;
  }
  await activateTrigger(KEY, request);
  const start = (await pollTrigger(KEY, request)).state;
  await sql('INSERT INTO orders VALUES (1, 10), (150, 20)');
  await sql('UPDATE orders SET total = total + 1');
  await sql('DELETE FROM orders WHERE id = 150');
    expect(await changesAfter(request, start, 5)).toEqual([
    { op: 'INSERT', table: 'orders', key: { id: 1 } },
    { op: 'INSERT', table: 'orders', key: { id: 150 } },
    { op: 'UPDATE', table: 'orders', key: { id: 1 } },
    { op: 'UPDATE', table: 'orders', key: { id: 150 } },
    { op: 'DELETE', table: 'orders', key: { id: 150 } },
  ]);
}, 120_000);

test('a publication made before publishes through the root once the trigger is activated again', async () => {
  await pg.sql('CREATE DATABASE parts_old');
  const sql = (text: string) => pg.sql(text, [], 'parts_old');
  await sql(`CREATE TABLE orders (id int PRIMARY KEY) PARTITION BY RANGE (id); CREATE TABLE orders_a PARTITION OF orders FOR VALUES FROM (0) TO (100)`);
  const request = { connection: pg.config({ database: 'parts_old' }), config: { tables: ['orders'], heartbeatSeconds: 0 } };
  const [{ version }] = (await sql("SELECT current_setting('server_version_num')::int AS version")) as [{ version: number }];
  if (version < 130000) {
    await expect(activateTrigger(KEY, request)).rejects.toThrow(/"orders" is a partitioned table/); // as above
    return;
  }
  await activateTrigger(KEY, request);
  const [{ pubname }] = (await sql("SELECT pubname FROM pg_publication WHERE pubname LIKE 'pg_actions%'")) as [{ pubname: string }];
  await sql(`ALTER PUBLICATION "${pubname}" SET (publish_via_partition_root = false)`); // as an earlier version made it
  await activateTrigger(KEY, request);
  expect(await sql("SELECT pubviaroot FROM pg_publication WHERE pubname LIKE 'pg_actions%'")).toEqual([{ pubviaroot: true }]);
}, 120_000);
