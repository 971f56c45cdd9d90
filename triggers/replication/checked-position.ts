/**
 * A table-changes-cdc state as the host kept it, checked before anything reads it (REVIEW7 R132):
 * an edited or foreign state failed with plain RangeError / TypeError / SyntaxError and no code
 * (parseLsn, the handover's snapshots split and read as BigInt, an empty batch list). Every field a
 * poll or subscription reads is checked here; what needs the server (bounds that do not cast to the
 * key) is checked where it is read, with the same code.
 */
import { isLabelsFingerprint } from '../enum-labels.js';
import { invalidState } from '../state.js';
import { isLsn } from './lsn.js';

/** txid_current_snapshot() text: xmin:xmax:xip,… */
const SNAPSHOT = /^\d{1,20}:\d{1,20}:(\d{1,20}(,\d{1,20})*)?$/;
const problem = (field: string) => [`${field} must be the one a previous poll returned`];

const isStringArray = (value: unknown, length?: number): value is string[] =>
  Array.isArray(value) && (length === undefined || value.length === length) && value.every((item) => typeof item === 'string');

function isBound(bound: unknown, width: number): boolean {
  if (bound === null) return true;
  if (Array.isArray(bound)) return bound.length === width; // an older state's parsed values
  return typeof bound === 'object' && isStringArray((bound as { text?: unknown }).text, width);
}

export function isHandoverTable(table: unknown): boolean {
  if (typeof table !== 'object' || table === null) return false;
  const { schema, table: name, key, types, collations, labels, batches } = table as Record<string, unknown>;
  if (typeof schema !== 'string' || typeof name !== 'string' || !isStringArray(key) || key.length === 0 || !isStringArray(types, key.length)) return false;
  // Absent in states made before the collations were recorded (REVIEW11 R174).
  if (collations !== undefined && !(Array.isArray(collations) && collations.length === key.length && collations.every((item) => item === null || typeof item === 'string'))) return false;
  if (labels !== undefined && !isLabelsFingerprint(labels)) return false; // absent before REVIEW11 R175, and for keys without enums
  return Array.isArray(batches) && batches.length > 0 && batches.every((batch) => Array.isArray(batch) && batch.length === 2 && isBound(batch[0], key.length) && typeof batch[1] === 'string' && SNAPSHOT.test(batch[1]));
}

/** Throws TRIGGER_STATE_INVALID naming the field when the position is not one a poll could have returned. */
export function checkCdcPosition(position: unknown): void {
  const given = (typeof position === 'object' && position !== null ? position : {}) as Record<string, unknown>;
  if (!isLsn(given.lsn)) throw invalidState(`state.position.lsn is not a WAL position (${JSON.stringify(given.lsn)}): the state was edited, or made by something else`, problem('state.position.lsn'));
  if (given.handover === undefined) return;
  const handover = (typeof given.handover === 'object' && given.handover !== null ? given.handover : {}) as Record<string, unknown>;
  if (!isLsn(handover.until)) throw invalidState('state.position.handover.until is not a WAL position: the state was edited, or made by something else', problem('state.position.handover.until'));
  if (!Array.isArray(handover.tables) || handover.tables.length === 0 || !handover.tables.every(isHandoverTable)) {
    throw invalidState('state.position.handover.tables is not the list of tables, keys and batches a table-sync handover writes: the state was edited, or made by something else', problem('state.position.handover.tables'));
  }
  if (handover.reopened !== undefined && !isStringArray(handover.reopened)) {
    throw invalidState('state.position.handover.reopened is not a list of keys: the state was edited, or made by something else', problem('state.position.handover.reopened'));
  }
}
