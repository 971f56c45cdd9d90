/**
 * The same rows read from the same state give the same event ids, keys and values whatever the
 * session's TimeZone (REVIEW9 R160). A timestamptz is written in the session's TimeZone
 * (`2026-01-01 21:00:00+09` in Asia/Tokyo), and the ids of new-row, new-or-updated-row (its row
 * version) and table-sync are made of that text: after `ALTER DATABASE … SET TimeZone` (a role's
 * default, a pooler client's TimeZone) the same rows came again under other ids, and a host
 * de-duplicating by id ran its flow twice for them. Triggers write timestamptz in UTC; actions keep
 * the session's TimeZone (a user's SQL means what it says).
 */
import { closeAll, execute } from '../../connection/index.js';
import { activateTrigger, deactivateTrigger, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { session } from './helpers.js';

const db = useTestDatabase('key_ids_timezone');

interface RowEvent {
  id: string;
  key: Record<string, unknown>;
  new: Record<string, unknown>;
}

/** Two zones, neither UTC, so the test bites whatever the server's own default is. */
const ZONES = ['America/New_York', 'Asia/Tokyo'] as const;

beforeAll(async () => {
  await db.sql('CREATE TABLE readings (taken_at timestamptz PRIMARY KEY, v int NOT NULL, seen timestamptz NOT NULL)');
  await db.sql(`INSERT INTO readings SELECT t, i, t + interval '1 minute' FROM generate_series(1, 5) AS i, LATERAL (SELECT timestamptz '2026-01-01 10:00:00+00' + i * interval '1 hour' AS t) AS x`);
  await db.sql('CREATE TABLE items (id int PRIMARY KEY, updated timestamptz NOT NULL)');
  await db.sql(`INSERT INTO items SELECT i, timestamptz '2026-01-01 10:00:00+00' + i * interval '1 hour' FROM generate_series(1, 3) AS i`);
});

/** Every session pg-actions opens from now on starts in `zone` (its pools are closed first). */
async function inZone(zone: string): Promise<void> {
  await db.sql(`ALTER DATABASE ${db.name} SET TimeZone = '${zone}'`);
  await closeAll();
  const { rows } = await execute(db.config, { text: 'SHOW TimeZone' });
  expect(rows[0]!.TimeZone).toBe(zone);
}

async function pollIn(zone: string, key: string, request: { connection: object; config: object; state?: TriggerState }): Promise<{ events: RowEvent[]; state: TriggerState }> {
  await inZone(zone);
  const result = await pollTrigger(key, request);
  return { events: result.events as unknown as RowEvent[], state: result.state };
}

test.each(['none', 'transaction'])('new-row (pooler %s): the same state read under two database TimeZones gives the same ids, keys, values and state', async (pooler) => {
  const request = { connection: { ...db.config, pooler }, config: { table: 'readings', column: 'taken_at', from: 'beginning', batchSize: 3 } };
  const [a, b] = [await pollIn(ZONES[0], 'new-row', request), await pollIn(ZONES[1], 'new-row', request)];
  expect(a.events).toHaveLength(3);
  expect(a.events[0]!.id).toMatch(/:\["2026-01-01 11:00:00\+00"\]$/);
  expect(a.events[0]!.key).toEqual({ taken_at: '2026-01-01T11:00:00Z' });
  expect(a.events[0]!.new).toEqual({ taken_at: '2026-01-01T11:00:00Z', v: 1, seen: '2026-01-01T11:01:00Z' });
  expect(b.events).toEqual(a.events);
  expect(b.state).toEqual(a.state);
  // The next batch, from each zone's state, in the other zone: the same rows again.
  const [c, d] = [await pollIn(ZONES[1], 'new-row', { ...request, state: a.state }), await pollIn(ZONES[0], 'new-row', { ...request, state: b.state })];
  expect(c.events.map((e) => e.key.taken_at)).toEqual(['2026-01-01T14:00:00Z', '2026-01-01T15:00:00Z']);
  expect(d.events).toEqual(c.events);
}, 60_000);

test('new-or-updated-row: a timestamptz version column gives the same ids under two database TimeZones', async () => {
  const request = { connection: db.config, config: { table: 'items', column: 'updated', from: 'beginning' } };
  const [a, b] = [await pollIn(ZONES[0], 'new-or-updated-row', request), await pollIn(ZONES[1], 'new-or-updated-row', request)];
  expect(a.events).toHaveLength(3);
  expect(a.events[0]!.new).toEqual({ id: 1, updated: '2026-01-01T11:00:00Z' });
  expect(b.events.map((e) => e.id)).toEqual(a.events.map((e) => e.id));
  expect(b.events).toEqual(a.events);
}, 60_000);

test.each(['none', 'transaction'])('table-sync (pooler %s): a batch read from the same state under two database TimeZones gives the same ids, keys, values and cursor', async (pooler) => {
  const connection = { ...db.config, pooler };
  const config = { tables: ['readings'], batchSize: 2 };
  await inZone('UTC');
  const first = await pollTrigger('table-sync', { connection, config });
  expect(first.events).toHaveLength(2);
  const [a, b] = [await pollIn(ZONES[0], 'table-sync', { connection, config, state: first.state }), await pollIn(ZONES[1], 'table-sync', { connection, config, state: first.state })];
  expect(a.events).toHaveLength(2);
  expect(a.events[0]!.id).toMatch(/:\["2026-01-01 13:00:00\+00"\]$/);
  expect(a.events[0]!.new).toEqual({ taken_at: '2026-01-01T13:00:00Z', v: 3, seen: '2026-01-01T13:01:00Z' });
  expect(b.events).toEqual(a.events);
  expect(b.state).toEqual(a.state);
}, 60_000);

test('row-changes: a timestamptz written by sessions in two TimeZones is captured as the same text', async () => {
  const config = { tables: ['stamped'] };
  await db.sql('CREATE TABLE stamped (id int PRIMARY KEY, at timestamptz NOT NULL)');
  await activateTrigger('row-changes', { connection: db.config, config });
  try {
    const start = await pollTrigger('row-changes', { connection: db.config, config });
    for (const [i, zone] of ZONES.entries()) {
      const app = await session(db); // an application's session, not pg-actions'
      try {
        await app.query(`SET TimeZone = '${zone}'`);
        await app.query(`INSERT INTO stamped VALUES ($1, '2026-01-01 12:00:00+00')`, [i + 1]);
      } finally {
        await app.end();
      }
    }
    const { events } = await pollTrigger('row-changes', { connection: db.config, config, state: start.state });
    expect(events.map((event) => (event as unknown as RowEvent).new)).toEqual([{ id: 1, at: '2026-01-01T12:00:00+00:00' }, { id: 2, at: '2026-01-01T12:00:00+00:00' }]);
  } finally {
    await deactivateTrigger('row-changes', { connection: db.config, config });
  }
}, 120_000);

test('actions keep the session\'s TimeZone: Query Rows returns the database TimeZone\'s offset, and the user\'s SQL means what it says', async () => {
  await inZone('Asia/Tokyo');
  const { rows } = await execute(db.config, { text: "SELECT taken_at, (taken_at)::date::text AS day, (timestamptz '2026-01-02 00:00')::text AS midnight FROM readings WHERE v = 5" });
  expect(rows).toEqual([{ taken_at: '2026-01-02T00:00:00+09:00', day: '2026-01-02', midnight: '2026-01-02 00:00:00+09' }]);
});
