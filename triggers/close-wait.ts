/**
 * How long a subscription's close() waits for a handler still running. After that it lets go
 * (the session, the lease): the batch was not acknowledged, so it is delivered again, to the
 * next subscriber or the next poll. A handler that never settles cannot keep a worker from stopping.
 */
export const CLOSE_WAIT_MS = 10_000;

/** Resolves when `work` settles or after `ms`, whichever comes first; never rejects. */
export async function settleWithin(work: Promise<unknown>, ms = CLOSE_WAIT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
