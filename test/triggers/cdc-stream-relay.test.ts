/**
 * subscribeTrigger (table-changes-cdc, triggers/replication/stream.ts and connection/replication.ts) behind a relay that
 * rewrites the walsender's replies (test/harness/message-relay.ts), for what a quiet test server never sends:
 * - a primary keepalive in the middle of a transaction's output (a walsender whose socket is full while it writes a
 *   transaction sends one, WalSndWriteData → WalSndKeepaliveIfNecessary, with a position inside that transaction): it
 *   must neither hand the transaction's first changes early nor move the position inside the transaction;
 * - keepalives that report no position (their walEnd zeroed; a reply is still sent when asked, so the walsender does not
 *   time out): then a heartbeat message (pg_logical_emit_message, non-transactional, the heartbeat's prefix) alone moves
 *   a quiet slot's position, to the message's own end; a message with another prefix does not;
 * - an XLogData the pgoutput decoder cannot read (cut short): the stream fails with an error, the subscription
 *   reconnects from what it acknowledged, and the transaction comes whole, once; nothing is skipped.
 */
import { closeAll, type PgActionsError } from '../../connection/index.js';
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerState, type TriggerSubscription } from '../../triggers/index.js';
import { HEARTBEAT_PREFIX } from '../../triggers/replication/heartbeat.js';
import { formatLsn, parseLsn } from '../../triggers/replication/lsn.js';
import { cleanUpInOrder } from '../harness/clean-up.js';
import { startMessageRelay, type MessageHook, type MessageRelay } from '../harness/message-relay.js';
import type { ReplicationServer } from '../harness/replication-server.js';
import { sharedOrOwnReplicationServer } from '../harness/shared-replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
let server: ReplicationServer;
let starting: Promise<ReplicationServer> | undefined;
let relay: MessageRelay | undefined;
/** The hook of each connection the relay accepts from now on. */
let hookFor: () => MessageHook = () => () => undefined;
const opened: TriggerSubscription[] = [];
const closeOpened = async () => void (await Promise.all(opened.splice(0).map((s) => s.close())));
beforeAll(async () => {
  starting = sharedOrOwnReplicationServer({ wal_sender_timeout: '2s' }, 'cdcrelay');
  server = await starting;
  relay = await startMessageRelay({ host: server.config().host!, port: server.config().port! }, () => hookFor());
}, 180_000);
afterEach(closeOpened, 30_000);
afterAll(() => cleanUpInOrder(closeOpened, closeAll, () => relay?.close(), async () => (await starting?.catch(() => undefined))?.stop()), 60_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let n = 0;
const run = Date.now().toString(36);

/** CopyData → XLogData ('w', start, end, send time) → the pgoutput tag; a keepalive is 'k', end, send time, reply flag. */
const isXLogData = (message: Buffer, tag?: string) => message[0] === 0x64 && message[5] === 0x77 && (tag === undefined || message[30] === tag.charCodeAt(0));
const isKeepalive = (message: Buffer) => message[0] === 0x64 && message[5] === 0x6b;
function keepalive(walEnd: bigint): Buffer {
  const message = Buffer.alloc(1 + 4 + 1 + 8 + 8 + 1);
  message.write('d', 0);
  message.writeInt32BE(message.length - 1, 1);
  message.write('k', 5);
  message.writeBigUInt64BE(walEnd, 6);
  message.writeBigUInt64BE(0n, 14);
  return message;
}

/** A database with items(id) and the trigger activated, its connection through the relay; the state before anything was written. */
async function setup(batchSize = 10) {
  const database = `cdcrelay_${run}_${++n}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string, values?: unknown[]) => server.sql(text, values, database);
  await sql('CREATE TABLE items (id int PRIMARY KEY)');
  const request = { connection: { ...server.config({ database }), host: '127.0.0.1', port: relay!.port }, config: { tables: ['items'], heartbeatSeconds: 0, batchSize } };
  await activateTrigger(KEY, request);
  const { state } = await pollTrigger(KEY, request);
  return { sql, request, state };
}

/** A subscription recording each batch's ids, every position it reports (onState) and its errors. */
async function subscribe(db: Awaited<ReturnType<typeof setup>>, state: TriggerState = db.state) {
  const batches: string[][] = [];
  const positions: bigint[] = [];
  const errors: unknown[] = [];
  const subscription = await subscribeTrigger(
    KEY,
    { ...db.request, state, onState: (s) => void positions.push(parseLsn((s.position as { lsn: string }).lsn)), onError: (e) => void errors.push(e) },
    (events) => void batches.push(events.map((e) => String((e.key as { id: number }).id))),
  );
  opened.push(subscription);
  const position = () => parseLsn((subscription.state.position as { lsn: string }).lsn);
  return { batches, positions, errors, subscription, position };
}

/** A relay hook that adds, after the transaction's first Insert, a keepalive at the commit record's start; returns what gives that position. */
function keepaliveAfterFirstInsert(): () => bigint | undefined {
  let inside: bigint | undefined;
  let commitStart: bigint | undefined;
  hookFor = () => (message) => {
    if (isXLogData(message, 'B')) commitStart = message.readBigUInt64BE(31); // Begin's final LSN: where the commit record starts
    if (inside !== undefined || commitStart === undefined || !isXLogData(message, 'I')) return undefined;
    // What the walsender would report there: everything before the commit record was read (sentPtr).
    inside = commitStart;
    return { replace: Buffer.concat([message, keepalive(inside)]) };
  };
  return () => inside;
}

test('a keepalive in the middle of a transaction: the transaction is handed whole, and no position inside it is reported', async () => {
  const db = await setup();
  const start = parseLsn((db.state.position as { lsn: string }).lsn);
  const insideOf = keepaliveAfterFirstInsert();
  const c = await subscribe(db);
  await db.sql('INSERT INTO items SELECT generate_series(1, 3)');
  await waitFor(() => c.batches.flat().length >= 3 && c.positions.length > 0, 'the transaction handed');
  await sleep(300);
  const inside = insideOf();
  expect(inside).toBeGreaterThan(start);
  expect(c.batches).toEqual([['1', '2', '3']]);
  expect(c.positions.map(formatLsn)).not.toContain(formatLsn(inside!));
  expect(c.positions[0]!).toBeGreaterThan(inside!);
  expect(c.errors).toEqual([]);
}, 60_000);

// Batches of one change each: a position taken from the keepalive shows in the next batch's state, whatever the pump merges.
test('the same keepalive in a transaction larger than batchSize (1): its batches keep the position before it, none moves inside it', async () => {
  const db = await setup(1);
  const start = parseLsn((db.state.position as { lsn: string }).lsn);
  const insideOf = keepaliveAfterFirstInsert();
  const c = await subscribe(db);
  await db.sql('INSERT INTO items SELECT generate_series(1, 3)');
  await waitFor(() => c.batches.flat().length >= 3 && c.positions.length >= 3, 'the transaction handed');
  await sleep(300);
  const inside = insideOf()!;
  expect(inside).toBeGreaterThan(start);
  expect(c.batches).toEqual([['1'], ['2'], ['3']]);
  expect(c.positions.slice(0, 2)).toEqual([start, start]);
  expect(c.positions.map(formatLsn)).not.toContain(formatLsn(inside));
  expect(c.positions[2]!).toBeGreaterThan(inside);
  expect(c.errors).toEqual([]);
}, 60_000);

test('with keepalives that report no position, a heartbeat message alone moves a quiet slot to its end; a message with another prefix does not', async () => {
  const db = await setup();
  const start = parseLsn((db.state.position as { lsn: string }).lsn);
  let zeroed = 0;
  hookFor = () => (message) => {
    if (!isKeepalive(message)) return undefined;
    zeroed++;
    const replace = Buffer.from(message);
    replace.writeBigUInt64BE(0n, 6);
    return { replace };
  };
  const c = await subscribe(db);
  await db.sql("SELECT pg_logical_emit_message(false, 'someone-else', 'x')");
  await waitFor(() => zeroed > 0, 'a keepalive after the other message');
  await sleep(1500);
  expect(c.position()).toBe(start);
  expect(c.positions).toEqual([]);
  const [{ l }] = (await db.sql('SELECT pg_logical_emit_message(false, $1, $2)::text AS l', [HEARTBEAT_PREFIX, ''])) as [{ l: string }];
  const beat = parseLsn(l);
  await waitFor(() => c.position() === beat, "the position at the heartbeat's end");
  await sleep(500);
  expect(c.positions).toEqual([beat]);
  // A transaction still hands its changes with its own end, and a transactional message with the prefix inside it changes nothing.
  await db.sql(`BEGIN; INSERT INTO items VALUES (1); SELECT pg_logical_emit_message(true, '${HEARTBEAT_PREFIX}', ''); INSERT INTO items VALUES (2); COMMIT`);
  await waitFor(() => c.batches.flat().length >= 2, 'the transaction');
  await sleep(300);
  expect(c.batches).toEqual([['1', '2']]);
  expect(c.positions).toHaveLength(2);
  expect(c.positions[1]!).toBeGreaterThan(beat);
  expect(c.errors).toEqual([]);
}, 60_000);

test('an XLogData the decoder cannot read fails the stream; the subscription reconnects and the transaction comes whole, once', async () => {
  const db = await setup();
  let cut = 0;
  hookFor = () => (message) => {
    if (cut > 0 || !isXLogData(message, 'I')) return undefined;
    cut++;
    // The Insert without its tuple: tag, relation OID, 'N', then nothing (the column count is missing).
    const short = Buffer.from(message.subarray(0, 31 + 4 + 1));
    short.writeInt32BE(short.length - 1, 1);
    return { replace: short };
  };
  const c = await subscribe(db);
  await db.sql('INSERT INTO items SELECT generate_series(1, 3)');
  await waitFor(() => c.batches.flat().length >= 3, 'the transaction handed');
  await sleep(500);
  expect(cut).toBe(1);
  expect(c.batches).toEqual([['1', '2', '3']]);
  expect(c.errors.length).toBeGreaterThanOrEqual(1);
  expect(String((c.errors[0] as PgActionsError).message)).toMatch(/cut short/);
}, 60_000);
