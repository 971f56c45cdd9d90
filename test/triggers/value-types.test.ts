/**
 * table-sync and table-changes-cdc (polled and streamed) give every column the value Query Rows
 * gives it (REVIEW4 R35): a column typed by a domain (over boolean, numeric, jsonb, timestamptz,
 * int, an array, another domain five levels down) and arrays Query Rows parses after looking
 * their type up (enums, composites, ranges, domains) — not PostgreSQL's text, where `paid: "f"`
 * would be truthy. Each test has its own database: its own pool, so its own type look-ups.
 */
import { execute } from '../../connection/index.js';
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerEvent, type TriggerSubscription } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { poll, waitFor } from './helpers.js';

const pg = useReplicationServer();
let n = 0;
const opened: TriggerSubscription[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((subscription) => subscription.close()));
});

const SCHEMA = `
  CREATE DOMAIN flag AS boolean;
  CREATE DOMAIN amount AS numeric(12,2) CHECK (VALUE >= 0);
  CREATE DOMAIN doc AS jsonb;
  CREATE DOMAIN stamp AS timestamptz;
  CREATE DOMAIN qty AS int;
  CREATE DOMAIN qty2 AS qty; CREATE DOMAIN qty3 AS qty2; CREATE DOMAIN qty4 AS qty3; CREATE DOMAIN qty5 AS qty4;
  CREATE DOMAIN ints AS int[];
  CREATE TYPE mood AS ENUM ('ok', 'sad');
  CREATE TYPE pair AS (a int, b text);
  CREATE DOMAIN moods AS mood[];
  CREATE TABLE typed (id qty PRIMARY KEY, paid flag, total amount, meta doc, created stamp, deep qty5, nums ints,
    flags flag[], moods mood[], dmoods moods, pairs pair[], ranges numrange[], deep_arr qty5[], boxes box[], m mood, note text);
  ALTER TABLE typed REPLICA IDENTITY FULL;`;

const ROW = `'{"vip": true}', '2024-03-05 10:00:00+00', 7, '{1,2}', '{t,f}', '{ok,sad}', '{sad}', ARRAY['(2,z)'::pair],
  ARRAY['[1.5,2)'::numrange], '{3,4}', ARRAY[box '((1,1),(0,0))'], 'sad', 'x'`;

/** The row as Query Rows returns it: parsed, not PostgreSQL's text (pinned, so a regression of Query Rows shows too). */
function expected(id: number, paid: boolean, total: string) {
  return {
    id, paid, total, meta: { vip: true }, created: '2024-03-05T10:00:00Z', deep: 7, nums: [1, 2], flags: [true, false], moods: ['ok', 'sad'],
    dmoods: ['sad'], pairs: ['(2,z)'], ranges: ['[1.5,2)'], deep_arr: [3, 4], boxes: '{(1,1),(0,0)}', m: 'sad', note: 'x',
  };
}

async function setup() {
  const database = `types_${++n}`;
  await pg.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string) => pg.sql(text, [], database);
  await sql(SCHEMA);
  const connection = pg.config({ database });
  const queryRows = async (id: number) => (await execute(connection, { text: 'SELECT * FROM typed WHERE id = $1', values: [id], readOnly: true })).rows[0];
  return { connection, sql, queryRows };
}

/** A fresh database with table-changes-cdc activated on it: its request and starting state. */
async function cdcSetup() {
  const db = await setup();
  const request = { connection: db.connection, config: { tables: ['typed'], heartbeatSeconds: 0 } };
  await activateTrigger('table-changes-cdc', request);
  const { state } = await pollTrigger('table-changes-cdc', request);
  return { db, request, state };
}

test('table-sync: every column as Query Rows returns it', async () => {
  const db = await setup();
  await db.sql(`INSERT INTO typed VALUES (1, false, 12.50, ${ROW}), (2, true, 0, ${ROW})`);
  const { events } = await poll('table-sync', { connection: db.connection, config: { tables: ['typed'] } });
  expect(events.map((event) => event.new)).toEqual([await db.queryRows(1), await db.queryRows(2)]);
  expect(events.map((event) => event.new)).toEqual([expected(1, false, '12.50'), expected(2, true, '0.00')]);
  expect(events.map((event) => event.key)).toEqual([{ id: 1 }, { id: 2 }]);
}, 60_000);

test('table-changes-cdc polled: new, old and key as Query Rows returns them (types looked up at the first poll, cached after)', async () => {
  const { db, request, state: start } = await cdcSetup();
  let state = start;
  await db.sql(`INSERT INTO typed VALUES (1, false, 12.50, ${ROW})`);
  const first = await poll('table-changes-cdc', { ...request, state });
  // REPLICA IDENTITY FULL: every column is part of the key (parsed there too).
  expect(first.events.map((event) => [event.op, event.key, event.new])).toEqual([['INSERT', expected(1, false, '12.50'), expected(1, false, '12.50')]]);
  expect(first.events[0]!.new).toEqual(await db.queryRows(1));
  state = first.state;
  await db.sql('UPDATE typed SET paid = true, total = 3 WHERE id = 1');
  const second = await poll('table-changes-cdc', { ...request, state });
  expect(second.events.map((event) => [event.op, event.key, event.old, event.new])).toEqual([['UPDATE', expected(1, true, '3.00'), expected(1, false, '12.50'), expected(1, true, '3.00')]]);
  expect(second.events[0]!.new).toEqual(await db.queryRows(1));
}, 60_000);

test('table-changes-cdc streamed: new, old and key as Query Rows returns them', async () => {
  const { db, request, state } = await cdcSetup();
  const events: TriggerEvent[] = [];
  opened.push(await subscribeTrigger('table-changes-cdc', { ...request, state }, async (batch) => void events.push(...batch)));
  await db.sql(`INSERT INTO typed VALUES (1, false, 12.50, ${ROW})`);
  await waitFor(() => events.length >= 1, 'the streamed INSERT');
  const inserted = await db.queryRows(1);
  await db.sql('UPDATE typed SET paid = true, total = 3 WHERE id = 1');
  await waitFor(() => events.length >= 2, 'the streamed UPDATE');
  expect(events.map((event) => [event.op, event.key, event.old, event.new])).toEqual([
    ['INSERT', expected(1, false, '12.50'), undefined, expected(1, false, '12.50')],
    ['UPDATE', expected(1, true, '3.00'), expected(1, false, '12.50'), expected(1, true, '3.00')],
  ]);
  expect([events[0]!.new, events[1]!.new]).toEqual([inserted, await db.queryRows(1)]);
}, 60_000);
