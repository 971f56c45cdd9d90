/**
 * table-changes-cdc with transactions larger than logical_decoding_work_mem (64 kB on this test
 * server): on PG14+ the server streams them while they run (pgoutput protocol 2) and the
 * subscription spools them until their Stream Commit. Each test compares with the same slot read
 * over SQL (protocol 1: the server sends the transaction whole at commit), so "the right ids" is
 * what the non-streamed path says, and checks pg_stat_replication_slots that the transaction was
 * really streamed. On older servers the same tests run without streaming (detected, not assumed).
 * The spool itself (memory, then a file, cut back at a subtransaction's abort) is tested alone.
 */
import pg from 'pg';
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerEvent, type TriggerState, type TriggerSubscription } from '../../triggers/index.js';
import { TransactionSpool } from '../../triggers/replication/spool.js';
import { smallDecodingMemory, useReplicationServer } from '../harness/replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
const server = useReplicationServer();
let n = 0;
const opened: TriggerSubscription[] = [];
const clients: pg.Client[] = [];

beforeAll(() => smallDecodingMemory(server), 60_000);
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
});

async function setup() {
  const database = `stream_${++n}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string, values?: unknown[]) => server.sql(text, values, database);
  await sql('CREATE TABLE items (id int PRIMARY KEY, name text); CREATE PUBLICATION reference FOR TABLE items');
  const connection = server.config({ database });
  const request = { connection, config: { tables: ['items'], heartbeatSeconds: 0, batchSize: 1000 } };
  await activateTrigger(KEY, request);
  const { state } = await pollTrigger(KEY, request);
  // A second slot over the same table, only ever read over SQL: the reference
  const referenceRequest = { connection, config: { tables: ['items'], publication: 'reference' } };
  await activateTrigger(KEY, referenceRequest);
  const { state: referenceState } = await pollTrigger(KEY, referenceRequest);
  const slot = (await sql('SELECT slot_name FROM pg_replication_slots WHERE database = current_database() AND active'))[0]?.slot_name as string | undefined;
  const stats = async (column: 'stream_txns' | 'stream_count') =>
    server.versionNum >= 140000 ? Number((await sql(`SELECT sum(${column}) AS n FROM pg_stat_replication_slots s JOIN pg_replication_slots r USING (slot_name) WHERE r.database = current_database()`))[0]!.n ?? 0) : 0;
  /** Transactions the walsender streamed (0 before PG14: no streaming; the SQL reads never stream). */
  const streamedCount = () => stats('stream_txns');
  /** Waits until the server streamed another block of changes (PG14+; elsewhere nothing to wait for). */
  const streamedMore = async (before: number) => {
    if (server.versionNum >= 140000) await waitFor(async () => (await stats('stream_count')) > before, 'the server to stream the open transaction');
  };
  const reference = () => peekAll(referenceRequest, referenceState);
  const session = async () => {
    const client = new pg.Client({ ...server.config({ database }), ssl: false });
    client.on('error', () => {});
    await client.connect();
    clients.push(client);
    return client;
  };
  void slot;
  return { sql, request, state, streamedCount, streamedMore, stats, reference, session };
}

async function subscribe(request: object, state: TriggerState) {
  const events: TriggerEvent[] = [];
  const errors: unknown[] = [];
  const subscription = await subscribeTrigger(KEY, { ...request, state, onError: (e: unknown) => void errors.push(e) } as never, async (batch) => {
    events.push(...batch);
  });
  opened.push(subscription);
  return { events, errors, subscription };
}

/** What the SQL interface (no streaming) says the slot holds after `state`: the reference ids. */
async function peekAll(request: object, state: TriggerState): Promise<TriggerEvent[]> {
  const all: TriggerEvent[] = [];
  for (let from = state; ;) {
    const batch = await pollTrigger(KEY, { ...request, state: from } as never);
    if (batch.events.length === 0) return all;
    all.push(...batch.events);
    from = batch.state;
    if (all.length > 1_000_000) throw new Error('runaway');
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const keys = (events: TriggerEvent[]) => events.map((e) => (e.key as { id: number }).id);
const streamingExpected = () => server.versionNum >= 140000;

test('a transaction bigger than logical_decoding_work_mem, interleaved with a small one: all of it, in commit order, with the ids the non-streamed read gives', async () => {
  const db = await setup();
  const c = await subscribe(db.request, db.state);
  const big = await db.session();
  await big.query('BEGIN');
  await big.query("INSERT INTO items SELECT i, 'row ' || i FROM generate_series(1, 15000) i");
  await db.sql("INSERT INTO items VALUES (-1, 'small, committed first')");
  await waitFor(() => c.events.length === 1, 'the small transaction while the big one runs');
  await big.query("INSERT INTO items SELECT i, 'row ' || i FROM generate_series(15001, 30000) i");
  await big.query('COMMIT');
  await waitFor(() => c.events.length === 30001, 'every row of the big transaction', 60_000);
  expect(keys(c.events)).toEqual([-1, ...range(1, 30000)]);
  const bigEvents = c.events.slice(1);
  expect(new Set(bigEvents.map((e) => e.lsn)).size).toBe(1);
  expect(bigEvents.map((e) => e.seq)).toEqual(range(0, 29999));
  expect(bigEvents[29999]).toMatchObject({ op: 'INSERT', new: { id: 30000, name: 'row 30000' } });
  const reference = await db.reference();
  expect(c.events.map((e) => e.id)).toEqual(reference.map((e) => e.id));
  expect(c.events).toEqual(reference);
  if (streamingExpected()) await waitFor(async () => (await db.streamedCount()) >= 1, 'the server to report the transaction as streamed');
  else expect(await db.streamedCount()).toBe(0);
  // acknowledged only once handled: the slot is at the big transaction's end
  const position = (c.subscription.state.position as { lsn: string }).lsn;
  await waitFor(async () => (await db.sql("SELECT 1 FROM pg_replication_slots WHERE confirmed_flush_lsn::text = $1 AND slot_name LIKE 'pg_actions_%'", [position])).length === 1, 'ack');
}, 120_000);

test('a streamed transaction that ends in ROLLBACK emits nothing', async () => {
  const db = await setup();
  const c = await subscribe(db.request, db.state);
  const open = await db.session();
  const before = await db.stats('stream_count');
  await open.query("BEGIN; INSERT INTO items SELECT i, 'never' FROM generate_series(1, 20000) i; UPDATE items SET name = 'still never'");
  await db.streamedMore(before); // the server sent it before knowing it would abort (PG18 skips transactions already aborted)
  await open.query('ROLLBACK');
  await db.sql("INSERT INTO items VALUES (-1, 'after')");
  await waitFor(() => c.events.length >= 1, 'the next transaction');
  await new Promise((r) => setTimeout(r, 300));
  expect(keys(c.events)).toEqual([-1]);
  expect(c.errors).toEqual([]);
  if (streamingExpected()) expect(await db.streamedCount()).toBeGreaterThanOrEqual(1);
}, 120_000);

test('aborted subtransactions inside a streamed transaction emit nothing; the rest arrives with the non-streamed ids', async () => {
  const db = await setup();
  const c = await subscribe(db.request, db.state);
  const open = await db.session();
  const rows = async (from: number, to: number) => {
    const before = await db.stats('stream_count');
    await open.query(`INSERT INTO items SELECT i, 'row ' || i FROM generate_series(${from}, ${to}) i`);
    await db.streamedMore(before); // streamed before the subtransaction's fate is known
  };
  await open.query('BEGIN');
  await rows(1, 5000);
  await open.query('SAVEPOINT a');
  await rows(5001, 10000);
  await open.query('ROLLBACK TO a');
  await rows(10001, 15000);
  await open.query('SAVEPOINT b');
  await rows(15001, 20000);
  await open.query('RELEASE b; SAVEPOINT c');
  await rows(20001, 25000);
  await open.query('SAVEPOINT d');
  await rows(25001, 30000);
  await open.query('RELEASE d; ROLLBACK TO c; SAVEPOINT e; SAVEPOINT f');
  await rows(30001, 35000);
  await open.query('RELEASE f');
  await rows(35001, 40000);
  await open.query('ROLLBACK TO e');
  await rows(40001, 42000);
  await open.query('COMMIT');
  const expected = [...range(1, 5000), ...range(10001, 20000), ...range(40001, 42000)];
  await waitFor(() => c.events.length >= expected.length, 'the committed rows', 60_000);
  await db.sql("INSERT INTO items VALUES (-1, 'after')");
  await waitFor(() => c.events.length >= expected.length + 1, 'the next transaction');
  expect(keys(c.events)).toEqual([...expected, -1]);
  expect(c.events.slice(0, -1).map((e) => e.seq)).toEqual(range(0, expected.length - 1));
  const reference = await db.reference();
  expect(c.events.map((e) => e.id)).toEqual(reference.map((e) => e.id));
  if (streamingExpected()) expect(await db.streamedCount()).toBeGreaterThanOrEqual(1);
}, 120_000);

describe('the spool of one streamed transaction', () => {
  const TOP = 700;
  /** A pgoutput message inside a stream block: tag, xid, payload. */
  const message = (tag: string, xid: number, payload: string) => {
    const body = Buffer.from(payload);
    const data = Buffer.alloc(5 + body.length);
    data.write(tag, 0);
    data.writeUInt32BE(xid, 1);
    body.copy(data, 5);
    return data;
  };
  const relation = (xid: number, oid: number, name: string) => {
    const data = Buffer.alloc(9 + name.length);
    data.write('R', 0);
    data.writeUInt32BE(xid, 1);
    data.writeUInt32BE(oid, 5);
    data.write(name, 9);
    return data;
  };
  const contents = (spool: TransactionSpool) => [...spool.records()].map((r) => r.toString('latin1', r[0] === 0x52 ? 9 : 5));

  for (const limit of [1 << 20, 64]) {
    test(`keeps messages in order, cuts back at a subtransaction's abort, keeps Relation messages (memory limit ${limit} bytes)`, () => {
      const spool = new TransactionSpool(TOP, limit);
      try {
        spool.append(TOP, relation(TOP, 1, 'rel1-v1'));
        spool.append(TOP, message('I', TOP, 'top-1'));
        spool.append(701, message('I', 701, 'sub701-1'));
        spool.append(701, relation(701, 2, 'rel2-v1'));
        spool.append(701, relation(701, 1, 'rel1-v2'));
        spool.append(702, message('I', 702, 'sub702-1'));
        spool.abortSubtransaction(999); // never streamed: nothing to cut
        spool.abortSubtransaction(701); // takes 702 (its child) with it
        spool.append(703, message('I', 703, 'sub703-1'));
        spool.abortSubtransaction(702); // already gone
        spool.append(TOP, message('I', TOP, 'top-2'));
        expect(contents(spool)).toEqual(['rel1-v1', 'top-1', 'rel2-v1', 'rel1-v2', 'sub703-1', 'top-2']);
        expect(spool.relationMessages().map((r) => r.toString('latin1', 9))).toEqual(['rel2-v1', 'rel1-v2']);
        expect(spool.spilled).toBe(limit === 64);
        expect(spool.inMemory).toBeLessThanOrEqual(Math.max(limit, 64));
      } finally {
        spool.dispose();
      }
    });
  }

  test('many megabytes stay out of memory and come back whole, records larger than a read included', () => {
    const spool = new TransactionSpool(TOP, 256 * 1024);
    try {
      const big = 'x'.repeat(3 * 1024 * 1024);
      for (let i = 0; i < 20_000; i++) spool.append(TOP, message('I', TOP, `row ${i} ${'y'.repeat(500)}`));
      spool.append(TOP, message('I', TOP, big));
      expect(spool.size).toBeGreaterThan(13_000_000);
      expect(spool.inMemory).toBeLessThan(256 * 1024);
      const back = contents(spool);
      expect(back).toHaveLength(20_001);
      expect(back[12345]).toBe(`row 12345 ${'y'.repeat(500)}`);
      expect(back[20_000]).toBe(big);
    } finally {
      spool.dispose();
    }
  });
});
