/**
 * table-changes-cdc pollTrigger, REVIEW4 R40: upto_nchanges counts the rows pgoutput writes, not
 * changes of the published tables. Logical messages anyone may emit (14+, no privilege needed) and,
 * before PG 15, the BEGIN/COMMIT of every transaction of the database are rows too: a poll that
 * peeked 500 rows covered ~250 unrelated transactions, so a busy database left the trigger behind
 * for good (20,000 messages: the next INSERT arrived at poll 41). A poll now moves past them.
 */
import pg from 'pg';
import { activateTrigger, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';

const KEY = 'table-changes-cdc';
let plain: pg.Client | undefined;
let n = 0;
const server = useReplicationServer({ beforeStop: () => plain?.end() });
beforeAll(() => server.sql("CREATE ROLE nobody LOGIN PASSWORD 'nobody'"), 60_000); // no grant at all

async function setup() {
  const database = `noise_${++n}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string, values?: unknown[]) => server.sql(text, values, database);
  await sql('CREATE TABLE items (id int PRIMARY KEY)');
  const request = { connection: server.config({ database }), config: { tables: ['items'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const { state } = await pollTrigger(KEY, request);
  await plain?.end();
  const { host, port } = server.config();
  plain = new pg.Client({ host, port, database, user: 'nobody', password: 'nobody', ssl: false });
  await plain.connect();
  return { sql, request, state: state as TriggerState };
}

/** Polls from `state` until an event arrives: how many polls it took, and the events. */
async function pollsUntilEvent(request: object, state: TriggerState): Promise<{ polls: number; ids: number[] }> {
  for (let polls = 1; polls <= 100; polls++) {
    const result = await pollTrigger(KEY, { ...request, state } as never);
    state = result.state as TriggerState;
    if (result.events.length) return { polls, ids: result.events.map((event) => (event.key as { id: number }).id) };
  }
  throw new Error('no event in 100 polls');
}

test("20,000 logical messages of a role with no privilege before the watched INSERT: it arrives at the first poll (was the 41st)", async () => {
  const { sql, request, state } = await setup();
  await plain!.query("SELECT count(pg_logical_emit_message(false, 'noise', '')) FROM generate_series(1, 20000)");
  await sql('INSERT INTO items VALUES (1)');
  expect(await pollsUntilEvent(request, state)).toEqual({ polls: 1, ids: [1] });
}, 60_000);

test('the same with large messages: a larger peek past maxResultBytes falls back to the one that fit, no error, the INSERT arrives within a few polls', async () => {
  const { sql, request, state } = await setup();
  // 20,000 × 1 kB: 20 MB, past the default 10 MB result cap if peeked at once
  await plain!.query("SELECT count(pg_logical_emit_message(false, 'noise', repeat('x', 1000))) FROM generate_series(1, 20000)");
  await sql('INSERT INTO items VALUES (1)');
  const { polls, ids } = await pollsUntilEvent(request, state);
  expect(ids).toEqual([1]);
  expect(polls).toBeLessThanOrEqual(8); // 4,000 rows a poll at least (was 500: 41 polls)
}, 60_000);

test('a poll still ends at whole transactions once batchSize changes are in: the rest comes next poll, in order', async () => {
  const { sql, request, state } = await setup();
  await plain!.query("SELECT count(pg_logical_emit_message(false, 'noise', '')) FROM generate_series(1, 100)");
  for (let i = 1; i <= 5; i++) await sql(`INSERT INTO items SELECT g FROM generate_series(${i * 10}, ${i * 10 + 2}) g`);
  const small = { ...request, config: { ...request.config, batchSize: 4 } };
  const first = await pollTrigger(KEY, { ...small, state } as never);
  expect(first.events.map((event) => (event.key as { id: number }).id)).toEqual([10, 11, 12, 20, 21, 22]);
  const second = await pollTrigger(KEY, { ...small, state: first.state } as never);
  expect(second.events.map((event) => (event.key as { id: number }).id)).toEqual([30, 31, 32, 40, 41, 42]);
}, 60_000);
