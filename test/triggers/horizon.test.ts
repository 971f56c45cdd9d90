/**
 * The delivery horizon (triggers/horizon.ts) against a real server, at the level of the state a
 * host stores: which open transactions hold it back (this database's, not another database's,
 * not an idle session's), how the list it waits for shrinks as they end, and what a pending
 * horizon becomes once nothing it waited for is still open.
 */
import pg from 'pg';
import { adminConfig } from '../harness/db.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { poll, session } from './helpers.js';

const db = useTestDatabase('horizon');

beforeEach(async () => {
  await db.sql('DROP TABLE IF EXISTS events; CREATE TABLE events (id int PRIMARY KEY, at int)');
});

interface Position { after: unknown; horizon: { through: unknown; pending?: { through: unknown; waitFor: string[] } } }
const config = { table: 'events', column: 'at', from: 'beginning' as const };
const positionOf = (state: unknown) => (state as { position: Position }).position;
const keys = (events: Record<string, unknown>[]) => events.map((e) => (e.key as { id: number }).id);

/** A session with a transaction open (BEGIN and one statement), on this or another database. */
async function openTransaction(database?: string): Promise<pg.Client> {
  const client = database ? new pg.Client({ ...adminConfig(database), ssl: false }) : await session(db);
  client.on('error', () => {});
  if (database) await client.connect();
  await client.query('BEGIN; SELECT 1');
  return client;
}

test('a transaction open in another database, or a session with none open, does not hold the horizon', async () => {
  await db.sql('INSERT INTO events VALUES (1, 1)');
  const elsewhere = await openTransaction('postgres');
  const idle = await session(db);
  try {
    const batch = await poll('new-or-updated-row', { connection: db.config, config });
    expect(keys(batch.events)).toEqual([1]);
    expect(positionOf(batch.state).horizon).toEqual({ through: 1 });
  } finally {
    await elsewhere.end();
    await idle.end();
  }
});

test('a pending horizon waits for exactly the transactions still open, and the list shrinks as they end', async () => {
  await db.sql('INSERT INTO events VALUES (1, 1)');
  const first = await poll('new-or-updated-row', { connection: db.config, config });
  const one = await openTransaction();
  const two = await openTransaction();
  try {
    await db.sql('INSERT INTO events VALUES (2, 2)');
    const held = await poll('new-or-updated-row', { connection: db.config, config, state: first.state });
    expect(held.events).toEqual([]);
    const noted = positionOf(held.state).horizon.pending!.waitFor;
    expect(noted).toHaveLength(2);
    expect(noted.every((id) => /^\d+\/\d+$/.test(id))).toBe(true); // virtual transaction ids
    await one.query('COMMIT');
    const still = await poll('new-or-updated-row', { connection: db.config, config, state: held.state });
    expect(still.events).toEqual([]);
    expect(positionOf(still.state).horizon).toEqual({ through: 1, pending: { through: 2, waitFor: [expect.any(String)] } });
    expect(noted).toContain(positionOf(still.state).horizon.pending!.waitFor[0]);
    await two.query('ROLLBACK');
    const released = await poll('new-or-updated-row', { connection: db.config, config, state: still.state });
    expect(keys(released.events)).toEqual([2]);
    expect(positionOf(released.state).horizon).toEqual({ through: 2 });
  } finally {
    await one.end();
    await two.end();
  }
});

test('a pending horizon whose transactions are gone is released even when the table has emptied since', async () => {
  await db.sql('INSERT INTO events VALUES (1, 1), (2, 2)');
  const { state } = await poll('new-or-updated-row', { connection: db.config, config: { ...config, batchSize: 1 } });
  await db.sql('DELETE FROM events');
  const stale = { ...(state as object), position: { after: [1, 1], horizon: { through: 1, pending: { through: 2, waitFor: ['999999/1', 'prepared 12345'] } } } };
  const released = await poll('new-or-updated-row', { connection: db.config, config: { ...config, batchSize: 1 }, state: stale });
  expect(released.events).toEqual([]);
  expect(positionOf(released.state)).toEqual({ after: [1, 1], horizon: { through: 2 } });
});
