/**
 * The playground's Trigger panel API against a real database and the real server: activate,
 * live events over Server-Sent Events as "make a change" writes rows, acknowledgement (a
 * reopened stream resumes after what was delivered), and that a closed page, Deactivate and a
 * stopped playground leave no session, lock, trigger, function or table behind.
 */
import { startPlayground, type Playground } from '../../playground/server.js';
import { validatorFor } from '../../schemas/validate.js';
import { findTrigger, triggers } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { openEventStream, type EventStreamReader } from '../harness/event-stream.js';
import { waitFor } from '../triggers/helpers.js';

const db = useTestDatabase('playground_triggers', {
  beforeDrop: async () => {
    await playground?.close();
  },
});
let playground: Playground;
let password: string;
const streams: EventStreamReader[] = [];

const auth = (of: Playground = playground) => ({ Authorization: `Bearer ${of.token}` });

async function call(method: 'GET' | 'POST', path: string, body?: unknown, of: Playground = playground): Promise<{ status: number; json: any }> {
  const response = await fetch(new URL(path, of.url), {
    method,
    headers: { ...auth(of), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  expect(text).not.toContain(password);
  return { status: response.status, json: JSON.parse(text) };
}

const post = (path: string, body: unknown = {}, of?: Playground) => call('POST', path, body, of);

async function activate(trigger: string, config: object, of?: Playground): Promise<string> {
  const reply = await post(`/api/triggers/${trigger}/activate`, { connection: 'default', config }, of);
  expect(reply).toEqual({ status: 200, json: expect.objectContaining({ id: expect.any(String), trigger, config }) });
  return reply.json.id;
}

async function events(id: string, of: Playground = playground): Promise<EventStreamReader> {
  const stream = await openEventStream(new URL(`/api/trigger-sessions/${id}/events`, of.url), auth(of));
  streams.push(stream);
  expect(stream.status).toBe(200);
  expect(stream.contentType).toBe('text/event-stream; charset=utf-8');
  await stream.next('ready');
  return stream;
}

const change = async (id: string, op?: string) => {
  const reply = await post(`/api/trigger-sessions/${id}/change`, op ? { op } : {});
  expect(reply.status).toBe(200);
  return reply.json.change;
};

/** row-changes' objects: schema, tables, functions, triggers. */
async function ourObjects(): Promise<string[]> {
  const rows = await db.sql<{ o: string }>(`
    SELECT 'schema ' || nspname AS o FROM pg_namespace WHERE nspname = 'pgactions'
    UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = to_regnamespace('pgactions')
    UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname LIKE 'pg\\_actions\\_%'
    ORDER BY 1`);
  return rows.map((r) => r.o);
}

/** A subscription's own session: its LISTEN connection, which also takes and renews the lease (the cursor row's lease_until). */
async function subscriptionSessions(): Promise<unknown[]> {
  return db.sql(`
    SELECT pid, query FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()
       AND (query ILIKE 'LISTEN%' OR query LIKE '%lease\\_until = pg\\_catalog.clock\\_timestamp()%')`);
}

async function expectNoSubscriptionSession(): Promise<void> {
  await waitFor(async () => (await subscriptionSessions()).length === 0, 'the subscription session to end').catch(async (error: Error) => {
    throw new Error(`${error.message}: ${JSON.stringify(await subscriptionSessions())}`);
  });
}

beforeAll(async () => {
  password = db.config.password!;
  await db.sql(`CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL,
                status text NOT NULL DEFAULT 'active', score numeric(10,2) NOT NULL, active boolean NOT NULL,
                born date NOT NULL, profile jsonb NOT NULL, tags text[] NOT NULL, updated_at timestamptz)`);
  await db.sql(`CREATE TABLE "Odd ""Name""" (k uuid PRIMARY KEY, "Seq No" serial, "Note" varchar(40) NOT NULL)`);
  await db.sql(`CREATE TABLE no_key (note text)`);
  playground = await startPlayground({ connection: db.config });
}, 60_000);

afterEach(() => {
  for (const stream of streams.splice(0)) {
    expect(stream.text()).not.toContain(password);
    stream.close();
  }
});

test('GET /api/triggers lists every trigger of the registry with its config schema and example', async () => {
  const reply = await call('GET', '/api/triggers');
  expect(reply.status).toBe(200);
  expect(reply.json.triggers.map((t: { key: string }) => t.key)).toEqual(triggers.map((t) => t.key));
  const rowChanges = reply.json.triggers.find((t: { key: string }) => t.key === 'row-changes');
  expect(rowChanges).toEqual(expect.objectContaining({ name: 'Row Changes', installs: true, push: true, config: findTrigger('row-changes')!.config }));
  expect(rowChanges.example).toEqual(findTrigger('row-changes')!.example.config);
  expect(reply.json.triggers.find((t: { key: string }) => t.key === 'new-row')).toEqual(expect.objectContaining({ installs: false, push: false }));
});

test('row-changes: activate, events arrive live as rows change, deactivate leaves nothing behind', async () => {
  const id = await activate('row-changes', { tables: ['users'], operations: ['INSERT', 'UPDATE', 'DELETE'] });
  expect((await call('GET', '/api/trigger-sessions')).json.sessions).toEqual([expect.objectContaining({ id, trigger: 'row-changes', streaming: false, delivered: 0 })]);
  const stream = await events(id);
  const valid = validatorFor(findTrigger('row-changes')!.event);

  const inserted = await change(id, 'insert');
  expect(inserted.row).toEqual(expect.objectContaining({ name: expect.stringMatching(/^Playground \d+$/), email: expect.stringMatching(/^playground\+\d+@example\.com$/), active: true, tags: [] }));
  const first = await stream.next('trigger', 0);
  expect(valid(first, 'event')).toEqual([]);
  expect(first).toEqual(expect.objectContaining({ op: 'INSERT', schema: 'public', table: 'users', key: { id: inserted.row.id }, old: null }));
  expect(first.new).toEqual(expect.objectContaining({ id: inserted.row.id, email: inserted.row.email, profile: inserted.row.profile }));

  const updated = await change(id, 'update');
  expect(updated.row.id).toBe(inserted.row.id);
  expect(updated.row.name).toMatch(/^changed \d+$/);
  expect(updated.row.updated_at).not.toBeNull();
  const second = await stream.next('trigger', 1);
  expect(second).toEqual(expect.objectContaining({ op: 'UPDATE', key: { id: inserted.row.id } }));
  expect(second.old.name).toBe(inserted.row.name);
  expect(second.new.name).toBe(updated.row.name);

  await change(id, 'delete');
  expect(await stream.next('trigger', 2)).toEqual(expect.objectContaining({ op: 'DELETE', new: null, key: { id: inserted.row.id } }));
  expect(await db.sql('SELECT * FROM users')).toEqual([]);
  expect((await call('GET', '/api/trigger-sessions')).json.sessions).toEqual([expect.objectContaining({ id, streaming: true, delivered: 3 })]);
  expect((await subscriptionSessions()).length).toBeGreaterThan(0); // the probe sees a running subscription

  expect(await post(`/api/trigger-sessions/${id}/deactivate`)).toEqual({ status: 200, json: { deactivated: true } });
  await waitFor(() => stream.ended(), 'the server to end the stream');
  expect(stream.messages.at(-1)).toEqual({ event: 'deactivated', data: {} });
  expect(await ourObjects()).toEqual([]);
  await expectNoSubscriptionSession();
  expect((await call('GET', '/api/trigger-sessions')).json.sessions).toEqual([]);
  expect((await post(`/api/trigger-sessions/${id}/change`)).status).toBe(404);
}, 60_000);

test('a closed page ends the subscription; events acknowledged on the page are not sent again, the others wait for it', async () => {
  const id = await activate('row-changes', { tables: ['users'], operations: ['INSERT'] });
  const page = await events(id);
  const seen = await change(id, 'insert');
  expect((await page.next('trigger')).new.id).toBe(seen.row.id);
  page.close(); // the tab is closed
  await expectNoSubscriptionSession();

  const missed = await change(id, 'insert'); // while no page is open: kept in the outbox
  const reopened = await events(id);
  const next = await reopened.next('trigger');
  expect(next.new.id).toBe(missed.row.id);
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(reopened.messages.filter((m) => m.event === 'trigger').map((m) => m.data.new.id)).toEqual([missed.row.id]);

  // A second stream for the same session replaces the first, which the server ends.
  const replacing = await events(id);
  await waitFor(() => reopened.ended(), 'the replaced stream to end');
  expect(reopened.messages.at(-1)).toEqual({ event: 'replaced', data: {} }); // the page stops reconnecting
  const latest = await change(id, 'insert');
  expect((await replacing.next('trigger')).new.id).toBe(latest.row.id);

  await post(`/api/trigger-sessions/${id}/deactivate`);
  await expectNoSubscriptionSession();
  expect(await ourObjects()).toEqual([]);
}, 60_000);

test('a stream (re)opened while Deactivate runs is refused or ended: no subscription outlives the activation', async () => {
  await db.sql('CREATE TABLE IF NOT EXISTS raced (id serial PRIMARY KEY, name text)');
  for (let round = 0; round < 6; round++) {
    const id = await activate('row-changes', { tables: ['raced'], operations: ['INSERT'] });
    // The user clicks Deactivate in one tab while a page's EventSource reconnects.
    const deactivating = post(`/api/trigger-sessions/${id}/deactivate`);
    await new Promise((resolve) => setTimeout(resolve, round * 15));
    const raced = await openEventStream(new URL(`/api/trigger-sessions/${id}/events`, playground.url), auth());
    streams.push(raced);
    expect((await deactivating).status).toBe(200);
    // Either refused (404: no reconnect) or told it was deactivated; never a live stream for a removed trigger.
    if (raced.status === 200) await waitFor(() => raced.ended(), `round ${round}: the raced stream to be ended by the server`);
    else expect(raced.status).toBe(404);
    expect(raced.messages.map((m) => m.event)).not.toContain('trigger');
    await expectNoSubscriptionSession(); // the raced page is still open: only the server can have ended it
    expect((await call('GET', '/api/trigger-sessions')).json.sessions).toEqual([]);
  }
}, 120_000);

test('Activate raced with Deactivate of the same trigger: installed exactly when a session is listed, never left behind', async () => {
  await db.sql('CREATE TABLE IF NOT EXISTS reraced (id serial PRIMARY KEY, name text)');
  const config = { tables: ['reraced'], operations: ['INSERT'] };
  for (let round = 0; round < 4; round++) {
    const id = await activate('row-changes', config);
    const deactivating = post(`/api/trigger-sessions/${id}/deactivate`);
    await new Promise((resolve) => setTimeout(resolve, 5 + round * 10));
    const again = await post('/api/triggers/row-changes/activate', { connection: 'default', config });
    expect(again.status).toBe(200);
    expect((await deactivating).status).toBe(200);
    const sessions = (await call('GET', '/api/trigger-sessions')).json.sessions as { id: string }[];
    // the page holds again.json.id: it must be a live session whenever the trigger is installed
    expect({ round, installed: (await ourObjects()).length > 0, listed: sessions.map((s) => s.id) }).toEqual(
      { round, installed: sessions.length > 0, listed: sessions.length ? [again.json.id] : [] },
    );
    for (const session of sessions) await post(`/api/trigger-sessions/${session.id}/deactivate`);
    expect(await ourObjects()).toEqual([]);
  }
}, 120_000);

test('Activate (another tab) just before Deactivate of the same trigger: installed exactly when a session is listed, never left behind (REVIEW4 R28)', async () => {
  await db.sql('CREATE TABLE IF NOT EXISTS reraced_first (id serial PRIMARY KEY, name text)');
  const config = { tables: ['reraced_first'], operations: ['INSERT'] };
  for (let round = 0; round < 12; round++) {
    const id = await activate('row-changes', config);
    const again = post('/api/triggers/row-changes/activate', { connection: 'default', config });
    await new Promise((resolve) => setTimeout(resolve, (round % 6) * 4));
    const deactivated = await post(`/api/trigger-sessions/${id}/deactivate`);
    expect([(await again).status, deactivated.status]).toEqual([200, 200]);
    const sessions = (await call('GET', '/api/trigger-sessions')).json.sessions as { id: string }[];
    // One after the other, in either order: re-activated then removed (nothing left), or removed then activated anew.
    expect({ round, installed: (await ourObjects()).length > 0, listed: sessions.map((s) => s.id) }).toEqual(
      { round, installed: sessions.length > 0, listed: sessions.length ? [(await again).json.id] : [] },
    );
    for (const session of sessions) await post(`/api/trigger-sessions/${session.id}/deactivate`);
    expect(await ourObjects()).toEqual([]);
  }
}, 120_000);

test('new-row (polling, nothing installed): an inserted row arrives; "make a change" writes quoted names and typed values', async () => {
  const id = await activate('new-row', { table: '"Odd ""Name"""', column: 'Seq No', intervalSeconds: 0.2 });
  const stream = await events(id);
  const made = await change(id);
  expect(made.row).toEqual({ k: expect.stringMatching(/^[0-9a-f-]{36}$/), 'Seq No': 1, Note: expect.stringMatching(/^Playground \d+$/) });
  // new-row waits for older transactions to end (late commits): other test files' open transactions can delay it.
  const event = await stream.next('trigger', 0, 90_000);
  expect(event).toEqual(expect.objectContaining({ op: 'INSERT', table: 'Odd "Name"', new: made.row }));
  // The position lives in the playground's memory: a row inserted while the page was closed arrives when it reopens.
  stream.close();
  await waitFor(async () => !(await call('GET', '/api/trigger-sessions')).json.sessions[0].streaming, 'the stream to close');
  const whileAway = await change(id);
  const reopened = await events(id);
  expect((await reopened.next('trigger', 0, 90_000)).new).toEqual(whileAway.row);
  expect(await post(`/api/trigger-sessions/${id}/deactivate`)).toEqual({ status: 200, json: { deactivated: false } });
  await waitFor(() => reopened.ended(), 'the stream to end');
}, 240_000);

test('listen: Active means listening: one NOTIFY sent by "make a change" right after ready arrives as an event', async () => {
  for (const channel of ['Playground channel', 'Second channel']) {
    const id = await activate('listen', { channel });
    const stream = await events(id); // resolves on 'ready', which the page shows as Active
    // NOTIFY keeps no history: had LISTEN not been in place yet, this one would be gone.
    const notified = await change(id);
    expect(notified).toEqual({ op: 'notify', channel, payload: expect.objectContaining({ from: 'playground' }) });
    const event = await stream.next('trigger', 0, 10_000);
    expect(event).toEqual(expect.objectContaining({ channel, payload: notified.payload }));
    stream.close();
    await expectNoSubscriptionSession();
    await post(`/api/trigger-sessions/${id}/deactivate`);
  }
}, 60_000);

test('invalid requests are a 400 naming the field, unknown triggers and sessions a 404', async () => {
  const invalid = await post('/api/triggers/row-changes/activate', { connection: 'default', config: { tables: 'users' } });
  expect(invalid.status).toBe(400);
  expect(invalid.json.error).toEqual(expect.objectContaining({ code: 'INVALID_INPUT', problems: [expect.stringContaining('config.tables')] }));
  const missing = await post('/api/triggers/new-row/activate', { connection: 'default', config: { table: 'users' } });
  expect(missing.json.error.problems).toEqual([expect.stringContaining('config.column')]);
  expect((await post('/api/triggers/row-changes/activate', { connection: 'default', config: [] })).json.error.message).toMatch(/^config must be an object/);
  expect((await post('/api/triggers/row-changes/activate', { connection: 42, config: { tables: ['users'] } })).json.error.message).toMatch(/^connection must be/);
  expect((await post('/api/triggers/drop-everything/activate', { connection: 'default', config: {} })).status).toBe(404);
  const undefinedTable = await post('/api/triggers/row-changes/activate', { connection: 'default', config: { tables: ['nope'] } });
  expect(undefinedTable).toEqual({ status: 422, json: { error: expect.objectContaining({ code: 'UNDEFINED_TABLE' }) } });

  for (const path of ['/api/trigger-sessions/nope/events']) expect((await call('GET', path)).status).toBe(404);
  for (const path of ['/api/trigger-sessions/nope/change', '/api/trigger-sessions/nope/deactivate']) expect((await post(path)).status).toBe(404);

  const noKey = await activate('row-changes', { tables: ['no_key'] });
  const update = await post(`/api/trigger-sessions/${noKey}/change`, { op: 'update' });
  expect(update.status).toBe(400);
  expect(update.json.error.message).toMatch(/^table public\.no_key has no primary key/);
  expect((await post(`/api/trigger-sessions/${noKey}/change`, { op: 'insert' })).json.change.row).toEqual({ note: null });
  await post(`/api/trigger-sessions/${noKey}/deactivate`);
  const keyed = await activate('new-row', { table: 'users', column: 'id' });
  const op = await post(`/api/trigger-sessions/${keyed}/change`, { op: 'truncate' });
  expect(op).toEqual({ status: 400, json: { error: expect.objectContaining({ code: 'INVALID_INPUT', message: 'op must be one of "insert", "update", "delete"' }) } });
  const table = await post(`/api/trigger-sessions/${keyed}/change`, { table: 'other' });
  expect(table.json.error.message).toBe("table must be one of the trigger's tables: users");
  await post(`/api/trigger-sessions/${keyed}/deactivate`);
});

test('stopping the playground closes its streams and deactivates what it activated', async () => {
  const other = await startPlayground({ connection: db.config });
  const id = await activate('row-changes', { tables: ['users'], name: 'second playground' }, other);
  const stream = await events(id, other);
  expect(await ourObjects()).not.toEqual([]);
  await other.close();
  await waitFor(() => stream.ended(), 'the stream to end');
  expect(await ourObjects()).toEqual([]);
  await expectNoSubscriptionSession();
}, 60_000);
