/**
 * Replication connections (replication=database) for change data capture: replication commands
 * and the WAL stream of a logical slot (START_REPLICATION, CopyBoth). The stream reports only the
 * position its owner says is handled (`flushed()`), on every keepalive that asks for a reply and
 * on a timer, so a slow handler keeps the connection (wal_sender_timeout) without the server
 * forgetting anything unhandled. Reading can be paused (bounded memory); status updates still go out.
 */
import { FORMAT_OPTIONS } from './output-formats.js';
import type pg from 'pg';
import type { Connection, Submittable } from 'pg';
import { ConfiguredClient } from './configured-client.js';
import { withDeadline } from './deadline.js';
import { toPgActionsError, type PgActionsError } from './errors/index.js';
import { configOf, connect, failureContext } from './execute.js';
import { quoteIdentifier } from './identifiers.js';
import { holdPool } from './pools.js';
import { replicationThroughPooler } from './replication-readiness/pooler.js';
import { jsonSafeTypes } from './types.js';
import { filterWalFrames } from './wal-frames.js';

export interface WalStreamHandlers {
  /** XLogData: one pgoutput message (its WAL positions are not read: pgoutput carries the ones that matter). */
  onData(data: Buffer): void;
  /** A primary keepalive: everything up to walEnd has been sent. */
  onKeepalive(walEnd: bigint): void;
  /** The position to report as written and flushed: the end of what is fully handled. */
  flushed(): bigint;
}

export interface WalStream {
  /** Settles when the stream ends: rejects with a PgActionsError when it broke. */
  readonly done: Promise<void>;
  /** Sends a standby status update with flushed() now. */
  sendStatus(): void;
  pause(): void;
  resume(): void;
}

export interface StartReplication {
  slot: string;
  startLsn: string;
  /** pgoutput options, e.g. { proto_version: '1', publication_names: 'pub' }. */
  options: Record<string, string>;
  /** How often a status update is sent even when the server asks for none. */
  statusIntervalMs: number;
}

export interface ReplicationSession {
  /** A replication command (IDENTIFY_SYSTEM, SHOW …, CREATE_REPLICATION_SLOT …) and its rows. */
  command(text: string): Promise<Record<string, unknown>[]>;
  /** START_REPLICATION SLOT … LOGICAL …: the session streams until closed or broken. */
  stream(start: StartReplication, handlers: WalStreamHandlers): WalStream;
  close(): Promise<void>;
}

const PG_EPOCH_MS = 946_684_800_000n; // 2000-01-01T00:00:00Z

export async function openReplicationSession(connection: unknown): Promise<ReplicationSession> {
  const config = configOf(connection);
  if (config.pooler !== 'none') throw replicationThroughPooler(config.pooler);
  // The pooled path settles TLS (prefer/allow second attempts); the session uses what worked.
  const { managed, client: probe } = await connect(config);
  probe.release();
  // The pool's SSH tunnel (when there is one) carries this session: it stays open until the session closes.
  const unhold = holdPool(managed);
  // Never PGREPLICATION or PGPASSWORD from the host's environment: ConfiguredClient uses this and nothing else.
  const client = new ConfiguredClient({
    host: config.host, port: config.port, database: config.database, user: config.user, password: config.password,
    ssl: managed.ssl, application_name: config.applicationName, connectionTimeoutMillis: config.connectTimeoutMs,
    keepAlive: true, types: jsonSafeTypes, replication: 'database', stream: managed.tunnel?.socket,
    // The walsender formats the values it streams with the session's settings: the formats the type
    // parsers read, whatever the database's or role's defaults (REVIEW4 R42, REVIEW6 R111 for floats; pooled sessions get them in execute.ts).
    options: FORMAT_OPTIONS,
  } as pg.ClientConfig);
  client.on('error', () => {}); // reported through the running command or stream
  // Other applications' logical messages, of any size, are never held whole (REVIEW8 R151).
  filterWalFrames((client as unknown as { connection: object }).connection);
  try {
    await withDeadline(client.connect(), config.connectTimeoutMs + 1000);
  } catch (error) {
    client.end().catch(() => {});
    unhold();
    const failure = toPgActionsError(error, failureContext(config, 'connect'));
    // A pooler nobody declared: PgBouncer before 1.23 refuses the replication startup parameter.
    throw failure.code === 'POOLER_STARTUP_PARAMETER' && /replication/i.test(failure.message) ? replicationThroughPooler(config.pooler, failure) : failure;
  }
  const failure = (error: unknown, query?: string): PgActionsError => toPgActionsError(error, { ...failureContext(config, 'statement'), query });
  return {
    async command(text) {
      try {
        return (await client.query(text)).rows;
      } catch (error) {
        throw failure(error, text);
      }
    },
    stream(start, handlers) {
      const options = Object.entries(start.options).map(([name, value]) => `${quoteIdentifier(name)} '${value.replace(/'/g, "''")}'`);
      const text = `START_REPLICATION SLOT ${quoteIdentifier(start.slot, 'slot')} LOGICAL ${start.startLsn} (${options.join(', ')})`;
      const query = new WalStreamQuery(text, handlers, (error) => failure(error, text));
      client.query(query);
      const con = (client as unknown as { connection: { stream: NodeJS.ReadableStream; sendCopyFromChunk(chunk: Buffer): void } }).connection;
      const sendStatus = () => {
        if (!query.streaming) return;
        con.sendCopyFromChunk(statusUpdate(handlers.flushed()));
      };
      const timer = setInterval(sendStatus, start.statusIntervalMs);
      timer.unref();
      query.onKeepalive = (walEnd, replyRequested) => {
        handlers.onKeepalive(walEnd);
        if (replyRequested) sendStatus();
      };
      void query.done.finally(() => clearInterval(timer)).catch(() => {});
      return { done: query.done, sendStatus, pause: () => con.stream.pause(), resume: () => con.stream.resume() };
    },
    async close() {
      await client.end().catch(() => undefined);
      unhold();
    },
  };
}

/** A standby status update: written = flushed = applied = position, no reply requested. */
function statusUpdate(position: bigint): Buffer {
  const buffer = Buffer.alloc(34);
  buffer.write('r', 0);
  buffer.writeBigUInt64BE(position, 1);
  buffer.writeBigUInt64BE(position, 9);
  buffer.writeBigUInt64BE(position, 17);
  buffer.writeBigUInt64BE((BigInt(Date.now()) - PG_EPOCH_MS) * 1000n, 25);
  buffer.writeUInt8(0, 33);
  return buffer;
}

/** The START_REPLICATION command as a node-postgres Submittable: CopyBoth data goes to the handlers. */
class WalStreamQuery implements Submittable {
  readonly done: Promise<void>;
  streaming = false;
  /** Set by the first failure: nothing after it is handed on (the rest of a socket read would otherwise be, past the message that failed). */
  private failed = false;
  onKeepalive: (walEnd: bigint, replyRequested: boolean) => void = () => {};
  private resolve!: () => void;
  private reject!: (error: unknown) => void;

  constructor(
    private readonly text: string,
    private readonly handlers: WalStreamHandlers,
    private readonly failure: (error: unknown) => PgActionsError,
  ) {
    this.done = new Promise((resolve, reject) => ((this.resolve = resolve), (this.reject = reject)));
  }

  submit(connection: Connection): void {
    (connection as unknown as { query(text: string): void }).query(this.text);
  }

  handleCopyData(message: { chunk: Buffer }): void {
    if (this.failed) return;
    this.streaming = true;
    const chunk = message.chunk;
    try {
      if (chunk[0] === 0x77 /* w: XLogData */) this.handlers.onData(chunk.subarray(25));
      else if (chunk[0] === 0x6b /* k: keepalive */) this.onKeepalive(chunk.readBigUInt64BE(1), chunk[17] === 1);
    } catch (error) {
      this.handleError(error);
    }
  }

  handleError(error: unknown): void {
    this.failed = true;
    this.streaming = false;
    this.reject(this.failure(error));
  }

  handleReadyForQuery(): void {
    this.streaming = false;
    this.resolve();
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
}
