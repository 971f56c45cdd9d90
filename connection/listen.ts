/**
 * A long-lived session of its own (not a pooled one) that LISTENs on channels and survives a
 * dropped connection or a server restart: it reconnects with exponential back-off and LISTENs
 * again, then tells its owner (who must catch up: NOTIFYs sent while disconnected are gone).
 * A heartbeat query finds a silently dead network. The session can also hold session-level
 * advisory locks (a lease that the server releases when the session dies).
 */
import pg from 'pg';
import { withDeadline } from './deadline.js';
import { PgActionsError, toPgActionsError } from './errors/index.js';
import { configOf, connect, failureContext } from './execute.js';
import { quoteIdentifier } from './identifiers.js';
import { holdPool, ReportingClient } from './pools.js';
import { jsonSafeTypes } from './types.js';

export interface ListenSession {
  /** True while connected and listening. */
  readonly connected: boolean;
  /**
   * Settles once the first LISTEN is in place (and onConnect has run), or the first attempt has
   * failed (reported to onDisconnect; the session keeps retrying). Never rejects.
   */
  readonly ready: Promise<void>;
  /** Runs one query on this session (e.g. pg_try_advisory_lock); fails when the session is down. */
  query(text: string, values?: readonly unknown[]): Promise<Record<string, unknown>[]>;
  /**
   * Stops reading from the server (back-pressure): notifications wait in the server's queue, which
   * is bounded (a NOTIFY fails in its sender when it is full), instead of in host memory. No
   * heartbeat runs while paused (its answer could not be read). Kept across reconnects.
   */
  pause(): void;
  resume(): void;
  /** Ends the session for good (no reconnect). */
  close(): Promise<void>;
}

export interface ListenOptions {
  channels: readonly string[];
  onNotification(channel: string, payload: string, senderPid: number): void;
  /** After every (re)connect, once LISTEN is in place. A failure here reconnects. */
  onConnect?(session: ListenSession): Promise<void> | void;
  /** The session was lost; a reconnect is scheduled. */
  onDisconnect?(error: PgActionsError): void;
  /** First retry delay and the cap of the exponential back-off. */
  backoff?: { initialMs: number; maxMs: number };
  /** A query every heartbeatMs proves the connection alive (0 = none). */
  heartbeatMs?: number;
}

const DEFAULT_BACKOFF = { initialMs: 200, maxMs: 10_000 };
const DEFAULT_HEARTBEAT_MS = 30_000;

export function openListenSession(connection: unknown, options: ListenOptions): ListenSession {
  const config = configOf(connection);
  if (config.pooler === 'transaction') {
    // A transaction-mode pooler hands each transaction to any server connection: LISTEN would stay
    // behind on a backend other clients then use, and a session advisory lock (the lease) would
    // be held by whichever backend ran it, so two subscribers could both "hold" it.
    throw new PgActionsError('INVALID_INPUT', {
      message: 'connection.pooler is "transaction": listening for notifications and holding a subscription lease need a server session of their own, which transaction pooling does not give',
      problems: ['connection.pooler must be "none" or "session" for listen and row-changes subscriptions'],
      fixes: ['Give this subscription a direct address of the server (pooler: "none") or a session-mode pooler address (pooler: "session"); polling triggers and actions can keep the transaction-mode address.'],
    });
  }
  const channels = options.channels.map((channel, i) => quoteIdentifier(channel, `channels[${i}]`));
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  let client: pg.Client | undefined;
  let live = false;
  let closed = false;
  let attempt = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let starting: Promise<void> = Promise.resolve();
  // While connected, the pool that made the connection (and its SSH tunnel, which carries it) stays open.
  let unhold: (() => void) | undefined;
  const release = () => {
    unhold?.();
    unhold = undefined;
  };

  let paused = false;
  const streamOf = (of: pg.Client) => (of as unknown as { connection: { stream: NodeJS.ReadableStream } }).connection.stream;

  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const session: ListenSession = {
    get connected() {
      return live;
    },
    ready,
    async query(text, values) {
      if (!client || !live) throw toPgActionsError(new Error('Connection terminated'), failureContext(config, 'statement'));
      try {
        return (await withDeadline(client.query(text, values as unknown[] | undefined), config.statementTimeoutMs + 1000)).rows;
      } catch (error) {
        throw toPgActionsError(error, { ...failureContext(config, 'statement'), query: text });
      }
    },
    pause() {
      paused = true;
      if (client && live) streamOf(client).pause();
    },
    resume() {
      paused = false;
      if (client && live) streamOf(client).resume();
    },
    async close() {
      closed = true;
      markReady();
      clearTimeout(retryTimer);
      clearInterval(heartbeat);
      live = false;
      await starting; // a connect under way ends its own client once it sees `closed`
      await client?.end().catch(() => undefined);
      release();
    },
  };

  function lost(this: pg.Client, error: unknown): void {
    if (client !== this) return; // an older client's late event
    live = false;
    clearInterval(heartbeat);
    client = undefined;
    this.end().catch(() => undefined);
    release();
    if (closed) return;
    options.onDisconnect?.(toPgActionsError(error ?? new Error('Connection terminated'), failureContext(config, 'statement')));
    markReady();
    const delay = Math.min(backoff.maxMs, backoff.initialMs * 2 ** attempt++);
    retryTimer = setTimeout(() => (starting = start()), delay * (0.75 + Math.random() / 2));
  }

  async function start(): Promise<void> {
    if (closed) return;
    let fresh: pg.Client | undefined;
    try {
      // The pooled path settles TLS (prefer/allow second attempts); the session uses what worked.
      const { managed, client: probe } = await connect(config);
      probe.release();
      if (closed) return;
      release();
      unhold = holdPool(managed);
      fresh = new ReportingClient({
        host: config.host, port: config.port, database: config.database, user: config.user, password: config.password,
        ssl: managed.ssl, application_name: config.applicationName, connectionTimeoutMillis: config.connectTimeoutMs,
        keepAlive: true, types: jsonSafeTypes, stream: managed.tunnel?.socket,
      });
      client = fresh;
      fresh.on('error', lost.bind(fresh));
      fresh.on('end', lost.bind(fresh, undefined));
      fresh.on('notification', (message) => options.onNotification(message.channel, message.payload ?? '', message.processId));
      await withDeadline(fresh.connect(), config.connectTimeoutMs + 1000);
      for (const channel of channels) await fresh.query(`LISTEN ${channel}`);
      if (closed || client !== fresh) {
        await fresh.end().catch(() => undefined);
        return;
      }
      live = true;
      const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
      if (heartbeatMs > 0) {
        const beating = fresh;
        heartbeat = setInterval(() => {
          if (paused) return;
          withDeadline(beating.query('SELECT 1'), config.connectTimeoutMs + 1000).catch((error) => lost.call(beating, error));
        }, heartbeatMs);
      }
      await options.onConnect?.(session);
      attempt = 0;
      if (paused && client === fresh) streamOf(fresh).pause();
      markReady();
    } catch (error) {
      if (fresh && client === fresh) lost.call(fresh, error);
      else if (!fresh && !closed) lost.call((client = new pg.Client()), error);
    }
  }

  starting = start();
  return session;
}
