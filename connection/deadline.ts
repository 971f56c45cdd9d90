/**
 * The client-side deadline of a statement. p-timeout's TimeoutError class is kept (callers test
 * `instanceof TimeoutError`), but the error is built only when the deadline passes: p-timeout
 * builds one eagerly on every call, which cost a one-row step about 4% of its client CPU
 * (bench/, CPU profile of 2026-11-29) for an error that is almost never thrown.
 */
import { TimeoutError } from 'p-timeout';

export { TimeoutError };

export function withDeadline<T>(work: Promise<T>, milliseconds: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(expire, milliseconds, reject, milliseconds);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function expire(reject: (error: unknown) => void, milliseconds: number): void {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0; // reported as QUERY_TIMEOUT: the stack is never shown
  try {
    reject(new TimeoutError(`Promise timed out after ${milliseconds} milliseconds`));
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * 57014 is any cancel: the step's own statement_timeout (a lock wait, usually), or another session's
 * pg_cancel_backend. Told apart by time, not by the message text, which is in the server's language.
 */
export function isServerTimeout(error: unknown, elapsedMs: number, timeoutMs: number): boolean {
  return (error as { code?: string } | null)?.code === '57014' && elapsedMs >= timeoutMs - 1;
}
