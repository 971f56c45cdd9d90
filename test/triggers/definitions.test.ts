/**
 * Every trigger definition is complete and consistent: its example config and event match its
 * own schemas, its identity fields exist, and fuzzed configs (fast-check) are either accepted or
 * rejected with INVALID_INPUT naming config fields — never a raw exception — before any connection.
 */
import fc from 'fast-check';
import { PgActionsError } from '../../connection/index.js';
import { validatorFor } from '../../schemas/validate.js';
import { pollTrigger, sampleEvents, triggers } from '../../triggers/index.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const SEED = Number(process.env.FUZZ_SEED ?? 20261129);
/** Nothing listens here: a config that passed validation fails to connect, never earlier. */
const NOWHERE = { host: '127.0.0.1', port: 1, database: 'x', user: 'x', connectTimeoutMs: 500 };

describe.each(triggers.map((t) => [t.key, t] as const))('%s', (_key, trigger) => {
  test('example config and event match the schemas', () => {
    expect(validatorFor(trigger.config)(trigger.example.config, 'config')).toEqual([]);
    expect(validatorFor(trigger.event)(trigger.example.event, 'event')).toEqual([]);
    const properties = Object.keys((trigger.config as { properties: object }).properties);
    for (const field of trigger.identity) expect(properties).toContain(field);
    expect(trigger.guarantees.length).toBeGreaterThan(0);
    expect(trigger.privileges.length).toBeGreaterThan(0);
  });

  test('fuzzed configs: accepted, or INVALID_INPUT naming config fields, before any connection', async () => {
    const properties = Object.keys((trigger.config as { properties: object }).properties);
    const value = fc.oneof(fc.string({ maxLength: 70 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.constantFrom('orders', 'public.orders', 'a"b', 'id', 'now', 'beginning', 'INSERT', 'x'.repeat(64)));
    const config = fc.oneof(
      fc.dictionary(fc.constantFrom(...properties, 'extra', ''), value, { maxKeys: 6 }),
      fc.record(Object.fromEntries(properties.map((p) => [p, value])), { requiredKeys: [] }),
      value,
    );
    await fc.assert(
      fc.asyncProperty(config, async (candidate) => {
        const call = trigger.poll ? pollTrigger(trigger.key, { connection: NOWHERE, config: candidate }) : sampleEvents(trigger.key, { connection: NOWHERE, config: candidate });
        const error = await call.then(() => undefined, (e: unknown) => e);
        if (error === undefined) {
          // Accepted without a connection (listen's sample): only a valid config may get here.
          expect(validatorFor(trigger.config)(candidate, 'config')).toEqual([]);
          return;
        }
        expect(error).toBeInstanceOf(PgActionsError);
        const failure = error as PgActionsError;
        if (failure.code === 'INVALID_INPUT') {
          expect(failure.problems?.length).toBeGreaterThan(0);
          for (const problem of failure.problems ?? []) expect(problem).toMatch(/^(config|channels)\b/);
        } else {
          // Valid config: the only failure left is the unreachable server.
          expect(validatorFor(trigger.config)(candidate, 'config')).toEqual([]);
          expect(failure.code).toBe('CONNECTION_REFUSED');
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
  }, 120_000);
});
