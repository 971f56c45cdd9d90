/**
 * Waiting for a pooled connection, bounded and abandonable. pg-pool queues a request while all
 * its connections are busy, and forgets queued requests when the pool ends (they would wait for
 * connectTimeoutMs, then fail): each wait here is registered, so a pool swap (libpq's second SSL
 * attempt) moves it to the new pool at once, closeAll() ends it with a clear error, and the
 * step's deadline (or pg-pool's connect timeout) ends it as POOL_EXHAUSTED when the pool was full.
 */
import type pg from 'pg';
import { PgActionsError } from './errors/index.js';

interface Waiter {
  pool: pg.Pool;
  settle(error: unknown): void;
}

/** The pool this wait was on was replaced: wait on the new one. */
export class PoolReplaced extends Error {}

const waiters = new Set<Waiter>();

/** How long each checked-out client waited in the queue of a full pool (connecting a new one is not waiting). */
const queued = new WeakMap<pg.PoolClient, number>();

export function queuedMsOf(client: pg.PoolClient): number {
  return queued.get(client) ?? 0;
}

/** pool.connect(), given up after `waitMs` (a client handed over later goes straight back). */
export function waitForClient(pool: pg.Pool, waitMs: number, poolSize: number): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const waiter: Waiter = { pool, settle: (error) => finish(error) };
    const finish = (error: unknown, client?: pg.PoolClient) => {
      if (settled) return client?.release();
      settled = true;
      clearTimeout(timer);
      waiters.delete(waiter);
      if (client) {
        queued.set(client, wasFull ? performance.now() - startedAt : 0);
        resolve(client);
      } else reject(error);
    };
    const startedAt = performance.now();
    // Every connection in use by other steps: the pool, not the server or the network, is the bottleneck.
    const full = () => pool.totalCount >= poolSize && pool.idleCount === 0;
    const timedOut = () => finish(full() ? poolExhausted(poolSize, performance.now() - startedAt) : new Error('timeout exceeded when trying to connect'));
    const wasFull = full();
    const timer = setTimeout(timedOut, Math.max(0, waitMs));
    waiters.add(waiter);
    pool.connect().then(
      (client) => finish(undefined, client),
      // pg-pool's own connectionTimeoutMillis also ends a queued request.
      (error: unknown) => (/^timeout exceeded/.test((error as Error)?.message ?? '') ? timedOut() : finish(error)),
    );
  });
}

/** Moves every wait on `pool` to its replacement (the caller retries on seeing PoolReplaced). */
export function redirectWaiters(pool: pg.Pool): void {
  for (const waiter of [...waiters]) if (waiter.pool === pool) waiter.settle(new PoolReplaced());
}

/** Ends every wait on the given pools: pg-actions is shutting down. */
export function abandonWaiters(pools: readonly pg.Pool[]): void {
  for (const waiter of [...waiters]) {
    if (pools.includes(waiter.pool)) {
      waiter.settle(new PgActionsError('CONNECTION_LOST', { message: 'pg-actions closed its connections (closeAll) while the step was waiting for one; nothing was run.' }));
    }
  }
}

function poolExhausted(poolSize: number, waitedMs: number): PgActionsError {
  return new PgActionsError('POOL_EXHAUSTED', {
    message: `All ${poolSize} connections of this pool stayed busy with other steps for ${Math.round(waitedMs)} ms, until the step's deadline; the statement was not run.`,
  });
}
