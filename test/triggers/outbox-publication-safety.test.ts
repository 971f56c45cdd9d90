/**
 * row-changes and schema-changes never break the user's own logical replication (REVIEW3 R13):
 * with a publication FOR ALL TABLES feeding a real subscriber (a second database of the same
 * server), activation creates nothing in schema pgactions that the subscriber would receive:
 * row-changes is refused with OUTBOX_WOULD_BE_PUBLISHED naming the publication, schema-changes
 * falls back to catalog snapshots, and the subscriber keeps receiving the user's rows. A
 * publication created after activation does not stop reading (the cursor has a replica identity).
 */
import { activateTrigger, deactivateTrigger, listActivations, pollTrigger } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { failureOf, waitFor } from './helpers.js';

const server = useReplicationServer();
let n = 0;

async function database(prefix: string) {
  const name = `${prefix}_${++n}`;
  await server.sql(`CREATE DATABASE ${name}`);
  const sql = (text: string, values?: unknown[]) => server.sql(text, values, name);
  await sql('CREATE TABLE items (id int PRIMARY KEY, name text)');
  return { name, sql, connection: server.config({ database: name }) };
}

const pgactionsTables = (db: { sql: (text: string) => Promise<Record<string, unknown>[]> }) =>
  db.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'pgactions' ORDER BY 1").then((rows) => rows.map((r) => r.tablename));

/** A subscriber database fed by `publication` of `publisher` (the slot is made first: same server). */
async function subscriber(publisher: string, publication: string) {
  const db = await database('ops_sub');
  const slot = `${db.name}_slot`;
  await server.sql("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot], publisher);
  const { host, port, user, password } = server.server;
  await db.sql(`CREATE SUBSCRIPTION ${db.name} CONNECTION 'host=${host} port=${port} user=${user} password=${password} dbname=${publisher}'
                PUBLICATION ${publication} WITH (create_slot = false, slot_name = '${slot}')`);
  const ids = async () => (await db.sql('SELECT id FROM items ORDER BY id')).map((r) => r.id);
  const drop = async () => {
    await db.sql(`ALTER SUBSCRIPTION ${db.name} DISABLE`);
    await db.sql(`ALTER SUBSCRIPTION ${db.name} SET (slot_name = NONE)`);
    await db.sql(`DROP SUBSCRIPTION ${db.name}`);
    // The disabled subscription's walsender may still hold the slot for a moment.
    await waitFor(async () => (await server.sql('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [slot], publisher)).length === 0, 'the slot released', 10_000);
    await server.sql('SELECT pg_drop_replication_slot($1)', [slot], publisher);
  };
  return { ...db, ids, drop };
}

// publish = 'insert': nothing would stop the install (no UPDATE/DELETE needs a replica identity), the outbox rows would still stop the subscriber
test.each(['', " WITH (publish = 'insert')"])('a publication FOR ALL TABLES%s with a subscriber: row-changes is refused naming it, schema-changes polls the catalog, nothing is created and replication goes on', async (options) => {
  const pub = await database('ops_pub');
  await pub.sql(`CREATE PUBLICATION everything FOR ALL TABLES${options}`);
  const sub = await subscriber(pub.name, 'everything');
  try {
    await pub.sql("INSERT INTO items VALUES (1, 'before')");
    await waitFor(async () => (await sub.ids()).length === 1, 'the subscriber to receive id 1', 30_000);

    const error = await failureOf(activateTrigger('row-changes', { connection: pub.connection, config: { tables: ['items'] } }));
    expect(error.code).toBe('OUTBOX_WOULD_BE_PUBLISHED');
    expect(error.message).toContain('publication "everything"');
    expect(error.fixes.join(' ')).toContain('DROP PUBLICATION "everything"');
    const schema = await activateTrigger('schema-changes', { connection: pub.connection, config: { schemas: ['public'] } });
    expect(schema).toMatchObject({ activated: false, mode: 'catalog snapshots' });
    expect(schema.note).toContain('publication "everything"');
    expect(await pgactionsTables(pub)).toEqual([]);
    expect(await listActivations(pub.connection)).toEqual([]);

    await pub.sql("INSERT INTO items VALUES (2, 'after activation'); CREATE TABLE later (id int)");
    await pub.sql("INSERT INTO items VALUES (3, 'after DDL')");
    await waitFor(async () => (await sub.ids()).length === 3, 'the subscriber to receive ids 2 and 3', 30_000);
    expect(await sub.ids()).toEqual([1, 2, 3]);
    const [worker] = await sub.sql(`SELECT pid IS NOT NULL AS running FROM pg_stat_subscription WHERE subname = '${sub.name}'`);
    expect(worker).toEqual({ running: true });
    await deactivateTrigger('schema-changes', { connection: pub.connection, config: { schemas: ['public'] } });
  } finally {
    await sub.drop();
  }
}, 90_000);

test('FOR TABLES IN SCHEMA pgactions (PostgreSQL 15+) is refused the same way', async () => {
  const pub = await database('ops_schema');
  await pub.sql('CREATE SCHEMA pgactions');
  const create = pub.sql('CREATE PUBLICATION ours FOR TABLES IN SCHEMA pgactions');
  if (server.versionNum < 150000) return void (await expect(create).rejects.toThrow(/syntax error/)); // no such publication before 15: nothing to refuse
  await create;
  const error = await failureOf(activateTrigger('row-changes', { connection: pub.connection, config: { tables: ['items'] } }));
  expect(error.code).toBe('OUTBOX_WOULD_BE_PUBLISHED');
  expect(error.message).toContain('publication "ours" publishes every table of schema pgactions');
  expect(await pgactionsTables(pub)).toEqual([]);
});

test('a publication FOR ALL TABLES created after activation: reads go on (the cursor has a replica identity), activating again is refused, deactivation removes everything', async () => {
  const pub = await database('ops_later');
  const request = { connection: pub.connection, config: { tables: ['items'] } };
  await activateTrigger('row-changes', request);
  await pub.sql('CREATE PUBLICATION everything FOR ALL TABLES');
  await pub.sql("INSERT INTO items VALUES (1, 'a'), (2, 'b')");
  const first = await pollTrigger('row-changes', request);
  expect(first.events.map((e) => (e as unknown as { key: unknown }).key)).toEqual([{ id: 1 }, { id: 2 }]);
  await pub.sql("UPDATE items SET name = 'c' WHERE id = 1");
  const second = await pollTrigger('row-changes', { ...request, state: first.state });
  expect(second.events.map((e) => (e as unknown as { op: string }).op)).toEqual(['UPDATE']);
  expect((await failureOf(activateTrigger('row-changes', request))).code).toBe('OUTBOX_WOULD_BE_PUBLISHED');
  await deactivateTrigger('row-changes', request);
  expect(await pgactionsTables(pub)).toEqual([]);
});
