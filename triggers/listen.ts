/**
 * Listen: each NOTIFY on a channel starts a flow. Push only (a NOTIFY is never stored), on a
 * session of its own that reconnects with back-off and LISTENs again after a dropped connection
 * or a server restart. Notifications arriving while the handler works are queued in memory (bounded:
 * past it the server keeps them) and handed over in batches; a batch whose handler throws is handed
 * over again after a back-off.
 */
import configSchema from '../schemas/triggers/listen.config.schema.json' with { type: 'json' };
import eventSchema from '../schemas/triggers/listen.event.schema.json' with { type: 'json' };
import { quoteIdentifier } from '../connection/index.js';
import { openListenSession } from '../connection/listen.js';
import type { ListenConfig, ListenEvent } from '../schemas/types.gen.js';
import { defineTrigger, type RunningSubscription } from './definition.js';
import { eventId } from './event-id.js';

const RETRY_MAX_MS = 30_000;
/** Events handed over together at most: a long backlog becomes many batches, not one huge one. */
export const LISTEN_MAX_BATCH = 1_000;
/**
 * Past this many queued events (or payload characters), the session stops reading and the server
 * keeps the rest in its notification queue; reading resumes below half of both. Host memory stays
 * bounded whatever the senders do, and nothing is dropped.
 */
export const LISTEN_PAUSE_AT = { events: 10_000, characters: 16 * 1024 * 1024 };
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
    'Starts a flow for each NOTIFY on a channel (sent with NOTIFY channel, \'payload\' or SELECT pg_notify(\'channel\', payload)). ' +
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
    'Memory is bounded: past 10,000 queued notifications (or 16 MiB of payloads) the subscriber stops reading and the server keeps the rest in its notification queue until the handler catches up; nothing is dropped. That queue is bounded too (8 GB by default, max_notify_queue_pages on PostgreSQL 17+): when it is full, NOTIFY fails in the sender, and the server log names the listening session that lags (pg_notification_queue_usage() shows how full it is).',
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
    let retry: NodeJS.Timeout | undefined;
    const regulate = (): void => {
      const over = queue.length >= LISTEN_PAUSE_AT.events || queuedCharacters >= LISTEN_PAUSE_AT.characters;
      const under = queue.length <= LISTEN_PAUSE_AT.events / 2 && queuedCharacters <= LISTEN_PAUSE_AT.characters / 2;
      if (!paused && over) session.pause();
      else if (paused && under) session.resume();
      else return;
      paused = !paused;
    };
    const drain = async (): Promise<void> => {
      // A failed batch waits for its back-off: a new arrival must not hand it over again at once.
      if (working || retry || closed || queue.length === 0) return;
      working = true;
      const batch = queue.slice(0, LISTEN_MAX_BATCH);
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
        await session.close();
      },
    };
  },
  async sample(args) {
    quoteIdentifier(args.config.channel, 'config.channel');
    return {
      events: [],
      warnings: [],
      notes: [`NOTIFY keeps no history, so there is nothing to show yet: subscribe, then send one with SELECT pg_notify(${JSON.stringify(args.config.channel).replace(/^"|"$/g, "'")}, '{"hello": "world"}');`],
    };
  },
});
