/**
 * Push delivery for an outbox (row-changes; schema-changes with an event trigger). A LISTEN session (connection/listen.ts) is woken by the
 * trigger's NOTIFY and doubles as the lease: only the subscriber holding the session-level
 * advisory lock reads, so with several workers each change is handled by one of them; when the
 * holder dies its session ends, the server frees the lock and a standby takes over within
 * about a second. Reading always starts after the position acknowledged in the database, so a
 * new holder (or a reconnect) catches up with everything, in position order. A batch whose
 * handler fails is read again, with the same ids.
 */
import { openListenSession, type ListenSession } from '../connection/listen.js';
import { settleWithin } from './close-wait.js';
import type { Deliver, RunningSubscription } from './definition.js';
import { readOutbox, type OutboxKind, type OutboxPosition, type Settled } from './outbox-reader.js';
import { lockKey, namesOf } from './outbox-sql.js';

const STANDBY_RETRY_MS = 1000;
const RETRY_MAX_MS = 30_000;

export function subscribeOutbox<Event>(
  connection: unknown,
  fingerprint: string,
  config: Settled & { intervalSeconds: number },
  start: OutboxPosition,
  deliver: Deliver<Event, OutboxPosition>,
  onError: (error: unknown) => void,
  kind: OutboxKind<Event>,
): RunningSubscription {
  const names = namesOf(fingerprint, kind.prefix);
  const [lockClass, lockId] = lockKey(fingerprint);
  let after = start.after;
  let leader = false;
  let closed = false;
  let failures = 0;
  let wake: (() => void) | undefined;
  let nudged = false; // a NOTIFY that came while reading: read again instead of sleeping
  let timer: NodeJS.Timeout | undefined;
  const nudge = () => {
    nudged = true;
    wake?.();
  };
  const sleep = (ms: number): Promise<void> => {
    if (nudged) {
      nudged = false; // one nudge, one immediate wake-up
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
    }).finally(() => clearTimeout(timer));
  };

  const tryLead = async (session: ListenSession) => {
    const [row] = await session.query('SELECT pg_catalog.pg_try_advisory_lock($1::pg_catalog.int4, $2::pg_catalog.int4) AS held', [lockClass, lockId]);
    leader = row?.held === true;
  };
  const session = openListenSession(connection, {
    channels: [names.trigger],
    onNotification: nudge,
    onConnect: async (s) => {
      leader = false;
      await tryLead(s);
      nudge();
    },
    onDisconnect: (error) => {
      leader = false;
      onError(error);
      nudge();
    },
  });

  const loop = async () => {
    while (!closed) {
      if (!leader) {
        if (session.connected) await tryLead(session).catch(() => undefined);
        if (!leader) await sleep(STANDBY_RETRY_MS);
        continue;
      }
      try {
        nudged = false;
        const batch = await readOutbox(connection, fingerprint, config, after, true, kind);
        if (closed) return;
        if (batch.events.length === 0) {
          after = batch.position.after;
          failures = 0;
          await sleep(config.intervalSeconds * 1000);
          continue;
        }
        await deliver(batch);
        after = batch.position.after; // acknowledged in the database by the next read
        failures = 0;
      } catch (error) {
        if (closed) return;
        onError(error);
        await sleep(Math.min(RETRY_MAX_MS, 250 * 2 ** failures++));
      }
    }
  };
  const running = loop();
  return {
    async close() {
      closed = true;
      nudge();
      await settleWithin(running);
      // Acknowledge the last handled batch before the lease goes (the next holder starts after it);
      // a batch whose handler is still running is not acknowledged, so it is delivered again.
      if (leader) await readOutbox(connection, fingerprint, { ...config, batchSize: 1 }, after, true, kind).catch(() => undefined);
      await session.close();
    },
  };
}
