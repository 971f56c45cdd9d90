/**
 * The delivery horizon of new-row against a real server, with the exact late-commit repro of the
 * review: a transaction takes its ordering value (now(), nextval()) before it has a transaction
 * id, another one commits a higher value in between, the first commits last. Its row must still
 * be delivered, once, for a timestamp and for a serial column, also to a least-privilege role.
 */
import { closeAll } from '../../connection/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { subscribeTrigger } from '../../triggers/index.js';
import { closeOutcome } from './closing.js';
import { poll, session, waitFor } from './helpers.js';

const db = useTestDatabase('newrowlate');

beforeEach(async () => {
  await db.sql('DROP TABLE IF EXISTS events');
  await db.sql('CREATE TABLE events (id serial PRIMARY KEY, created_at timestamptz DEFAULT now(), what text)');
});

const what = (events: Record<string, unknown>[]) => events.map((e) => (e.new as { what: string }).what);

/** Polls until two polls in a row bring nothing new; returns everything delivered, in order. */
async function drain(connection: object, config: object, state: unknown): Promise<Record<string, unknown>[]> {
  const all: Record<string, unknown>[] = [];
  let empty = 0;
  for (let i = 0; i < 10 && empty < 2; i++) {
    const next = await poll('new-row', { connection: connection as never, config, state });
    all.push(...next.events);
    empty = next.events.length ? 0 : empty + 1;
    state = next.state;
  }
  return all;
}

async function lateCommit(column: 'created_at' | 'id', connection: object = db.config): Promise<{ during: string[]; all: string[] }> {
  const config = { table: 'events', column, from: 'beginning' as const };
  const t1 = await session(db);
  const t2 = await session(db);
  try {
    await db.sql("INSERT INTO events (what) VALUES ('before')"); // (also takes the sequence's first, logged, value)
    const start = await poll('new-row', { connection: connection as never, config });
    await t1.query('BEGIN');
    // T1 takes its ordering value and has no transaction id yet.
    const { id } = (await t1.query("SELECT now(), nextval('events_id_seq') AS id")).rows[0] as { id: string };
    await t2.query("INSERT INTO events (what) VALUES ('t2')"); // commits a higher value
    await t1.query("INSERT INTO events (id, what) VALUES ($1, 't1')", [id]); // lower value, newer transaction
    const during = await poll('new-row', { connection: connection as never, config, state: start.state });
    await t1.query('COMMIT');
    const rest = await drain(connection, config, during.state);
    return { during: what(start.events.concat(during.events)), all: what([...start.events, ...during.events, ...rest]) };
  } finally {
    await t1.end();
    await t2.end();
  }
}

test('timestamp column: a row whose now() is earlier but commits last is delivered, once, in order', async () => {
  const { during, all } = await lateCommit('created_at');
  expect(all).toEqual(['before', 't1', 't2']);
  expect(during).toEqual(['before']); // t2 waits while T1, open when t2 became visible, is running
});

test('serial column: a nextval() taken before the transaction had an id, committed last, is delivered once, in order', async () => {
  const { all } = await lateCommit('id');
  expect(all).toEqual(['before', 't1', 't2']);
});

test('a least-privilege role (SELECT on the table only) gets the same guarantee', async () => {
  await db.sql('DROP ROLE IF EXISTS nr_reader');
  await db.sql("CREATE ROLE nr_reader LOGIN PASSWORD 'nr-reader-pw'");
  try {
    await db.sql(`GRANT CONNECT ON DATABASE "${db.name}" TO nr_reader; GRANT USAGE ON SCHEMA public TO nr_reader; GRANT SELECT ON events TO nr_reader`);
    const { all } = await lateCommit('created_at', { ...db.config, user: 'nr_reader', password: 'nr-reader-pw' });
    expect(all).toEqual(['before', 't1', 't2']);
  } finally {
    await closeAll();
    await db.sql('DROP OWNED BY nr_reader; DROP ROLE nr_reader');
  }
});

test('a transaction left open holds newer rows back (a delay); when it ends they come', async () => {
  const config = { table: 'events', column: 'id', from: 'beginning' as const };
  const idle = await session(db);
  try {
    await idle.query('BEGIN; SELECT 1');
    await db.sql("INSERT INTO events (what) VALUES ('a')");
    const held = await poll('new-row', { connection: db.config, config });
    const again = await poll('new-row', { connection: db.config, config, state: held.state });
    expect([...held.events, ...again.events]).toEqual([]);
    await idle.query('ROLLBACK');
    expect(what(await drain(db.config, config, again.state))).toEqual(['a']);
  } finally {
    await idle.end();
  }
});

test('subscribe: close() does not wait forever for a handler that never settles', async () => {
  await db.sql("INSERT INTO events (what) VALUES ('a')");
  let calls = 0;
  const subscription = await subscribeTrigger('new-row', { connection: db.config, config: { table: 'events', column: 'id', from: 'beginning' } }, () => {
    calls++;
    return new Promise<void>(() => undefined);
  });
  await waitFor(() => calls > 0, 'the handler to be called');
  expect(await closeOutcome(subscription)).toBe('closed');
}, 90_000);
