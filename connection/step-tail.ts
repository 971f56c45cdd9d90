/**
 * A step answers as soon as its outcome is final (its result read, or its COMMIT confirmed); the
 * rest of its round trip (the session guard's probe, check, resets, ROLLBACK) still runs on its
 * connection, which goes back to the pool only after it: the "tail". Tails are tracked per pool so
 * that a step finding no idle connection waits for one to come back rather than opening another
 * (connections are dearer than a tail: a few hundred µs at most), and closeAll() ends none early.
 */

/**
 * Off: measured on the shared 2-core machine (2026-11-29, load 17–24), answering early cost more
 * than it saved — the reply comes in two packets, the client wakes twice per step, and wall and CPU
 * ratios were both higher (docs/performance.md). Switched on by bench/ (to compare in the same
 * run) and by the tests of this path; turn it on by default only if a quiet bench shows a gain.
 */
export const earlyAnswer = { enabled: false };

interface Tail {
  pool: object;
  work: Promise<void>;
  /** Ends the tail at once: its connection is cut (and then discarded). */
  abort(): void;
}

const tails = new Set<Tail>();

/** Registers a tail; `work` must never reject. */
export function trackTail(pool: object, work: Promise<void>, abort: () => void): void {
  const tail: Tail = { pool, work, abort };
  tails.add(tail);
  void work.finally(() => tails.delete(tail));
}

/** How many tails are running now (for tests and the bench). */
export function tailsInFlight(): number {
  return tails.size;
}

/**
 * Resolves when one of the pool's tails has ended (its connection back in the pool or discarded),
 * at once when none runs, or after `waitMs`.
 */
export function tailEnded(pool: object, waitMs: number): Promise<void> | undefined {
  const running = [...tails].filter((tail) => tail.pool === pool).map((tail) => tail.work);
  if (running.length === 0) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, waitMs))));
  return Promise.race([...running, limit]).finally(() => clearTimeout(timer));
}

/** Waits up to `graceMs` for the tails on these pools, then cuts the connections of those still running. */
export async function settleTails(pools: readonly object[], graceMs: number): Promise<void> {
  const mine = [...tails].filter((tail) => pools.includes(tail.pool));
  if (mine.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
  await Promise.race([Promise.all(mine.map((tail) => tail.work)), limit]);
  clearTimeout(timer);
  for (const tail of mine) if (tails.has(tail)) tail.abort();
  await Promise.all(mine.map((tail) => tail.work));
}

/** Resolves when every tail running now has ended (tests: what a step's session checks release is released). */
export async function tailsEnded(): Promise<void> {
  await Promise.all([...tails].map((tail) => tail.work));
}
