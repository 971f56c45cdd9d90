/**
 * The client-side deadline on its own (connection/deadline.ts): what every step, session query and
 * table-sync COPY relies on when the server stops answering, and the rule that tells the step's own
 * statement_timeout from another session's cancel. No server is needed: these are timers and values.
 */
import { isServerTimeout, TimeoutError, withDeadline } from '../../connection/deadline.js';

const never = () => new Promise<never>(() => undefined);

describe('withDeadline', () => {
  test('passes the value of work that ends in time; its timer is gone and never fires', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    const before = timers();
    try {
      await expect(withDeadline(Promise.resolve('rows'), 60_000)).resolves.toBe('rows');
      await expect(withDeadline(Promise.reject(new Error('no')), 60_000)).rejects.toThrow('no');
      expect(timers()).toBe(before); // no 60 s timer left holding the process open
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('passes the failure of work that fails in time, unchanged', async () => {
    const failure = Object.assign(new Error('duplicate key'), { code: '23505' });
    await expect(withDeadline(Promise.reject(failure), 1000)).rejects.toBe(failure);
  });

  test('rejects with a TimeoutError naming the wait when the work does not end in time, at the deadline', async () => {
    const started = performance.now();
    const error = await withDeadline(never(), 50).catch((caught: unknown) => caught);
    const waited = performance.now() - started;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toBe('Promise timed out after 50 milliseconds');
    expect(waited).toBeGreaterThanOrEqual(45);
    expect(waited).toBeLessThan(5000); // a loaded machine delays timers, never by seconds here
  });

  test('a deadline that passes leaves Error.stackTraceLimit as it found it (the host\'s errors keep their stacks)', async () => {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 17;
    try {
      await expect(withDeadline(never(), 5)).rejects.toBeInstanceOf(TimeoutError);
      expect(Error.stackTraceLimit).toBe(17);
    } finally {
      Error.stackTraceLimit = limit;
    }
  });

  test('work ending after its deadline changes nothing: the TimeoutError stands', async () => {
    let finish!: (value: string) => void;
    const late = new Promise<string>((resolve) => (finish = resolve));
    const outcome = withDeadline(late, 10).then((value) => ({ value }), (error: unknown) => ({ error }));
    await new Promise((resolve) => setTimeout(resolve, 40));
    finish('too late');
    expect(await outcome).toEqual({ error: expect.any(TimeoutError) });
  });
});

describe('isServerTimeout: the step\'s own statement_timeout, told from another session\'s cancel by time', () => {
  test('57014 once the step\'s time is spent (with 1 ms of timer slack) is the step\'s timeout', () => {
    expect(isServerTimeout({ code: '57014' }, 1000, 1000)).toBe(true);
    expect(isServerTimeout({ code: '57014' }, 999, 1000)).toBe(true);
    expect(isServerTimeout({ code: '57014' }, 5000, 1000)).toBe(true);
  });

  test('57014 before the step\'s time is spent is someone else\'s cancel', () => {
    expect(isServerTimeout({ code: '57014' }, 998, 1000)).toBe(false);
    expect(isServerTimeout({ code: '57014' }, 10, 1000)).toBe(false);
  });

  test('any other failure is never a timeout, however late it comes', () => {
    expect(isServerTimeout({ code: '23505' }, 5000, 1000)).toBe(false);
    expect(isServerTimeout(new Error('Connection terminated'), 5000, 1000)).toBe(false);
    expect(isServerTimeout(null, 5000, 1000)).toBe(false);
    expect(isServerTimeout(undefined, 5000, 1000)).toBe(false);
  });
});
