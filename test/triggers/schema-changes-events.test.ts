/**
 * schema-changes in both modes on a real server: with an event trigger (activated by a superuser:
 * DDL recorded as it commits, read through the outbox) and, for a role that may not create one,
 * the catalog-snapshot fallback that activation reports, with nothing left behind. DROP, ADD
 * COLUMN, rename, unwatched schemas, redelivery, NOTIFY wake-up, and 20 activate/deactivate cycles.
 */
import { randomBytes } from 'node:crypto';
import type { ConnectionConfig } from '../../connection/index.js';
import { activateTrigger, deactivateTrigger, listActivations, removeActivation, sampleEvents, subscribeTrigger, type TriggerEvent } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { watchSecret } from '../harness/secrets.js';
import { poll, waitFor } from './helpers.js';

const db = useTestDatabase('schemaevents');
const role = `schemawatch_${randomBytes(4).toString('hex')}`;
const rolePassword = 'pw-' + randomBytes(8).toString('hex');
watchSecret(rolePassword);
let asRole: ConnectionConfig;

beforeAll(async () => {
  await db.sql('CREATE SCHEMA elsewhere');
  await db.sql('CREATE SCHEMA watched');
  // Not a superuser, but allowed to create schemas in the database: only the event trigger is refused.
  await db.sql(`CREATE ROLE ${role} LOGIN PASSWORD '${rolePassword}'`);
  await db.sql(`GRANT CREATE ON DATABASE ${db.name} TO ${role}`);
  asRole = { ...db.config, user: role, password: rolePassword };
}, 60_000);

afterAll(async () => {
  await db?.sql(`DROP ROLE IF EXISTS ${role}`).catch(() => {});
}, 30_000);

/** Event triggers, functions and relations of ours (schema-changes' are named pg_actions_sc_… / sc_…). */
async function ourObjects(): Promise<string[]> {
  const rows = await db.sql<{ o: string }>(`
    SELECT 'event trigger ' || evtname AS o FROM pg_event_trigger WHERE evtname LIKE 'pg\\_actions\\_%'
    UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname = 'pgactions'
    UNION ALL SELECT 'relation ' || relname FROM pg_class WHERE relnamespace = to_regnamespace('pgactions')
    UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = to_regnamespace('pgactions')
    ORDER BY 1`);
  return rows.map((r) => r.o);
}

const superuser = (config: object) => ({ connection: db.config, config });
const shape = (events: Record<string, unknown>[]) => events.map((e) => [e.op, e.schema, e.table, (e.columns as { name: string }[]).map((c) => c.name)]);

test('event-trigger mode: created, altered (column, rename), moved away and dropped tables, as they commit; other schemas ignored', async () => {
  const config = { schemas: ['watched'] };
  await db.sql('CREATE TABLE watched.before_activation (id int)');
  const activation = await activateTrigger('schema-changes', superuser(config));
  expect(activation).toMatchObject({ activated: true, mode: 'event trigger' });
  expect((await sampleEvents('schema-changes', superuser(config))).notes.join(' ')).toMatch(/Mode: event trigger/);
  try {
    const start = await poll('schema-changes', superuser(config));
    expect(start.events).toEqual([]);
    await db.sql('CREATE TABLE watched.invoices (id int PRIMARY KEY, total numeric(10,2))');
    await db.sql('CREATE TABLE elsewhere.hidden (id int)');
    await db.sql('ALTER TABLE watched.invoices ADD COLUMN paid boolean');
    await db.sql('ALTER TABLE elsewhere.hidden ADD COLUMN x int');
    await db.sql('ALTER TABLE watched.invoices RENAME TO bills');
    await db.sql('ALTER TABLE watched.bills RENAME COLUMN paid TO settled');
    await db.sql('BEGIN; CREATE TABLE watched.rolled_back (id int); ROLLBACK');
    await db.sql('CREATE TABLE watched.short_lived (id int)');
    await db.sql('DROP TABLE watched.short_lived');
    await db.sql('ALTER TABLE watched.before_activation SET SCHEMA elsewhere');
    await db.sql('DROP TABLE watched.bills');
    await db.sql('DROP TABLE elsewhere.hidden');
    const seen = await poll('schema-changes', superuser(config));
    expect(shape(seen.events)).toEqual([
      ['CREATE_TABLE', 'watched', 'invoices', ['id', 'total']],
      ['ALTER_TABLE', 'watched', 'invoices', ['id', 'total', 'paid']],
      ['ALTER_TABLE', 'watched', 'bills', ['id', 'total', 'paid']],
      ['ALTER_TABLE', 'watched', 'bills', ['id', 'total', 'settled']],
      // Created and dropped between two polls: the event trigger still saw both.
      ['CREATE_TABLE', 'watched', 'short_lived', ['id']],
      ['DROP_TABLE', 'watched', 'short_lived', ['id']],
      ['DROP_TABLE', 'watched', 'before_activation', ['id']],
      ['DROP_TABLE', 'watched', 'bills', ['id', 'total', 'settled']],
    ]);
    expect(seen.events[0]!.columns).toEqual([{ name: 'id', type: 'integer' }, { name: 'total', type: 'numeric(10,2)' }]);
    expect(seen.events[1]!.previousColumns).toEqual([{ name: 'id', type: 'integer' }, { name: 'total', type: 'numeric(10,2)' }]);
    expect(seen.events[3]!.previousColumns).toEqual([{ name: 'id', type: 'integer' }, { name: 'total', type: 'numeric(10,2)' }, { name: 'paid', type: 'boolean' }]);
    expect(new Set(seen.events.map((e) => e.id)).size).toBe(8);
    // A state replayed (the host crashed before storing the new one): the same events, the same ids.
    const replay = await poll('schema-changes', { connection: db.config, config, state: start.state });
    expect(replay.events.map((e) => e.id)).toEqual(seen.events.map((e) => e.id));
    expect((await poll('schema-changes', { connection: db.config, config, state: seen.state })).events).toEqual([]);
  } finally {
    await deactivateTrigger('schema-changes', superuser(config));
  }
  expect(await ourObjects()).toEqual([]);
});

test('event-trigger mode: a subscriber is woken by the DDL itself, long before its polling interval', async () => {
  const config = { schemas: ['watched'], intervalSeconds: 3600 };
  await activateTrigger('schema-changes', superuser(config));
  const received: TriggerEvent[] = [];
  const subscription = await subscribeTrigger('schema-changes', superuser(config), (events) => {
    received.push(...events);
  });
  try {
    await new Promise((resolve) => setTimeout(resolve, 300)); // listening
    await db.sql('CREATE TABLE watched.woken (id int)');
    await waitFor(() => received.length > 0, 'the CREATE_TABLE event', 15_000);
    expect(received.map((e) => [e.op, e.table])).toEqual([['CREATE_TABLE', 'woken']]);
  } finally {
    await subscription.close();
    await deactivateTrigger('schema-changes', superuser(config));
    await db.sql('DROP TABLE IF EXISTS watched.woken');
  }
});

test('a role that may not create an event trigger: activation reports catalog snapshots, installs nothing, and polling still sees every change', async () => {
  const config = { schemas: ['watched'] };
  const activation = await activateTrigger('schema-changes', { connection: asRole, config });
  expect(activation).toMatchObject({ activated: false, mode: 'catalog snapshots' });
  expect(activation.note).toMatch(/may not create an event trigger/);
  expect(await ourObjects()).toEqual([]);
  expect((await sampleEvents('schema-changes', { connection: asRole, config })).notes.join(' ')).toMatch(/Mode: catalog snapshots/);
  const start = await poll('schema-changes', { connection: asRole, config });
  await db.sql('CREATE TABLE watched.t1 (id int)');
  await db.sql('CREATE TABLE elsewhere.t2 (id int)');
  const created = await poll('schema-changes', { connection: asRole, config, state: start.state });
  expect(shape(created.events)).toEqual([['CREATE_TABLE', 'watched', 't1', ['id']]]);
  await db.sql('ALTER TABLE watched.t1 ADD COLUMN note text');
  const added = await poll('schema-changes', { connection: asRole, config, state: created.state });
  expect(shape(added.events)).toEqual([['ALTER_TABLE', 'watched', 't1', ['id', 'note']]]);
  await db.sql('ALTER TABLE watched.t1 RENAME TO t3');
  const renamed = await poll('schema-changes', { connection: asRole, config, state: added.state });
  expect(shape(renamed.events)).toEqual([['ALTER_TABLE', 'watched', 't3', ['id', 'note']]]);
  await db.sql('DROP TABLE watched.t3');
  await db.sql('DROP TABLE elsewhere.t2');
  const dropped = await poll('schema-changes', { connection: asRole, config, state: renamed.state });
  expect(shape(dropped.events)).toEqual([['DROP_TABLE', 'watched', 't3', ['id', 'note']]]);
  expect(await deactivateTrigger('schema-changes', { connection: asRole, config })).toEqual({ deactivated: true });
  expect(await ourObjects()).toEqual([]);
});

test('deactivation removes exactly its own objects: another configuration and a row-changes activation stay', async () => {
  await db.sql('CREATE TABLE public.orders_kept (id int PRIMARY KEY)');
  const rowChanges = { connection: db.config, config: { tables: ['public.orders_kept'] } };
  await activateTrigger('row-changes', rowChanges);
  await activateTrigger('schema-changes', superuser({ schemas: ['elsewhere'] }));
  const before = await ourObjects();
  await activateTrigger('schema-changes', superuser({ schemas: ['watched'] }));
  await activateTrigger('schema-changes', superuser({ schemas: ['watched'] })); // idempotent
  await deactivateTrigger('schema-changes', superuser({ schemas: ['watched'] }));
  expect(await ourObjects()).toEqual(before);
  await deactivateTrigger('schema-changes', superuser({ schemas: ['elsewhere'] }));
  await deactivateTrigger('row-changes', rowChanges);
  expect(await ourObjects()).toEqual([]);
  await db.sql('DROP TABLE public.orders_kept');
});

test('a damaged leftover (a table of ours dropped by hand) never blocks DDL, and is found and removed', async () => {
  const config = { schemas: ['watched'] };
  const { fingerprint } = await activateTrigger('schema-changes', superuser(config));
  expect(await listActivations(db.config)).toEqual([{ trigger: 'schema-changes', fingerprint, complete: true, outdated: false, objects: expect.any(Array) }]);
  await db.sql(`DROP TABLE pgactions."sc_${fingerprint}_watch"`);
  // The event trigger is still there, its tables are not: the user's DDL still succeeds.
  await db.sql('CREATE TABLE watched.despite_damage (id int)');
  await db.sql('DROP TABLE watched.despite_damage');
  const [found] = await listActivations(db.config);
  expect(found).toMatchObject({ trigger: 'schema-changes', fingerprint, complete: false });
  expect(found!.objects).toEqual(expect.arrayContaining([`event trigger pg_actions_sc_${fingerprint}_ddl`, `table pgactions.sc_${fingerprint}_known`]));
  await removeActivation(db.config, fingerprint);
  expect(await ourObjects()).toEqual([]);
  expect(await listActivations(db.config)).toEqual([]);
});

test('20 activate/deactivate cycles leave no event trigger, function or table behind', async () => {
  const config = { schemas: ['watched', 'elsewhere'] };
  for (let i = 0; i < 20; i++) {
    expect(await activateTrigger('schema-changes', superuser(config))).toMatchObject({ activated: true, mode: 'event trigger' });
    expect((await ourObjects()).filter((o) => o.startsWith('event trigger'))).toHaveLength(2);
    await deactivateTrigger('schema-changes', superuser(config));
  }
  expect(await ourObjects()).toEqual([]);
  // DDL still works once they are gone.
  await db.sql('CREATE TABLE watched.after_cycles (id int)');
  await db.sql('DROP TABLE watched.after_cycles');
}, 120_000);
