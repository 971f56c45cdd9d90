/**
 * table-changes-cdc writes timestamptz values in UTC whether polled (pgoutput decoded in a pooled
 * session, which has the database's TimeZone) or streamed (the walsender), on a database whose
 * TimeZone is not UTC (REVIEW9 R160): the same change has the same `key` and `new` either way,
 * and after a TimeZone change.
 */
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerEvent, type TriggerSubscription } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
let subscription: TriggerSubscription | undefined;
const pg = useReplicationServer({ beforeStop: () => subscription?.close() });

test('polled and streamed timestamptz keys and values are in UTC whatever the database TimeZone', async () => {
  await pg.sql('CREATE DATABASE zoned');
  await pg.sql(`ALTER DATABASE zoned SET TimeZone = 'Asia/Tokyo'`);
  const connection = pg.config({ database: 'zoned' });
  await pg.sql('CREATE TABLE stamped (at timestamptz PRIMARY KEY, during tstzrange, seen timestamptz[])', [], 'zoned');
  const request = { connection, config: { tables: ['stamped'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const start = await pollTrigger(KEY, request);
  await pg.sql(`INSERT INTO stamped VALUES ('2026-01-01 12:00:00+00', '[2026-01-01 12:00:00+00,2026-01-01 13:00:00+00)', ARRAY['2026-01-01 12:00:00+00'::timestamptz])`, [], 'zoned');

  const expected = { at: '2026-01-01T12:00:00Z', during: '["2026-01-01 12:00:00+00","2026-01-01 13:00:00+00")', seen: ['2026-01-01T12:00:00Z'] };
  const polled = (await pollTrigger(KEY, { ...request, state: start.state })).events;
  expect(polled.map((e) => [e.key, e.new])).toEqual([[{ at: expected.at }, expected]]);
  const streamed: TriggerEvent[] = [];
  subscription = await subscribeTrigger(KEY, { ...request, state: start.state }, async (events) => void streamed.push(...events));
  await waitFor(() => streamed.length >= 1, 'the streamed INSERT');
  expect(streamed.map((e) => [e.id, e.key, e.new])).toEqual(polled.map((e) => [e.id, e.key, e.new]));
}, 120_000);
