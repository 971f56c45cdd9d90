/**
 * The state a host stores between polls: plain JSON naming the trigger and the fingerprint of the
 * configuration it was made for, around the trigger's own position. A state from another trigger
 * or configuration is refused loudly: silently restarting would skip or repeat events.
 */
import { createHash } from 'node:crypto';
import { PgActionsError } from '../connection/index.js';

export interface TriggerState {
  trigger: string;
  fingerprint: string;
  position: unknown;
}

/** Short, stable hash of what decides a position's meaning; also names installed objects. */
export function fingerprintOf(key: string, identity: readonly string[], config: Record<string, unknown>): string {
  const parts = identity.map((field) => [field, config[field] ?? null]);
  return createHash('sha256').update(JSON.stringify([key, parts])).digest('hex').slice(0, 16);
}

export function wrapState(key: string, fingerprint: string, position: unknown): TriggerState {
  return { trigger: key, fingerprint, position };
}

/** The position inside a host's state, or a TRIGGER_STATE_INVALID error saying what is wrong. */
export function positionOf(key: string, fingerprint: string, state: unknown): unknown {
  if (typeof state !== 'object' || state === null || Array.isArray(state) || !('position' in state)) {
    throw invalidState('state is not a pg-actions trigger state (an object with trigger, fingerprint and position)', ['state must be the object a previous poll returned']);
  }
  const given = state as Partial<TriggerState>;
  if (given.trigger !== key) {
    throw invalidState(`state belongs to the trigger "${String(given.trigger)}", not "${key}"`, [`state.trigger must be "${key}"`]);
  }
  if (given.fingerprint !== fingerprint) {
    throw invalidState(`state was made for another configuration of "${key}" (the table, column or other identifying settings changed)`, [
      'state.fingerprint does not match config',
    ]);
  }
  return given.position;
}

export function invalidState(message: string, problems: string[]): PgActionsError {
  return new PgActionsError('TRIGGER_STATE_INVALID', { message, problems });
}
