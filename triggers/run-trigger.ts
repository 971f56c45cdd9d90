/**
 * The host-facing API: validate the request (connection and config by ajv, the state by its
 * envelope) before any connection, then hand the trigger its typed arguments. Positions move
 * only after the host has handled the events: pollTrigger returns the state for the host to
 * store after its flows ran; subscribeTrigger calls onState after the handler's promise resolved.
 */
import { configOf, PgActionsError } from '../connection/index.js';
import { validatorFor } from '../schemas/validate.js';
import type { Batch, SampleResult, TriggerArguments, TriggerDefinition, TriggerEvent } from './definition.js';
import { subscribeByPolling } from './polling-subscription.js';
import { findTrigger } from './registry.js';
import { fingerprintOf, positionOf, wrapState, type TriggerState } from './state.js';

export interface TriggerRequest {
  connection: unknown;
  config: unknown;
  /** The state a previous poll or subscription returned; absent on the first run. */
  state?: unknown;
}

export interface SubscribeRequest extends TriggerRequest {
  /** Called with the new state after each handled batch (store it: it is where a restart resumes). */
  onState?(state: TriggerState): void | Promise<void>;
  /** A batch failed (the handler threw, or the database was unreachable); it will be delivered again. */
  onError?(error: unknown): void;
}

export interface TriggerSubscription {
  /** The state after the last handled batch. */
  readonly state: TriggerState;
  close(): Promise<void>;
}

export type EventHandler = (events: TriggerEvent[]) => Promise<void> | void;

interface Prepared {
  trigger: TriggerDefinition;
  args: TriggerArguments<unknown>;
}

function prepare(key: unknown, request: TriggerRequest): Prepared {
  const trigger = typeof key === 'string' ? findTrigger(key) : undefined;
  if (!trigger) {
    throw new PgActionsError('INVALID_INPUT', { message: `trigger must be a known trigger key, not ${JSON.stringify(key)}`, problems: ['trigger is not a known trigger'] });
  }
  const problems = validatorFor(trigger.config)(request?.config, 'config');
  if (problems.length) throw new PgActionsError('INVALID_INPUT', { message: problems.join('; '), problems });
  configOf(request.connection); // throws INVALID_INPUT naming connection.<field>
  const config = withDefaults(trigger.config, request.config as Record<string, unknown>);
  const fingerprint = fingerprintOf(trigger.key, trigger.identity, config);
  return { trigger, args: { connection: request.connection, config, fingerprint } };
}

function withDefaults(schema: object, config: Record<string, unknown>): Record<string, unknown> {
  const properties = (schema as { properties?: Record<string, { default?: unknown }> }).properties ?? {};
  const defaults = Object.entries(properties).flatMap(([field, property]) => ('default' in property ? [[field, property.default]] : []));
  return { ...Object.fromEntries(defaults), ...config };
}

async function startingPosition({ trigger, args }: Prepared, state: unknown): Promise<unknown> {
  return state === undefined || state === null ? trigger.start(args) : positionOf(trigger.key, args.fingerprint, state);
}

export async function pollTrigger(key: string, request: TriggerRequest): Promise<{ events: TriggerEvent[]; state: TriggerState }> {
  const prepared = prepare(key, request);
  const { trigger, args } = prepared;
  if (!trigger.poll) {
    throw new PgActionsError('INVALID_INPUT', { message: `${trigger.name} pushes events and cannot be polled; use subscribeTrigger`, problems: ['trigger does not support polling'] });
  }
  const position = await startingPosition(prepared, request.state);
  const batch = await trigger.poll(args, position);
  return { events: batch.events, state: wrapState(trigger.key, args.fingerprint, batch.position) };
}

export async function subscribeTrigger(key: string, request: SubscribeRequest, handler: EventHandler): Promise<TriggerSubscription> {
  const prepared = prepare(key, request);
  const { trigger, args } = prepared;
  if (typeof handler !== 'function') throw new PgActionsError('INVALID_INPUT', { message: 'handler must be a function', problems: ['handler must be a function'] });
  let state = wrapState(trigger.key, args.fingerprint, await startingPosition(prepared, request.state));
  const onError = request.onError ?? (() => undefined);
  const deliver = async (batch: Batch<TriggerEvent, unknown>) => {
    if (batch.events.length) await handler(batch.events);
    state = wrapState(trigger.key, args.fingerprint, batch.position);
    await request.onState?.(state);
  };
  const running = trigger.subscribe
    ? trigger.subscribe(args, state.position, deliver, onError)
    : subscribeByPolling(trigger, args, state.position, deliver, onError);
  await running.ready;
  return {
    get state() {
      return state;
    },
    close: () => running.close(),
  };
}

export interface ActivationResult {
  /** Whether objects were installed in the database. */
  activated: boolean;
  fingerprint: string;
  /** How the trigger will run, when it has a choice (schema-changes: 'event trigger' or 'catalog snapshots'). */
  mode?: string;
  note?: string;
}

export async function activateTrigger(key: string, request: Omit<TriggerRequest, 'state'>): Promise<ActivationResult> {
  const { trigger, args } = prepare(key, request);
  const outcome = await trigger.activate?.(args);
  if (!outcome) return { activated: trigger.installs, fingerprint: args.fingerprint };
  return { activated: outcome.installed, fingerprint: args.fingerprint, mode: outcome.mode, note: outcome.note };
}

export async function deactivateTrigger(key: string, request: Omit<TriggerRequest, 'state'>): Promise<{ deactivated: boolean }> {
  const { trigger, args } = prepare(key, request);
  await trigger.deactivate?.(args);
  return { deactivated: trigger.installs };
}

export async function sampleEvents(key: string, request: Omit<TriggerRequest, 'state'>): Promise<SampleResult<TriggerEvent>> {
  const { trigger, args } = prepare(key, request);
  return trigger.sample(args);
}
