/**
 * One pg.Pool per distinct configuration, reused across steps. A pool that has not been used
 * for a while is closed; closeAll() ends everything for shutdown. Connection attempts follow
 * the libpq SSL plan, including the second attempt of `allow` and `prefer`.
 */
import { PARSED_FORMATS } from './output-formats.js';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { MAX_RESULT_BYTES, type ResolvedConfig } from './config.js';
import { ConfiguredClient } from './configured-client.js';
import { abandonWaiters, PoolReplaced, redirectWaiters, waitForClient } from './pool-wait.js';
import { installGate } from './result-gate.js';
import { poolerErrorCode } from './errors/pooler.js';
import { SshTunnel } from './ssh-tunnel.js';
import { settleTails, tailEnded } from './step-tail.js';
import { sslPlan, type SslSetting } from './tls.js';
import { jsonSafeTypes } from './types.js';

export interface ManagedPool {
  readonly config: ResolvedConfig;
  /** The SSL setting connections are made with now (the plan's first, or its fallback). */
  ssl: SslSetting;
  pool: pg.Pool;
  lastUsed: number;
  /** The pool's SSH connection when the configuration has sshTunnel; closed with the pool. */
  readonly tunnel?: SshTunnel;
  /** Long-lived sessions (listen, replication) made with this pool's settings and tunnel: while any is open the pool is not swept. */
  holds: number;
}

/** Connections per pool, read when a pool is made: changed only by bench/ (a pool of one shows what a step keeps its connection busy). */
export const poolSizing = { size: 10 };
/** How long a step waits for a connection finishing a tail before opening a new one. */
const TAIL_WAIT_MS = 50;
const IDLE_CLIENT_MS = 30_000;
const IDLE_POOL_MS = 5 * 60_000;
const pools = new Map<string, ManagedPool>();
let sweeper: NodeJS.Timeout | undefined;

const keys = new WeakMap<ResolvedConfig, string>();

/**
 * What makes two configurations the same pool, in a fixed order: a connection string, separate
 * fields, keys in another order or defaults written out all give one key. Host names are
 * case-insensitive.
 */
const POOL_IDENTITY = [
  'host', 'port', 'database', 'user', 'password', 'sslMode', 'sslCa', 'sslCert', 'sslKey', 'applicationName',
  'connectTimeoutMs', 'statementTimeoutMs', 'maxResultBytes', 'pooler', 'sshTunnel',
] as const;

/** Equal configurations share a pool; hashed once per resolved configuration object. */
function keyOf(config: ResolvedConfig): string {
  let key = keys.get(config);
  if (key === undefined) {
    const identity = POOL_IDENTITY.map((field) => (field === 'host' ? config.host.toLowerCase() : (config as unknown as Record<string, unknown>)[field] ?? null));
    key = createHash('sha256').update(JSON.stringify(identity)).digest('base64url');
    keys.set(config, key);
  }
  return key;
}

/**
 * A pg.Client that remembers the settings the server reports (ParameterStatus), from the
 * startup packet on. Results are parsed as ISO dates and postgres-style intervals, which a
 * server, database or role default (ALTER DATABASE … SET DateStyle) can change.
 */
export class ReportingClient extends ConfiguredClient {
  readonly reported = new Map<string, string>();
  /** From the last ReadyForQuery: 'I' idle, 'T' inside a transaction block, 'E' in a failed one. */
  transactionStatus = 'I';

  constructor(config?: pg.ClientConfig) {
    super(config);
    // A checked-out client that loses its server emits 'error'; the running statement reports it.
    this.on('error', () => {});
    // Rows are charged against the cap before the parser reads them; nothing can pass the schema's ceiling.
    installGate(this.connection, MAX_RESULT_BYTES);
    // Attached before pg's own listeners, so the status is current when a query hears it is done.
    const connection = this.connection as unknown as NodeJS.EventEmitter;
    connection.on('parameterStatus', (message: { parameterName: string; parameterValue: string }) => {
      this.reported.set(message.parameterName, message.parameterValue);
    });
    connection.on('readyForQuery', (message: { status: string }) => {
      this.transactionStatus = message.status;
    });
    this.once('end', () => closing.delete(this));
  }

  // The pool ends a discarded client without waiting; closeAll() waits for it.
  override end(): Promise<void>;
  override end(callback: (error: Error) => void): void;
  override end(callback?: (error: Error) => void): Promise<void> | void {
    if (!this.ended) closing.add(this);
    return callback ? super.end(callback) : super.end();
  }

  private get ended(): boolean {
    return (this as unknown as { _ended?: boolean })._ended === true;
  }
}

/** Clients asked to end (a discarded session) whose connection has not closed yet. */
const closing = new Set<ReportingClient>();

/** Resolves when every discarded session's connection has closed (or after `timeoutMs`). */
function closingDone(timeoutMs: number): Promise<void> {
  const ends = [...closing].map((client) => new Promise<void>((resolve) => client.once('end', () => resolve())));
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs).unref()));
  return Promise.race([Promise.all(ends).then(() => undefined), limit]).finally(() => clearTimeout(timer));
}

/** The session's transaction state after the last statement ('I' when the client cannot tell). */
export function transactionStatus(client: pg.PoolClient): string {
  return (client as unknown as Partial<ReportingClient>).transactionStatus ?? 'I';
}

/**
 * The transaction state once the server's ReadyForQuery for the last statement has arrived. pg
 * rejects a failed query at its ErrorResponse; the ReadyForQuery that says 'E' (or 'I') may come in
 * a later read, so transactionStatus() read right after a rejection can still say 'T'.
 */
export function settledTransactionStatus(client: pg.PoolClient): Promise<string> {
  const state = client as unknown as { readyForQuery?: boolean; connection?: NodeJS.EventEmitter };
  const connection = state.connection;
  if (state.readyForQuery !== false || connection === undefined) return Promise.resolve(transactionStatus(client));
  return new Promise((resolve) => {
    const done = (): void => {
      connection.off('readyForQuery', done);
      connection.off('end', done);
      resolve(transactionStatus(client));
    };
    // Added after the constructor's listener, so the status is already the new one here.
    connection.on('readyForQuery', done);
    connection.once('end', done);
  });
}

/** The SETs that restore the output formats the type parsers read (none when the session has them). */
/** Every output-format SET outputFormatFixes() may ask for. */
export const OUTPUT_FORMAT_FIXES = {
  DateStyle: `SET DateStyle TO ${PARSED_FORMATS.DateStyle}`,
  IntervalStyle: `SET IntervalStyle TO ${PARSED_FORMATS.IntervalStyle}`,
  // Templates in SQL are read (templating/) with backslashes as plain characters in '…'.
  standardConformingStrings: 'SET standard_conforming_strings TO on',
} as const;

export function outputFormatFixes(client: pg.PoolClient): string[] {
  const reported = (client as unknown as Partial<ReportingClient>).reported;
  const fixes: string[] = [];
  const dateStyle = reported?.get('DateStyle');
  if (dateStyle !== undefined && !dateStyle.startsWith('ISO')) fixes.push(OUTPUT_FORMAT_FIXES.DateStyle);
  const intervalStyle = reported?.get('IntervalStyle');
  if (intervalStyle !== undefined && intervalStyle !== PARSED_FORMATS.IntervalStyle) fixes.push(OUTPUT_FORMAT_FIXES.IntervalStyle);
  if (reported?.get('standard_conforming_strings') === 'off') fixes.push(OUTPUT_FORMAT_FIXES.standardConformingStrings);
  return fixes;
}

function createPool(config: ResolvedConfig, ssl: SslSetting, tunnel: SshTunnel | undefined): pg.Pool {
  const pool = new pg.Pool({
    Client: ReportingClient,
    stream: tunnel?.socket,
    host: config.host,
    port: config.port,
    database: config.database,
    user: config.user,
    password: config.password,
    ssl,
    application_name: config.applicationName,
    connectionTimeoutMillis: config.connectTimeoutMs,
    keepAlive: true,
    max: poolSizing.size,
    idleTimeoutMillis: IDLE_CLIENT_MS,
    // Session pooling gives each client connection its own server connection until it closes: an
    // idle pooled client would hold one, so each checkout gets a fresh pooler connection.
    maxUses: config.pooler === 'session' ? 1 : undefined,
    types: jsonSafeTypes,
  });
  // An idle client whose server went away: the pool drops it; the next step connects anew.
  pool.on('error', () => {});
  return pool;
}

export function poolFor(config: ResolvedConfig): ManagedPool {
  const key = keyOf(config);
  let managed = pools.get(key);
  if (!managed) {
    const ssl = sslPlan(config).first;
    const tunnel = config.sshTunnel && new SshTunnel(config.sshTunnel, config.connectTimeoutMs);
    managed = { config, ssl, pool: createPool(config, ssl, tunnel), lastUsed: Date.now(), tunnel, holds: 0 };
    pools.set(key, managed);
    sweeper ??= setInterval(() => closeIdlePools(), 60_000).unref();
  }
  managed.lastUsed = Date.now();
  return managed;
}

/** Checks out a client, making libpq's second attempt (allow: TLS; prefer: plaintext) when it applies. */
export async function checkout(managed: ManagedPool, waitMs: number): Promise<pg.PoolClient> {
  const pool = managed.pool;
  const startedAt = performance.now();
  const remaining = () => waitMs - (performance.now() - startedAt);
  // No idle connection, but a step's tail is finishing on one: take that one when it comes back
  // (well under a millisecond) rather than open another (step-tail.ts).
  const tail = pool.idleCount === 0 ? tailEnded(pool, Math.min(waitMs, TAIL_WAIT_MS)) : undefined;
  if (tail) await tail;
  try {
    return await waitForClient(pool, waitMs, sizeOf(pool));
  } catch (error) {
    // A concurrent first step already made the second attempt and switched the pool: use it.
    if (managed.pool !== pool || error instanceof PoolReplaced) return await waitForClient(managed.pool, remaining(), sizeOf(managed.pool));
    const fallback = sslPlan(managed.config).fallback;
    // Two attempts at most: a pool already on the fallback's side (TLS or plaintext) is not switched
    // again. (sslPlan makes new TLS options each call, so the setting itself cannot be compared.)
    const onFallback = fallback && (managed.ssl === false) === (fallback.setting === false);
    if (!fallback || onFallback || !fallbackApplies(fallback.when, error)) throw error;
    managed.ssl = fallback.setting;
    managed.pool = createPool(managed.config, fallback.setting, managed.tunnel);
    redirectWaiters(pool);
    void pool.end().catch(() => {});
    return await waitForClient(managed.pool, remaining(), sizeOf(managed.pool));
  }
}

function sizeOf(pool: pg.Pool): number {
  return pool.options.max ?? poolSizing.size;
}

function fallbackApplies(when: 'server-refuses-tls' | 'server-rejects-plaintext', error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  if (when === 'server-refuses-tls') return message === 'The server does not support SSL connections';
  // pg_hba.conf or authentication said no, or a pooler that requires TLS (PgBouncer's "SSL required").
  return typeof code === 'string' && (code.startsWith('28') || poolerErrorCode(code, message ?? '') === 'SSL_REQUIRED');
}

/**
 * Keeps the pool (and so its SSH connection, which a listen or replication session's own
 * connection runs through) from being swept while the session is open; call the result once
 * the session has ended.
 */
export function holdPool(managed: ManagedPool): () => void {
  managed.holds++;
  let held = true;
  return () => {
    if (held) managed.holds--;
    held = false;
  };
}

/** Closes the pools unused since IDLE_POOL_MS before `now` (exported for tests). */
export function closeIdlePools(now = Date.now()): void {
  const cutoff = now - IDLE_POOL_MS;
  for (const [key, managed] of pools) {
    if (managed.lastUsed < cutoff && managed.holds === 0 && managed.pool.idleCount === managed.pool.totalCount) {
      pools.delete(key);
      void endPool(managed);
    }
  }
  if (pools.size === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/** Ends every pool (for shutdown and tests). */
export async function closeAll(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  if (sweeper) clearInterval(sweeper);
  sweeper = undefined;
  abandonWaiters(all.map((managed) => managed.pool));
  // Steps that answered already still finish their session checks: briefly, else their connections are cut.
  await settleTails(all.map((managed) => managed.pool), 1000);
  await Promise.all(all.map((managed) => managed.pool.end().catch(() => {})));
  await closingDone(5000);
  await Promise.all(all.map((managed) => managed.tunnel?.close()));
}

/** Ends the pool's connections, then its SSH connection (the clients' goodbyes go through it). */
async function endPool(managed: ManagedPool): Promise<void> {
  await managed.pool.end().catch(() => {});
  await managed.tunnel?.close();
}

export function openPoolCount(): number {
  return pools.size;
}
