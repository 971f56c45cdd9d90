/**
 * subscribeTrigger for table-changes-cdc: streams the slot over a replication connection and
 * acknowledges only what the handler finished. The flush position reported to the server (on
 * keepalives that ask, on a timer, after each batch) is the end of the last transaction whose
 * events were handled — never a received-but-unhandled one, never backwards. A transaction larger
 * than a batch is handed over in batches that keep the previous position, so memory stays bounded
 * and a crash mid-transaction redelivers the whole transaction with the same ids. On PG14+ large
 * in-progress transactions are streamed by the server (protocol 2): they are spooled to bounded
 * memory and a temporary file (streamed.ts) and replayed in batches at their Stream Commit, so the
 * same rule holds and an aborted one emits nothing. A failed batch
 * (handler threw, connection lost, walsender terminated) reconnects from the acknowledged position;
 * a slot that is missing, lost or ahead of the state stops the subscription with a loud error.
 */
import { PgActionsError } from '../../connection/index.js';
import { openReplicationSession, type ReplicationSession, type WalStream } from '../../connection/replication.js';
import type { Deliver, RunningSubscription, TriggerArguments } from '../definition.js';
import { columnTypes } from '../../connection/column-types.js';
import { ChangeAssembler, parseLate, type ChangeEvent } from './changes.js';
import { formatLsn, parseLsn, type Lsn } from './lsn.js';
import { beat, HEARTBEAT_PREFIX, heartbeatMode, isHeartbeatChange } from './heartbeat.js';
import { ChunkQueue, type Chunk } from './chunk-queue.js';
import { decodePgOutput, uint32At } from './pgoutput.js';
import { StreamedTransactions } from './streamed.js';
import { assertSlotMatches, publicationName, slotInUse, slotName, slotState, type CdcConfig } from './slot.js';

export interface CdcPosition {
  /** The end of the last handled transaction (or heartbeat): where the stream resumes. */
  lsn: string;
  /**
   * pollTrigger only: it stopped inside the transaction after `lsn` (larger than batchSize, peek.ts):
   * its xid and commit LSN, its rows (after Begin, without Relation and Type messages) and changes
   * delivered. A subscription starts at `lsn` and delivers that transaction whole (same ids).
   */
  inside?: InsidePosition;
}

export interface InsidePosition {
  xid: number;
  lsn: string;
  rows: number;
  seq: number;
}

const FATAL = new Set(['REPLICATION_SLOT_MISSING', 'REPLICATION_SLOT_LOST', 'REPLICATION_SLOT_MISMATCH', 'REPLICATION_THROUGH_POOLER']);
const STATUS_INTERVAL_MS = 1000;
const RETRY_MAX_MS = 10_000;
const HIGH_WATER_BYTES = 64 * 1048576;

export function subscribeChanges(
  args: TriggerArguments<CdcConfig>,
  start: CdcPosition,
  deliver: Deliver<ChangeEvent, CdcPosition>,
  onError: (error: unknown) => void,
  /** keyText: keep each change's tuples as the server wrote them (a table-sync handover compares its keys). */
  options: { keyText?: boolean } = {},
): RunningSubscription {
  let acked = parseLsn(start.lsn);
  let closed = false;
  let session: ReplicationSession | undefined;
  let wake: (() => void) | undefined;
  let failures = 0;

  const runOnce = async () => {
    const slot = await slotState(args);
    assertSlotMatches(args, slot, acked);
    session = await openReplicationSession(args.connection);
    if (closed) return;
    await streamChanges(args, session, slot.serverVersion, acked, deliver, (lsn) => {
      acked = lsn > acked ? lsn : acked;
      failures = 0;
    }, () => closed, options.keyText === true);
  };

  const loop = async () => {
    while (!closed) {
      try {
        await runOnce();
      } catch (error) {
        if (closed) break;
        onError(slotInUse(args, error));
        if (error instanceof PgActionsError && FATAL.has(error.code)) break;
        await new Promise<void>((resolve) => ((wake = resolve), setTimeout(resolve, Math.min(RETRY_MAX_MS, 200 * 2 ** failures++))));
      } finally {
        await session?.close();
        session = undefined;
      }
    }
  };
  const running = loop();
  return {
    async close() {
      closed = true;
      wake?.();
      await session?.close();
      await running;
    },
  };
}

/** One replication connection's life: resolves when closed, rejects on the first failure. */
function streamChanges(
  args: TriggerArguments<CdcConfig>,
  session: ReplicationSession,
  serverVersion: number,
  from: Lsn,
  deliver: Deliver<ChangeEvent, CdcPosition>,
  onAcked: (lsn: Lsn) => void,
  isClosed: () => boolean,
  keyText: boolean,
): Promise<void> {
  const batchSize = args.config.batchSize ?? 500;
  const highWater = Math.max(2000, batchSize * 4);
  const messages = serverVersion >= 140000;
  const types = columnTypes(args.connection);
  const assembler = new ChangeAssembler(types, keyText);
  const streamed = new StreamedTransactions();
  const queue = new ChunkQueue();
  let pending: ChangeEvent[] = [];
  let pendingBytes = 0;
  let acked = from;
  let committed = from; // end of the last transaction received completely
  let pumping = false;
  let paused = false;
  let settled = false;
  let stream: WalStream | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let lastChange = 0; // when a change of the published tables last arrived

  return new Promise<void>((resolve, reject) => {
    const finish = () => {
      settled = true;
      clearInterval(heartbeat);
      streamed.dispose();
      for (const chunk of queue.drain()) chunk.replay?.stream.spool.dispose();
    };
    const fail = (error: unknown) => {
      finish();
      reject(error);
    };
    // Reading pauses while more than highWater changes (spooled ones included) or chunks, or
    // HIGH_WATER_BYTES of events wait: a slow handler holds at most a few spools (files, memory
    // tails), however many streamed transactions commit; position-only chunks fold into one.
    const over = (fraction: number) => queue.changes > highWater * fraction || queue.length > highWater * fraction || queue.bytes > HIGH_WATER_BYTES * fraction;
    const enqueue = (chunk: Chunk) => {
      queue.push(chunk);
      if (!paused && over(1)) {
        paused = true;
        stream?.pause();
      }
      void pump().catch(fail);
    };
    const flush = () => {
      enqueue({ events: pending, position: committed, bytes: pendingBytes });
      pending = [];
      pendingBytes = 0;
    };
    const release = (count: number) => {
      queue.release(count);
      if (paused && !over(0.5)) {
        paused = false;
        stream?.resume();
      }
    };
    const hand = async (events: ChangeEvent[], position: Lsn) => {
      if (events.length === 0 && position <= acked) return;
      await parseLate(events, types); // values of types the stream met before they were looked up
      await deliver({ events, position: { lsn: formatLsn(position > acked ? position : acked) } });
      if (position > acked) {
        acked = position;
        onAcked(acked);
        stream?.sendStatus();
      }
    };
    /** A streamed transaction, in batches from its spool: the position moves only with the last one. */
    const replay = async ({ stream: committedStream, assembler: replayer }: NonNullable<Chunk['replay']>, position: Lsn) => {
      const { spool, xid, commitLsn, commitTime } = committedStream;
      let weight = spool.changes;
      try {
        replayer.feed({ tag: 'begin', finalLsn: commitLsn, commitTime, xid });
        let events: ChangeEvent[] = [];
        for (const block of spool.blocks()) {
          const text = block.toString('latin1'); // one string per block: short values are cut from it
          for (let at = 0; at < block.length; at += 4 + uint32At(block, at)) {
            for (const item of replayer.feed(decodePgOutput(block, true, at + 4, text))) if (item.kind === 'change' && !isHeartbeatChange(item.event)) events.push(item.event);
            if (events.length >= batchSize) {
              await hand(events, acked);
              const count = Math.min(weight, events.length);
              weight -= count;
              release(count);
              events = [];
              if (isClosed() || settled) return;
            }
          }
        }
        await hand(events, position);
      } finally {
        spool.dispose();
        release(weight);
      }
    };
    const pump = async () => {
      if (pumping) return;
      pumping = true;
      try {
        while (queue.length && !isClosed() && !settled) {
          const first = queue.take()!;
          if (first.replay) {
            await replay(first.replay, first.position);
            continue;
          }
          const events = [...first.events];
          let position = first.position;
          for (let next = queue.peek(); next && !next.replay && events.length + next.events.length <= batchSize; next = queue.peek()) {
            queue.take();
            events.push(...next.events);
            position = next.position;
          }
          await hand(events, position);
          release(events.length);
        }
      } finally {
        pumping = false;
      }
    };

    stream = session.stream(
      {
        slot: slotName(args),
        startLsn: formatLsn(from),
        // PG14+: protocol 2 streams large in-progress transactions instead of spilling them on the server.
        options: { proto_version: messages ? '2' : '1', publication_names: publicationName(args), ...(messages ? { messages: 'true', streaming: 'on' } : {}) },
        statusIntervalMs: STATUS_INTERVAL_MS,
      },
      {
        onData(data) {
          if (streamed.owns(data)) {
            const done = streamed.take(data);
            if (!done) return;
            lastChange = Date.now();
            // The server counts the transaction's Relation messages as sent: later transactions rely on them.
            const replayer = assembler.fork();
            for (const relation of done.spool.relationMessages()) assembler.feed(decodePgOutput(relation, true));
            committed = done.endLsn;
            enqueue({ events: [], position: committed, bytes: 0, replay: { stream: done, assembler: replayer } });
            return;
          }
          for (const item of assembler.feed(decodePgOutput(data))) {
            if (item.kind === 'change') {
              if (isHeartbeatChange(item.event)) continue; // its commit still moves the position
              lastChange = Date.now();
              pending.push(item.event);
              pendingBytes += data.length;
              if (pending.length >= batchSize) flush();
            } else if (item.kind === 'commit') {
              committed = item.endLsn;
              flush();
            } else if (item.kind === 'message' && item.prefix === HEARTBEAT_PREFIX && !item.transactional && !assembler.inTransaction && item.lsn > committed) {
              committed = item.lsn; // a heartbeat between transactions: nothing before it is unsent (others' messages wait for a keepalive)
              flush();
            }
          }
        },
        onKeepalive(walEnd) {
          // Everything up to walEnd was sent and, outside a transaction, received: a quiet slot moves on.
          if (!assembler.inTransaction && walEnd > committed) {
            committed = walEnd;
            flush();
          }
        },
        flushed: () => acked,
      },
    );
    stream.done.then(() => {
      finish();
      resolve();
    }, fail);
    const seconds = args.config.heartbeatSeconds ?? 30;
    if (seconds > 0) {
      const mode = heartbeatMode(args.config, serverVersion);
      heartbeat = setInterval(() => {
        if (Date.now() - lastChange < seconds * 1000) return; // the tables are busy: their own commits move the position
        beat(args, mode).catch(() => undefined);
      }, seconds * 1000);
      heartbeat.unref();
    }
  });
}
