/**
 * table-changes-cdc writes bytea in hex whether polled (pgoutput decoded in a pooled session, which
 * has the database's bytea_output) or streamed (the walsender), on a database whose bytea_output is
 * 'escape' (REVIEW10 R167): a bytea inside a composite is delivered as its text, which 'escape'
 * wrote as `(ab,1)` instead of `("\\x6162",1)`.
 */
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerEvent, type TriggerSubscription } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
let subscription: TriggerSubscription | undefined;
const pg = useReplicationServer({ beforeStop: () => subscription?.close() });

test('polled and streamed bytea keys and values are in hex whatever the database bytea_output', async () => {
  await pg.sql('CREATE DATABASE escaped');
  await pg.sql(`ALTER DATABASE escaped SET bytea_output = 'escape'`);
  const connection = pg.config({ database: 'escaped' });
  await pg.sql('CREATE TYPE pair AS (b bytea, n int)', [], 'escaped');
  await pg.sql('CREATE TABLE blobs (k bytea PRIMARY KEY, p pair)', [], 'escaped');
  const request = { connection, config: { tables: ['blobs'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const start = await pollTrigger(KEY, request);
  await pg.sql(`INSERT INTO blobs VALUES ('\\x6162', ROW('\\x6162', 1))`, [], 'escaped');

  const ab = Buffer.from('ab').toString('base64');
  const polled = (await pollTrigger(KEY, { ...request, state: start.state })).events;
  expect(polled.map((e) => [e.key, e.new])).toEqual([[{ k: ab }, { k: ab, p: '("\\\\x6162",1)' }]]);
  const streamed: TriggerEvent[] = [];
  subscription = await subscribeTrigger(KEY, { ...request, state: start.state }, async (events) => void streamed.push(...events));
  await waitFor(() => streamed.length >= 1, 'the streamed INSERT');
  expect(streamed.map((e) => [e.id, e.key, e.new])).toEqual(polled.map((e) => [e.id, e.key, e.new]));
}, 120_000);
