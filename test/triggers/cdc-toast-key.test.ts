/**
 * A primary key stored out of line (TOAST) that an UPDATE leaves unchanged (REVIEW7 R128): pgoutput
 * sends it as "unchanged" in the new row and its value in the old key tuple only, and the event came
 * with `key: {}`: a consumer could not apply it, and after a table-sync handover its copy kept the
 * stale rows. Now `key` takes each key column from the new row, else from the old key, polled and
 * subscribed alike; a server that did not send the old key (before PostgreSQL's 2022 fix) fails
 * with CDC_KEY_NOT_SENT instead of a change without its key.
 */
import { PgActionsError } from '../../connection/index.js';
import { activateTrigger, deactivateTrigger, pollTrigger, subscribeTrigger, type TriggerEvent } from '../../triggers/index.js';
import { ChangeAssembler } from '../../triggers/replication/changes.js';
import { decodePgOutput } from '../../triggers/replication/pgoutput.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { poll, syncThenChanges, waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
const server = useReplicationServer();
let n = 0;

/** A fresh database with tk (k text PRIMARY KEY stored EXTERNAL, v int): `keys` long keys (2,500 characters, incompressible) and one short. */
async function toastedKeys(keys: number): Promise<{ sql: (text: string, values?: unknown[]) => Promise<Record<string, unknown>[]>; connection: ReturnType<typeof server.config> }> {
  const database = `toast_key_${++n}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string, values?: unknown[]) => server.sql(text, values, database);
  await sql(`CREATE TABLE tk (k text PRIMARY KEY, v int NOT NULL); ALTER TABLE tk ALTER COLUMN k SET STORAGE EXTERNAL;
    CREATE TABLE marker (id int PRIMARY KEY);
    INSERT INTO tk SELECT chr(96 + i) || (SELECT string_agg(md5(i || ':' || g || random()), '') FROM generate_series(1, 78) g), 1 FROM generate_series(1, ${keys}) i;
    INSERT INTO tk VALUES ('short', 1)`);
  // The long keys really are out of line: a stored size of the whole value, not a compressed one, in the TOAST table.
  expect(await sql("SELECT length(k) AS length, pg_column_size(k) AS stored FROM tk WHERE k <> 'short'")).toEqual(Array.from({ length: keys }, () => ({ length: 2497, stored: 2497 })));
  return { sql, connection: server.config({ database }) };
}

const keyOf = (event: TriggerEvent) => (event.key as { k?: string }).k;

test('an UPDATE of another column than a 2.5 KB key stored out of line: key is the row\'s key, polled and subscribed', async () => {
  const { sql, connection } = await toastedKeys(2);
  const request = { connection, config: { tables: ['tk'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  try {
    const start = (await pollTrigger(KEY, request)).state;
    await sql('UPDATE tk SET v = 2');
    const rows = (await sql('SELECT k FROM tk ORDER BY ctid')).map((row) => row.k as string);
    const expectEvents = (events: TriggerEvent[]) => {
      expect(events.map(keyOf).sort()).toEqual([...rows].sort());
      for (const event of events) {
        const change = event as unknown as { key: { k: string }; new: Record<string, unknown>; unchanged?: string[] };
        expect(change.new.v).toBe(2);
        if (change.key.k === 'short') expect(change.new.k).toBe('short');
        else expect([change.new.k, change.unchanged]).toEqual([undefined, ['k']]); // the server did not send it in the new row
      }
    };
    const polled = await poll(KEY, { ...request, state: start }); // events checked against the event schema
    expect(polled.events).toHaveLength(3);
    expectEvents(polled.events as TriggerEvent[]);

    const subscribed: TriggerEvent[] = [];
    const errors: unknown[] = [];
    const subscription = await subscribeTrigger(KEY, { ...request, state: start, onError: (error) => void errors.push(error) }, async (events) => void subscribed.push(...events));
    try {
      await waitFor(() => subscribed.length >= 3 || errors.length > 0, 'the subscribed updates', 60_000);
    } finally {
      await subscription.close();
    }
    expect(errors).toEqual([]);
    expectEvents(subscribed);
    expect(subscribed.map((event) => event.id)).toEqual(polled.events.map((event) => event.id));
  } finally {
    await deactivateTrigger(KEY, request);
  }
}, 120_000);

test('table-sync handing over to table-changes-cdc, keys stored out of line, each row updated after its batch: the copy, upserted by event key, equals the table', async () => {
  const { sql, connection } = await toastedKeys(3);
  const cdc = { connection, config: { tables: ['tk', 'marker'], heartbeatSeconds: 0 } };
  const sync = { connection, config: { tables: ['tk'], batchSize: 1, handover: { tables: ['tk', 'marker'] } } };
  await activateTrigger(KEY, cdc);
  try {
    const { copy, updates, delivered } = await syncThenChanges(
      { sync, cdc },
      (event) => (event.table === 'marker' ? 'marker' : `tk:${keyOf(event)}`),
      (_event, row) => sql('UPDATE tk SET v = 2 WHERE k = $1', [row.k]), // only the CDC can bring this version
      () => sql('INSERT INTO marker VALUES (1)'),
      (copy) => copy.has('marker'),
    );
    expect(updates).toBe(4);
    expect(delivered).toBe(updates + 1);
    const table = await sql('SELECT k, v FROM tk');
    expect([...copy.keys()].sort()).toEqual(['marker', ...table.map((row) => `tk:${row.k as string}`)].sort());
    expect(table.filter((row) => copy.get(`tk:${row.k as string}`)!.v !== row.v)).toEqual([]);
  } finally {
    await deactivateTrigger(KEY, cdc);
  }
}, 120_000);

test('the same UPDATE as a server before the 2022 fix sends it (no old key tuple): CDC_KEY_NOT_SENT naming the table and column, not key {}', async () => {
  const { sql } = await toastedKeys(1);
  // The real server's pgoutput messages for the UPDATE, read from a slot of this test's own.
  await sql('CREATE PUBLICATION toast_pub FOR TABLE tk');
  await sql("SELECT pg_create_logical_replication_slot('toast_raw', 'pgoutput')");
  await sql('UPDATE tk SET v = 2');
  const rows = await sql("SELECT encode(data, 'base64') AS data FROM pg_logical_slot_get_binary_changes('toast_raw', NULL, NULL, 'proto_version', '1', 'publication_names', 'toast_pub')");
  const messages = rows.map((row) => decodePgOutput(Buffer.from(row.data as string, 'base64')));
  const updates = messages.filter((message) => message.tag === 'update');
  expect(updates.map((update) => update.oldKind)).toEqual(['key', null]); // the long key's old value comes in the old key tuple only; the short one is in the new row

  const feed = (strip: boolean) => {
    const assembler = new ChangeAssembler({ parserOf: () => undefined });
    const events: TriggerEvent[] = [];
    for (const message of messages) {
      const sent = strip && message.tag === 'update' ? { ...message, old: null, oldKind: null } : message;
      for (const item of assembler.feed(sent)) if (item.kind === 'change') events.push(item.event);
    }
    return events;
  };
  expect(feed(false).map(keyOf).sort()).toEqual((await sql('SELECT k FROM tk')).map((row) => row.k).sort());
  let error: unknown;
  try {
    feed(true);
  } catch (thrown) {
    error = thrown;
  }
  expect(error).toBeInstanceOf(PgActionsError);
  expect((error as PgActionsError).code).toBe('CDC_KEY_NOT_SENT');
  expect((error as PgActionsError).message).toMatch(/UPDATE of public\.tk .* without the value of its key column k/);
  expect((error as PgActionsError).fixes.join(' ')).toMatch(/REPLICA IDENTITY FULL/);
  await sql("SELECT pg_drop_replication_slot('toast_raw')");
});
