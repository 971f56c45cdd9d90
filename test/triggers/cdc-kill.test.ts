/**
 * table-changes-cdc when its process dies: a worker process (test/triggers/children/subscriber.ts)
 * streams the slot, handles a small transaction and the first batch of a large one (streamed by
 * the server on PG14+: logical_decoding_work_mem is 64 kB here), receives the next batch and is
 * SIGKILLed before acknowledging it. A new process resumes from the slot: every event of the
 * unfinished transaction arrives again with the same ids, nothing already acknowledged comes back,
 * and confirmed_flush_lsn never reached the commit of the transaction the dead worker did not finish.
 */
import type { ChildProcess } from 'node:child_process';
import { activateTrigger } from '../../triggers/index.js';
import { parseLsn } from '../../triggers/replication/lsn.js';
import { smallDecodingMemory, useReplicationServer } from '../harness/replication-server.js';
import { waitFor } from './helpers.js';
import { subscriberProcess } from './subscriber-process.js';

const children: ChildProcess[] = [];
const server = useReplicationServer({
  settings: { wal_sender_timeout: '5s' },
  beforeStop: () => children.forEach((child) => child.kill('SIGKILL')),
});
beforeAll(() => smallDecodingMemory(server), 60_000);

/** A subscriber process that acknowledges `hangAfter` batches, then receives one more and never acknowledges it. */
const worker = (connection: object, config: object, hangAfter?: number) =>
  subscriberProcess({ key: 'table-changes-cdc', connection, config, mode: hangAfter === undefined ? 'ack' : 'hang', hangAfter }, children);

const lsnOf = (id: string) => parseLsn(id.split(':')[0]!);

test('a worker process killed between receiving and acknowledging: the next process gets the unfinished transaction again, same ids; the slot never reached its commit', async () => {
  await server.sql('CREATE DATABASE killed');
  const sql = (text: string) => server.sql(text, [], 'killed');
  await sql('CREATE TABLE items (id int PRIMARY KEY, note text)');
  const connection = server.config({ database: 'killed' });
  const config = { tables: ['items'], batchSize: 1000, heartbeatSeconds: 0 };
  await activateTrigger('table-changes-cdc', { connection, config });
  const slot = async () => (await sql("SELECT confirmed_flush_lsn::text AS lsn, active_pid FROM pg_replication_slots WHERE slot_name LIKE 'pg_actions_%'"))[0] as { lsn: string; active_pid: number | null };
  const initial = parseLsn((await slot()).lsn);

  const doomed = await worker(connection, config, 2); // acknowledges A and the first batch of B's 5000 rows, hangs on the second
  await sql("INSERT INTO items VALUES (-1, 'A: small, finished')");
  await waitFor(() => doomed.batches.length === 1, 'A in the doomed worker');
  await waitFor(async () => parseLsn((await slot()).lsn) > initial, 'A acknowledged');
  const afterA = parseLsn((await slot()).lsn);
  await sql("INSERT INTO items SELECT i, 'B: large, unfinished' FROM generate_series(1, 5000) i");
  await waitFor(() => doomed.batches.length === 3, 'two batches of B in the doomed worker', 30_000);
  const [a, b1, b2] = doomed.batches;
  expect(a!.keys).toEqual([-1]);
  expect([...b1!.keys, ...b2!.keys]).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
  const commitOfB = lsnOf(b1!.ids[0]!);
  // the first batch of B was handled, but B is not finished: the slot stays before B's commit (keepalives
  // may move it past A, over WAL holding no commit of these tables, never to B)
  for (let i = 0; i < 10; i++) {
    const now = parseLsn((await slot()).lsn);
    expect(now).toBeGreaterThanOrEqual(afterA);
    expect(now).toBeLessThan(commitOfB);
    await new Promise((r) => setTimeout(r, 200));
  }
  doomed.process.kill('SIGKILL');
  await waitFor(async () => (await slot()).active_pid === null, 'the dead worker\'s walsender to go');
  expect(parseLsn((await slot()).lsn)).toBeLessThan(commitOfB);

  const next = await worker(connection, config);
  await waitFor(() => next.batches.flatMap((x) => x.keys).length >= 5000, 'B again in the new process', 60_000);
  const again = next.batches.flatMap((x) => x.ids);
  expect(again).toHaveLength(5000); // A is not delivered again
  expect(again.slice(0, 2000)).toEqual([...b1!.ids, ...b2!.ids]);
  expect(next.batches.flatMap((x) => x.keys)).toEqual(Array.from({ length: 5000 }, (_, i) => i + 1));
  expect(new Set(again.map(lsnOf))).toEqual(new Set([commitOfB]));
  await waitFor(async () => parseLsn((await slot()).lsn) > commitOfB, 'B acknowledged by the new process');
  if (server.versionNum >= 140000) {
    const [stats] = await sql("SELECT stream_txns::int AS n FROM pg_stat_replication_slots WHERE slot_name LIKE 'pg_actions_%'");
    expect(stats!.n).toBeGreaterThanOrEqual(1); // B was streamed, both times
  }
}, 120_000);
