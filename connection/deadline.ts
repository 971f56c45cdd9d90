/**
 * The client-side deadline of a statement: p-timeout, with the stack capture of the TimeoutError
 * it builds eagerly on every call switched off. That capture cost about 8 µs per statement
 * (bench/, ~7% of a one-row lookup) for an error that is never shown: a timeout is reported as
 * QUERY_TIMEOUT. Error.stackTraceLimit is restored before anything else can run.
 */
import pTimeout, { TimeoutError } from 'p-timeout';

export { TimeoutError };

export function withDeadline<T>(work: Promise<T>, milliseconds: number): Promise<T> {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return pTimeout(work, { milliseconds });
  } finally {
    Error.stackTraceLimit = limit;
  }
}
