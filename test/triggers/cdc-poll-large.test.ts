/**
 * A polled table-changes-cdc behind one transaction larger than batchSize and than maxResultBytes
 * (REVIEW4 R39): PostgreSQL's peek ends only at the end of the transaction in which its row limit
 * is reached, so the poll once read the whole transaction (RESULT_TOO_LARGE at every poll, the slot
 * stuck). Now a poll stops after batchSize changes inside it, the state says where, and the next
 * poll goes on from there: every change once, in order, with the ids a subscription gives them.
 */
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerEvent, type TriggerState, type TriggerSubscription } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { poll, waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
/** 1 KB rows: ~12 MB of pgoutput rows, past the default 10 MB maxResultBytes (as 150,000 rows of 60 bytes are: .scratch/r64.mts), in fewer polls. */
const ROWS = 12_000;
let subscription: TriggerSubscription | undefined;
const pg = useReplicationServer({ beforeStop: () => subscription?.close() });

test(`a ${ROWS.toLocaleString('en')}-row transaction, then one more row, polled with the default config: every change once, in order, never RESULT_TOO_LARGE; a repeated poll gives the same events; the ids are the streamed ones`, async () => {
  await pg.sql('CREATE DATABASE bulk');
  const sql = (text: string) => pg.sql(text, [], 'bulk');
  await sql('CREATE TABLE big (id int PRIMARY KEY, note text)');
  await sql("ALTER TABLE big ALTER note SET STORAGE PLAIN"); // inline, never TOASTed: every change carries its 1 KB
  const request = { connection: pg.config({ database: 'bulk' }), config: { tables: ['big'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const start = (await pollTrigger(KEY, request)).state;
  // A second trigger (its own publication and slot) streams the same changes, for their ids.
  await sql('CREATE PUBLICATION big_streamed FOR TABLE big');
  const streamRequest = { ...request, config: { ...request.config, publication: 'big_streamed' } };
  await activateTrigger(KEY, streamRequest);
  const streamStart = (await pollTrigger(KEY, streamRequest)).state;
  await sql(`INSERT INTO big SELECT i, repeat('x', 1000) || i FROM generate_series(1, ${ROWS}) i`);
  await sql(`INSERT INTO big VALUES (0, 'after')`);
  // The transaction's pgoutput rows are more than maxResultBytes (10 MiB by default): read whole, a poll fails.
  const [{ bytes }] = await sql(`SELECT sum(length(data)) AS bytes FROM pg_logical_slot_peek_binary_changes(
      (SELECT slot_name FROM pg_replication_slots WHERE database = current_database() LIMIT 1), NULL, NULL,
      'proto_version', '1', 'publication_names', 'big_streamed')`) as [{ bytes: string }];
  expect(Number(bytes)).toBeGreaterThan(10 * 1048576);

  const ids: string[] = [];
  const keys: unknown[] = [];
  let state: TriggerState = start;
  let polls = 0;
  while (keys.at(-1) !== 0) {
    // The helper checks events against the schema and the state is plain JSON: on every tenth poll (the others as a host calls).
    const result = polls % 10 === 0 ? await poll(KEY, { ...request, state }) : await pollTrigger(KEY, { ...request, state });
    expect(result.events.length).toBeGreaterThan(0); // every poll moves on
    expect(result.events.length).toBeLessThanOrEqual(500); // batchSize's default
    if (polls === 3) {
      // A host that lost the state it got polls with the previous one again: the same events, ids and state.
      const again = await pollTrigger(KEY, { ...request, state });
      expect(again.events).toEqual(result.events);
      expect(again.state).toEqual(result.state);
    }
    for (const event of result.events) {
      ids.push(String(event.id));
      keys.push((event.key as { id: number }).id);
    }
    state = result.state;
    if (++polls > ROWS / 100) throw new Error(`no end after ${polls} polls`);
  }
  expect(keys).toEqual([...Array.from({ length: ROWS }, (_, i) => i + 1), 0]);
  const commit = ids[0]!.split(':')[0];
  expect(ids.slice(0, ROWS)).toEqual(Array.from({ length: ROWS }, (_, i) => `${commit}:${i}`));
  expect(new Set(ids).size).toBe(ROWS + 1);
  expect((await pollTrigger(KEY, { ...request, state })).events).toEqual([]);

  // The same changes streamed from the start carry the same ids.
  const streamed: TriggerEvent[] = [];
  subscription = await subscribeTrigger(KEY, { ...streamRequest, state: streamStart }, async (events) => void streamed.push(...events));
  await waitFor(() => streamed.length >= ROWS + 1, 'the streamed changes', 120_000);
  expect(streamed.map((event) => event.id)).toEqual(ids);
}, 300_000);
