/**
 * table-changes-cdc values read the same whether polled (a pooled session) or streamed (a
 * replication connection, REVIEW4 R42), and the same as Query Rows, on a database whose
 * DateStyle and IntervalStyle defaults are not the ones the type parsers read.
 */
import { execute } from '../../connection/index.js';
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerEvent, type TriggerSubscription } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
let subscription: TriggerSubscription | undefined;
const pg = useReplicationServer({ beforeStop: () => subscription?.close() });

test('streamed, polled and queried values agree (ISO dates and timestamps, postgres intervals) whatever the database defaults', async () => {
  await pg.sql('CREATE DATABASE formats');
  await pg.sql(`ALTER DATABASE formats SET DateStyle = 'SQL, DMY'`);
  await pg.sql(`ALTER DATABASE formats SET IntervalStyle = 'sql_standard'`);
  const connection = pg.config({ database: 'formats' });
  await pg.sql('CREATE TABLE dated (id int PRIMARY KEY, d date, ts timestamptz, iv interval)', [], 'formats');
  const request = { connection, config: { tables: ['dated'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const start = await pollTrigger(KEY, request);
  await pg.sql(`INSERT INTO dated VALUES (1, '2024-03-05', '2024-03-05 10:00+00', '1 day 02:00')`, [], 'formats');

  const expected = { id: 1, d: '2024-03-05', ts: '2024-03-05T10:00:00Z', iv: '1 day 02:00:00' };
  expect((await execute(connection, { text: 'SELECT * FROM dated' })).rows).toEqual([expected]);
  expect((await pollTrigger(KEY, { ...request, state: start.state })).events.map((e) => e.new)).toEqual([expected]);
  const streamed: TriggerEvent[] = [];
  subscription = await subscribeTrigger(KEY, { ...request, state: start.state }, async (events) => void streamed.push(...events));
  await waitFor(() => streamed.length >= 1, 'the streamed INSERT');
  expect(streamed.map((e) => e.new)).toEqual([expected]);
}, 120_000);
