/**
 * The handover part of a table-sync state as the host kept it, checked before a batch is recorded in
 * it (REVIEW8 R152): edited (tables or batches not lists, the handover a string) it failed every poll
 * with a plain TypeError, no code and no fix. The same shape table-changes-cdc's state check accepts
 * for the tables (replication/checked-position.ts), plus what only the sync's state has.
 */
import { isHandoverTable } from '../replication/checked-position.js';
import { isLsn } from '../replication/lsn.js';
import { invalidState } from '../state.js';

/** Throws TRIGGER_STATE_INVALID naming state.position.handover unless it is one a table-sync poll could have written. */
export function checkSyncHandover(handover: unknown): void {
  const given = (typeof handover === 'object' && handover !== null && !Array.isArray(handover) ? handover : undefined) as Record<string, unknown> | undefined;
  const fits =
    given !== undefined &&
    typeof given.fingerprint === 'string' &&
    isLsn(given.lsn) &&
    (given.until === undefined || isLsn(given.until)) &&
    Array.isArray(given.tables) &&
    given.tables.every(isHandoverTable);
  if (!fits) {
    throw invalidState('state.position.handover is not the fingerprint, WAL position and list of tables, keys and batches a table-sync handover writes: the state was edited, or made by something else', [
      'state.position.handover must be the one a previous poll returned',
    ]);
  }
}
