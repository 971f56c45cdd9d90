/**
 * Shared by the trigger tests: poll through the public API with every event checked against the
 * trigger's event schema, capture the PgActionsError a call fails with, open extra sessions for
 * concurrent transactions, and wait for a condition on a busy machine.
 */
import pg from 'pg';
import { PgActionsError } from '../../connection/index.js';
import { validatorFor } from '../../schemas/validate.js';
import { findTrigger, handoverState, pollTrigger, type TriggerEvent, type TriggerRequest, type TriggerState } from '../../triggers/index.js';
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

type Row = Record<string, unknown>;

export interface HandoverRun {
  /** What a consumer keeps: the sync's rows, then each delivered change's row over them, by keyOf. */
  copy: Map<string, Row>;
  /** Rows updated by afterRead. */
  updates: number;
  /** Changes table-changes-cdc delivered until `ended`. */
  delivered: number;
}

/**
 * A table-sync with `handover`, each row changed by `afterRead` right after the batch that read it
 * (so only table-changes-cdc can bring that version), then `endMarker`, then table-changes-cdc from
 * the handed-over state until `ended(copy)`: the copy as a consumer builds it.
 */
export async function syncThenChanges(
  requests: { sync: TriggerRequest; cdc: TriggerRequest },
  keyOf: (event: TriggerEvent, row: Row) => string,
  afterRead: (event: TriggerEvent, row: Row) => Promise<unknown>,
  endMarker: () => Promise<unknown>,
  ended: (copy: Map<string, Row>) => boolean,
): Promise<HandoverRun> {
  const copy = new Map<string, Row>();
  let state: TriggerState | undefined;
  let updates = 0;
  for (let polls = 1; polls < 100; polls++) {
    const result = await pollTrigger('table-sync', { ...requests.sync, state });
    state = result.state;
    if (result.events.length === 0) break;
    for (const event of result.events) {
      copy.set(keyOf(event, event.new as Row), event.new as Row);
      await afterRead(event, event.new as Row);
      updates++;
    }
  }
  await endMarker();
  let cdcState = handoverState(state!);
  let delivered = 0;
  for (let polls = 0; !ended(copy); polls++) {
    expect(polls).toBeLessThan(100);
    const result = await pollTrigger('table-changes-cdc', { ...requests.cdc, state: cdcState });
    for (const event of result.events) copy.set(keyOf(event, event.new as Row), event.new as Row);
    delivered += result.events.length;
    cdcState = result.state;
  }
  return { copy, updates, delivered };
}

/** The consumer's copy equals the tables' rows now (each under `keyOf`), and every update after its row's batch, and the end marker, was delivered. */
export function expectCopyOfRows(run: HandoverRun, rows: Row[], keyOf: (row: Row) => string): void {
  const differing = rows.filter((row) => run.copy.get(keyOf(row))?.v !== row.v);
  expect(differing).toEqual([]);
  expect(run.copy.size).toBe(rows.length);
  expect(run.delivered).toBe(run.updates + 1);
}

/** The copy the handover tests of one table t (key k, value v) keep: v by k, as each event brings it. */
export type KeyedCopy = Map<string, number>;

function keep(copy: KeyedCopy, events: readonly TriggerEvent[]): void {
  for (const event of events) copy.set(String((event.key as { k: string }).k), (event.new as { v: number }).v);
}

/** table-sync of t with `handover`, in batches of 2, calling afterBatch(n) after the n-th batch (from 0): the copy and the last state. */
export async function syncInPairs(connection: TriggerRequest['connection'], afterBatch: (batch: number) => Promise<unknown>): Promise<{ copy: KeyedCopy; state: TriggerState }> {
  const copy: KeyedCopy = new Map();
  let state: TriggerState | undefined;
  for (let batch = 0; batch < 10; batch++) {
    const result = await pollTrigger('table-sync', { connection, config: { tables: ['t'], batchSize: 2, handover: {} }, state });
    state = result.state;
    if (result.events.length === 0) break;
    keep(copy, result.events);
    await afterBatch(batch);
  }
  return { copy, state: state! };
}

/** table-changes-cdc from `state` (a handover state) until `done()`, each change kept in `copy` (at most 50 reads). */
export async function cdcUntil(cdc: TriggerRequest, state: TriggerState, copy: KeyedCopy, done: () => boolean): Promise<void> {
  for (let polls = 0; !done(); polls++) {
    expect(polls).toBeLessThan(50);
    const result = await pollTrigger('table-changes-cdc', { ...cdc, state });
    keep(copy, result.events);
    state = result.state;
  }
}
