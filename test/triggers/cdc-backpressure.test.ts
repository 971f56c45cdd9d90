/**
 * table-changes-cdc back-pressure for streamed transactions (PG14+ streams a transaction larger
 * than logical_decoding_work_mem, 64 kB here, while it runs; the subscription spools it to a
 * temporary file until its Stream Commit). With a slow handler and many committed streamed
 * transactions arriving, reading must pause as it does for ordinary ones: the spools waiting on
 * disk, the open file descriptors and the memory stay bounded (measured for real: the spool
 * directories this process left in the temporary directory, /proc/self/fd, RSS), nothing is lost,
 * the slot is acknowledged only past transactions the handler finished, and the paused connection
 * outlives wal_sender_timeout (5 s here).
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerState, type TriggerSubscription } from '../../triggers/index.js';
import { parseLsn } from '../../triggers/replication/lsn.js';
import { TransactionSpool } from '../../triggers/replication/spool.js';
import { smallDecodingMemory, useReplicationServer } from '../harness/replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
const TRANSACTIONS = 16;
const ROWS = 6000; // ~1.5 MB of pgoutput each: spilled past the spool's 1 MB memory
const BATCH = 1000;
let subscription: TriggerSubscription | undefined;
const server = useReplicationServer({ settings: { wal_sender_timeout: '5s' }, beforeStop: () => subscription?.close() });
beforeAll(() => smallDecodingMemory(server), 60_000);

/** This process's spool directories on disk (spool.ts names them after the pid). */
const spoolDirs = () => readdirSync(tmpdir()).filter((name) => name.startsWith(`pg-actions-cdc-${process.pid}-`)).length;
/** This process's open file descriptors, and those on a spool file. */
function descriptors(): { all: number; spools: number } {
  let all = 0;
  let spools = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let target = '';
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile (the listing's own fd)
    }
    all++;
    if (target.includes(`pg-actions-cdc-${process.pid}-`)) spools++;
  }
  return { all, spools };
}

test('a slow handler and many committed streamed transactions: reading pauses, spools, fds and memory stay bounded, nothing is lost, acks follow handling', async () => {
  await server.sql('CREATE DATABASE backpressure');
  const sql = (text: string, values?: unknown[]) => server.sql(text, values, 'backpressure');
  await sql('CREATE TABLE items (id int PRIMARY KEY, name text)');
  const request = { connection: server.config({ database: 'backpressure' }), config: { tables: ['items'], heartbeatSeconds: 0, batchSize: BATCH } };
  await activateTrigger(KEY, request);
  const { state } = await pollTrigger(KEY, request);
  const slot = (await sql("SELECT slot_name FROM pg_replication_slots WHERE database = 'backpressure'"))[0]!.slot_name as string;
  const confirmed = async () => parseLsn((await sql('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]))[0]!.lsn as string);

  const dirsBefore = spoolDirs();
  const fdsBefore = descriptors();
  const rssBefore = process.memoryUsage().rss;
  const peak = { dirs: 0, spoolFds: 0, fds: 0, rss: 0 };
  const sample = () => {
    const fds = descriptors();
    peak.dirs = Math.max(peak.dirs, spoolDirs() - dirsBefore);
    peak.spoolFds = Math.max(peak.spoolFds, fds.spools - fdsBefore.spools);
    peak.fds = Math.max(peak.fds, fds.all - fdsBefore.all);
    peak.rss = Math.max(peak.rss, process.memoryUsage().rss - rssBefore);
  };
  const sampler = setInterval(sample, 50);

  const keys: number[] = [];
  const lsns: string[] = [];
  const earlyAcks: string[] = [];
  const errors: unknown[] = [];
  subscription = await subscribeTrigger(KEY, { ...request, state: state as TriggerState, onError: (e: unknown) => void errors.push(e) } as never, async (events) => {
    // The transaction of this batch's first event is not finished: the slot must not be past its commit.
    const open = parseLsn(events[0]!.lsn as string);
    const at = await confirmed();
    if (at >= open) earlyAcks.push(`${events[0]!.lsn} acked at ${at.toString(16)}`);
    await new Promise((r) => setTimeout(r, 120)); // slow: the whole run outlasts wal_sender_timeout
    for (const event of events) {
      keys.push((event.key as { id: number }).id);
      lsns.push(event.lsn as string);
    }
  });
  for (let t = 0; t < TRANSACTIONS; t++) {
    await sql(`INSERT INTO items SELECT i, repeat('x', 200) || i FROM generate_series(${t * ROWS + 1}, ${(t + 1) * ROWS}) i`);
  }
  await waitFor(() => keys.length >= TRANSACTIONS * ROWS, 'every row of every transaction', 180_000);
  clearInterval(sampler);
  sample();

  // nothing lost, nothing twice, commit order, one commit LSN per transaction
  expect(keys).toEqual(Array.from({ length: TRANSACTIONS * ROWS }, (_, i) => i + 1));
  expect(new Set(lsns).size).toBe(TRANSACTIONS);
  expect(errors).toEqual([]); // paused for many seconds, the walsender did not drop the connection
  expect(earlyAcks).toEqual([]);
  if (server.versionNum >= 140000) {
    const streamed = Number((await sql('SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = $1', [slot]))[0]?.stream_txns ?? 0);
    expect(streamed).toBeGreaterThanOrEqual(TRANSACTIONS); // really the streamed path
  }
  // bounded: one spool replaying, one waiting, one being received — not one per committed transaction
  expect(peak.dirs).toBeLessThanOrEqual(3);
  expect(peak.spoolFds).toBeLessThanOrEqual(2);
  expect(peak.fds).toBeLessThanOrEqual(8);
  expect(peak.rss).toBeLessThan(64 * 1048576);
  // acknowledged once handled: the slot reaches the last transaction
  const last = parseLsn(lsns[lsns.length - 1]!);
  await waitFor(async () => (await confirmed()) > last, 'the ack of the last transaction');
  await subscription.close();
  subscription = undefined;
  await waitFor(() => spoolDirs() === dirsBefore, 'the spools removed');
  // eslint-disable-next-line no-console
  console.log(`back-pressure peaks: spool dirs ${peak.dirs}, spool fds ${peak.spoolFds}, fds +${peak.fds}, rss +${(peak.rss / 1048576).toFixed(1)} MB`);
}, 240_000);

test('a sealed spool (its transaction committed, waiting to be replayed) holds no descriptor and no memory, and replays whole', () => {
  const spool = new TransactionSpool(900, 4096);
  const record = (i: number) => Buffer.concat([Buffer.from('I'), Buffer.alloc(4, 0), Buffer.from(`row ${i} ${'z'.repeat(100)}`)]);
  try {
    for (let i = 0; i < 1000; i++) spool.append(900, record(i));
    expect(spool.spilled).toBe(true);
    expect(spool.changes).toBe(1000);
    expect(descriptors().spools).toBe(1); // still being written
    spool.seal();
    expect(descriptors().spools).toBe(0);
    expect(spool.inMemory).toBe(0);
    const back = [...spool.records()].map((r) => r.toString('latin1', 5));
    expect(back).toHaveLength(1000);
    expect(back[999]).toBe(`row 999 ${'z'.repeat(100)}`);
    expect(descriptors().spools).toBe(0); // opened to replay, closed after
    // abandoned half-way (the subscription closed): the descriptor is closed too
    for (const _ of spool.records()) break;
    expect(descriptors().spools).toBe(0);
  } finally {
    spool.dispose();
  }
  expect(spoolDirs()).toBe(0);
});
