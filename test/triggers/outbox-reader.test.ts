/**
 * Reading row-changes' outbox (triggers/outbox-reader.ts) against a real server, quickly: what
 * each event carries, where the position goes, where a fresh start begins (the acknowledged
 * position), a state older than the outbox keeps, and which failures mean "not activated" (the
 * outbox is missing) and which are passed on as they are (a role without rights on it).
 */
import { closeAll } from '../../connection/index.js';
import { activateTrigger, deactivateTrigger, listActivations, pollTrigger, removeActivation } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf, poll } from './helpers.js';

const db = useTestDatabase('outboxreader');

beforeEach(async () => {
  for (const activation of await listActivations(db.config)) await removeActivation(db.config, activation.fingerprint);
  await db.sql('DROP TABLE IF EXISTS orders; CREATE TABLE orders (id int PRIMARY KEY, status text)');
});

const request = (config: object, state?: unknown) => ({ connection: db.config, config, state });
const positionOf = (state: unknown) => (state as { position: { after: number } }).position.after;

test('each event carries op, schema, table, key, new, old, writtenAt and an epoch-seq id; the position is the last event\'s', async () => {
  const config = { tables: ['orders'] };
  await activateTrigger('row-changes', request(config));
  const start = await poll('row-changes', request(config));
  expect(positionOf(start.state)).toBe(0);
  await db.sql("INSERT INTO orders VALUES (1, 'new'); UPDATE orders SET status = 'paid'");
  const read = await poll('row-changes', request(config, start.state));
  const [insert, update] = read.events;
  expect(insert).toEqual({ id: expect.stringMatching(/^[0-9a-f]{12}-\d+$/), op: 'INSERT', schema: 'public', table: 'orders', key: { id: 1 }, new: { id: 1, status: 'new' }, old: null, writtenAt: expect.any(String) });
  expect(update).toMatchObject({ op: 'UPDATE', new: { status: 'paid' }, old: { status: 'new' } });
  expect(Number.isNaN(Date.parse(insert!.writtenAt as string))).toBe(false);
  expect(new Set(read.events.map((e) => e.id)).size).toBe(2);
  expect(positionOf(read.state)).toBe(2);
  const idle = await poll('row-changes', request(config, read.state));
  expect(idle.events).toEqual([]);
  expect(positionOf(idle.state)).toBe(2);
  // A start without state begins at the acknowledged position (the poll above acknowledged 2), then reads.
  await db.sql("INSERT INTO orders VALUES (2, 'new')");
  const fresh = await poll('row-changes', request(config));
  expect(fresh.events.map((e) => e.key)).toEqual([{ id: 2 }]);
  expect(positionOf(fresh.state)).toBe(3);
});

test('a state older than the outbox keeps is refused, naming both positions', async () => {
  const config = { tables: ['orders'], retentionMinutes: 0 };
  await activateTrigger('row-changes', request(config));
  const start = await poll('row-changes', request(config));
  await db.sql("INSERT INTO orders SELECT g, 'new' FROM generate_series(1, 3) g");
  const read = await poll('row-changes', request(config, start.state));
  await poll('row-changes', request(config, read.state)); // acknowledges
  await poll('row-changes', request(config, read.state)); // prunes
  const stale = await failureOf(pollTrigger('row-changes', request(config, start.state)));
  expect({ code: stale.code, message: stale.message, problems: stale.problems }).toEqual({
    code: 'TRIGGER_STATE_INVALID',
    message: 'state is at position 0, but the outbox was pruned through 3: changes in between are gone',
    problems: ['state.position is older than the outbox keeps'],
  });
});

test('a missing outbox is TRIGGER_NOT_ACTIVE naming the trigger, at the start and at a read; a role without rights gets PERMISSION_DENIED', async () => {
  const config = { tables: ['orders'] };
  const notActive = 'row-changes is not activated with this configuration in this database: its outbox is missing';
  const atStart = await failureOf(pollTrigger('row-changes', request(config)));
  expect([atStart.code, atStart.message, (atStart.cause as { sqlstate?: string }).sqlstate]).toEqual(['TRIGGER_NOT_ACTIVE', notActive, '42P01']);
  await activateTrigger('row-changes', request(config));
  const { state } = await poll('row-changes', request(config));
  await db.sql('DROP ROLE IF EXISTS or_reader');
  await db.sql(`CREATE ROLE or_reader LOGIN PASSWORD 'or-reader-pw'; GRANT CONNECT ON DATABASE "${db.name}" TO or_reader`);
  try {
    const reader = { connection: { ...db.config, user: 'or_reader', password: 'or-reader-pw' }, config };
    expect((await failureOf(pollTrigger('row-changes', reader))).code).toBe('PERMISSION_DENIED');
    expect((await failureOf(pollTrigger('row-changes', { ...reader, state }))).code).toBe('PERMISSION_DENIED');
  } finally {
    await closeAll();
    await db.sql('DROP OWNED BY or_reader; DROP ROLE or_reader');
  }
  // Deactivated (the last activation: the schema goes too), then polled with the state it had.
  await deactivateTrigger('row-changes', request(config));
  const atRead = await failureOf(pollTrigger('row-changes', request(config, state)));
  expect([atRead.code, atRead.message, (atRead.cause as { sqlstate?: string }).sqlstate]).toEqual(['TRIGGER_NOT_ACTIVE', notActive, '3F000']);
  // Another activation keeps the schema: then the read function alone is missing.
  const other = { tables: ['orders'], name: 'other' };
  await activateTrigger('row-changes', request(other));
  const alone = await failureOf(pollTrigger('row-changes', request(config, state)));
  expect([alone.code, alone.message, (alone.cause as { sqlstate?: string }).sqlstate]).toEqual(['TRIGGER_NOT_ACTIVE', notActive, '42883']);
});
