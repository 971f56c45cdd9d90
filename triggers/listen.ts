/**
 * Listen: each NOTIFY on a channel starts a flow. Push only (a NOTIFY is never stored), on a
 * session of its own that reconnects with back-off and LISTENs again after a dropped connection
 * or a server restart. Notifications arriving while the handler works are queued in memory (bounded:
 * past it the server keeps them) and handed over in batches; a batch whose handler throws is handed
 * over again after a back-off.
 */
import configSchema from '../schemas/triggers/listen.config.schema.json' with { type: 'json' };
import eventSchema from '../schemas/triggers/listen.event.schema.json' with { type: 'json' };
import { execute, PgActionsError, quoteIdentifier } from '../connection/index.js';
import { openListenSession } from '../connection/listen.js';
import { literal } from '../connection/replication-readiness/diagnose.js';
import type { ListenConfig, ListenEvent } from '../schemas/types.gen.js';
import { defineTrigger, type RunningSubscription } from './definition.js';
import { eventId } from './event-id.js';

const RETRY_MAX_MS = 30_000;
/** The listen subscription's bounds; changed only by tests (the server's queue is 8 GB by default: too large to fill in a test). */
export const listenLimits = {
  /** Events handed over together at most: a long backlog becomes many batches, not one huge one. */
  maxBatch: 1_000,
  /**
   * Past this many queued events (or payload characters) the session stops reading and the server
   * keeps the rest in its notification queue; reading resumes below half of both.
   */
  pauseAt: { events: 10_000, characters: 16 * 1024 * 1024 },
  /** While paused, how often the server's notification queue is read. */
  checkEveryMs: 5_000,
  /**
   * The share of the server's notification queue a paused subscriber may hold. The queue is shared
   * by the whole cluster and cannot be truncated past the slowest listener: full, it makes every
   * NOTIFY fail (row-changes' capture in users' writes too). Past it, reading resumes and the oldest
   * queued events are dropped (reported as LISTEN_BACKLOG_DROPPED): listen is not durable.
   */
  maxServerQueueUsage: 0.1,
};

let arrivals = 0;

function toEvent(config: ListenConfig, channel: string, text: string, senderPid: number): ListenEvent {
  const receivedAt = new Date().toISOString();
  let payload: ListenEvent['payload'] = text;
  if (config.parse !== 'text') {
    try {
      payload = JSON.parse(text) as ListenEvent['payload'];
    } catch {
      payload = text;
    }
  }
  return { id: eventId('listen', channel, senderPid, text, receivedAt, arrivals++), channel, payload, text, senderPid, receivedAt };
}

export const listen = defineTrigger<ListenConfig, ListenEvent, Record<string, never>>({
  key: 'listen',
  name: 'Listen',
  description:
    'Starts a flow for each NOTIFY on a channel (sent with NOTIFY channel, \'payload\' or SELECT pg_catalog.pg_notify(\'channel\', payload)). ' +
    'The payload arrives parsed when it is JSON. Fast and simple, but not durable: use Row Changes when no change may be missed.',
  config: configSchema,
  event: eventSchema,
  example: {
    setup: [],
    config: { channel: 'orders_changed' },
    event: {
      id: 'q0dV2oKJ3kU7iWc1s9Xl4A',
      channel: 'orders_changed',
      payload: { id: 42, status: 'paid' },
      text: '{"id": 42, "status": "paid"}',
      senderPid: 48213,
      receivedAt: '2026-01-15T10:30:00.123Z',
    },
  },
  guarantees: [
    'NOTIFYs sent while the subscriber is disconnected are gone: PostgreSQL delivers a notification only to sessions listening at that moment and keeps no history. After a dropped connection or a server restart the subscriber reconnects with back-off (0.2 s doubling to 10 s) and listens again, but what was sent in between is not replayed. For changes that must never be lost, use row-changes.',
    'subscribeTrigger resolves once LISTEN is in place (or the first attempt has failed, reported to onError): a NOTIFY sent after it resolves arrives. Through an SSH tunnel the session is a channel of the pool\'s SSH connection and reconnects through a new one when it drops.',
    'Needs a server session of its own: through a transaction-mode pooler (connection.pooler "transaction") LISTEN would stay on a server connection other clients then use, so it is refused (INVALID_INPUT); use a direct or session-mode address.',
    'A heartbeat query every 30 s finds a silently dead connection, so the subscriber does not stop listening without noticing.',
    'Notifications that arrive while the handler works are queued in memory and handed over in batches of at most 1,000, in arrival order; a batch whose handler throws is handed over again, first, after a back-off (0.25 s doubling to 30 s; while the process lives).',
    'Memory is bounded: past 10,000 queued notifications (or 16 MiB of payloads) the subscriber stops reading and the server keeps the rest in its notification queue until the handler catches up. That queue is shared by the whole cluster (8 GB by default, max_notify_queue_pages on PostgreSQL 17+) and, full, makes every NOTIFY fail, row-changes\' capture in users\' writes included; so once a paused subscriber holds 10 % of it (read every 5 s), it reads again and drops its oldest queued notifications, reported to onError as LISTEN_BACKLOG_DROPPED with their number. Listen is not durable: use row-changes where nothing may be lost.',
    'PostgreSQL merges identical payloads sent on one channel in one transaction, and a payload must be shorter than 8000 bytes (NOTIFY fails in the sender otherwise).',
    'Ids are a hash of channel, sender, payload and arrival: a host can deduplicate within a run, but the server never redelivers a notification.',
  ],
  privileges: [
    '-- LISTEN needs no privilege beyond CONNECT on the database:',
    'GRANT CONNECT ON DATABASE <database> TO <role>;',
  ],
  identity: ['channel'],
  installs: false,
  start: async (args) => {
    quoteIdentifier(args.config.channel, 'config.channel');
    return {};
  },
  subscribe(args, position, deliver, onError): RunningSubscription {
    quoteIdentifier(args.config.channel, 'config.channel');
    let queue: ListenEvent[] = [];
    let queuedCharacters = 0;
    let working = false;
    let failures = 0;
    let closed = false;
    let paused = false;
    // Reading again after the server's queue filled past its share: the oldest events over the bound are dropped.
    let shedding = false;
    let dropped = 0;
    let retry: NodeJS.Timeout | undefined;
    let serverCheck: NodeJS.Timeout | undefined;
    let dropReport: NodeJS.Timeout | undefined;
    const over = () => queue.length >= listenLimits.pauseAt.events || queuedCharacters >= listenLimits.pauseAt.characters;
    const under = () => queue.length <= listenLimits.pauseAt.events / 2 && queuedCharacters <= listenLimits.pauseAt.characters / 2;
    const reportDropped = (): void => {
      dropReport = undefined;
      if (dropped === 0) return;
      const count = dropped;
      dropped = 0;
      onError(
        new PgActionsError('LISTEN_BACKLOG_DROPPED', {
          message: `${count} notification(s) on channel ${args.config.channel} were dropped, the oldest first: the handler was failing or too slow, and holding them longer would fill the server's notification queue, which every session of the cluster needs for NOTIFY.`,
        }),
      );
    };
    const checkServerQueue = async (): Promise<void> => {
      serverCheck = undefined;
      if (!paused || closed) return;
      const used = await execute(args.connection, { text: 'SELECT pg_catalog.pg_notification_queue_usage() AS used', readOnly: true }).then(
        (result) => Number(result.rows[0]?.used),
        (error: unknown) => (onError(error), 0),
      );
      if (!paused || closed) return;
      if (used >= listenLimits.maxServerQueueUsage) {
        shedding = true;
        paused = false;
        session.resume();
      } else serverCheck = setTimeout(() => void checkServerQueue(), listenLimits.checkEveryMs);
    };
    const regulate = (): void => {
      if (shedding) {
        if (under()) shedding = false;
        else if (over()) {
          // Drop a tenth of the bound at once: not one shift() of a long array per arrival.
          const drop = queue.splice(0, Math.max(queue.length - listenLimits.pauseAt.events * 0.9, 1));
          for (const event of drop) queuedCharacters -= event.text.length;
          dropped += drop.length;
          dropReport ??= setTimeout(reportDropped, dropped === drop.length ? 0 : listenLimits.checkEveryMs);
        }
        return;
      }
      if (!paused && over()) {
        paused = true;
        session.pause();
        serverCheck ??= setTimeout(() => void checkServerQueue(), listenLimits.checkEveryMs);
      } else if (paused && under()) {
        paused = false;
        clearTimeout(serverCheck);
        serverCheck = undefined;
        session.resume();
      }
    };
    const drain = async (): Promise<void> => {
      // A failed batch waits for its back-off: a new arrival must not hand it over again at once.
      if (working || retry || closed || queue.length === 0) return;
      working = true;
      const batch = queue.slice(0, listenLimits.maxBatch);
      queue = queue.slice(batch.length);
      try {
        await deliver({ events: batch, position });
        failures = 0;
        for (const event of batch) queuedCharacters -= event.text.length;
        regulate();
      } catch (error) {
        queue = batch.concat(queue);
        onError(error);
        working = false;
        retry = setTimeout(() => {
          retry = undefined;
          void drain();
        }, Math.min(RETRY_MAX_MS, 250 * 2 ** failures++));
        return;
      }
      working = false;
      void drain();
    };
    const session = openListenSession(args.connection, {
      channels: [args.config.channel],
      onNotification: (channel, text, senderPid) => {
        queue.push(toEvent(args.config, channel, text, senderPid));
        queuedCharacters += text.length;
        regulate();
        void drain();
      },
      onDisconnect: onError,
    });
    return {
      // The host is told the subscription is running only once LISTEN is in place: a NOTIFY sent after that arrives.
      ready: session.ready,
      async close() {
        closed = true;
        clearTimeout(retry);
        clearTimeout(serverCheck);
        clearTimeout(dropReport);
        reportDropped();
        await session.close();
      },
    };
  },
  async sample(args) {
    quoteIdentifier(args.config.channel, 'config.channel');
    return {
      events: [],
      warnings: [],
      notes: [`NOTIFY keeps no history, so there is nothing to show yet: subscribe, then send one with SELECT pg_catalog.pg_notify(${literal(args.config.channel)}, '{"hello": "world"}');`],
    };
  },
});
