/**
 * Shared by the trigger tests: poll through the public API with every event checked against the
 * trigger's event schema, capture the PgActionsError a call fails with, open extra sessions for
 * concurrent transactions, and wait for a condition on a busy machine.
 */
import pg from 'pg';
import { PgActionsError } from '../../connection/index.js';
import { validatorFor } from '../../schemas/validate.js';
import { findTrigger, pollTrigger, type TriggerRequest, type TriggerState } from '../../triggers/index.js';
import type { TestDatabase } from '../harness/db.js';
import { expectNoSecretIn } from '../harness/secrets.js';

export async function poll(key: string, request: TriggerRequest): Promise<{ events: Record<string, unknown>[]; state: TriggerState }> {
  const result = await pollTrigger(key, request);
  const check = validatorFor(findTrigger(key)!.event);
  for (const event of result.events) expect(check(event, 'event')).toEqual([]);
  expect(JSON.parse(JSON.stringify(result.state))).toEqual(result.state); // plain JSON
  return result as { events: Record<string, unknown>[]; state: TriggerState };
}

export async function failureOf(work: Promise<unknown>): Promise<PgActionsError> {
  try {
    await work;
  } catch (error) {
    if (!(error instanceof PgActionsError)) throw error;
    expectNoSecretIn(error);
    return error;
  }
  throw new Error('expected a PgActionsError, the call succeeded');
}

/** A separate session on the test database (for a transaction left open while others commit). */
export async function session(db: TestDatabase): Promise<pg.Client> {
  const client = new pg.Client({ ...db.config, ssl: false });
  client.on('error', () => {});
  await client.connect();
  return client;
}

export async function waitFor<T>(probe: () => T | Promise<T>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
