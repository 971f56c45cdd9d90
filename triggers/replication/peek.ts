/**
 * pollTrigger for table-changes-cdc, over plain SQL for hosts that cannot hold a connection open:
 * first advance the slot to the state's position (what the host handled and stored, so the server
 * may release that WAL), then peek the next transactions without consuming them. Nothing moves
 * the slot past the state, so a host that crashes before storing the state gets the same events,
 * same ids, again. When nothing is pending a heartbeat is written (heartbeat.ts), so the next
 * poll can move a quiet slot forward and release WAL. upto_nchanges counts the plugin's ROWS, not
 * changes: before PG 15 every transaction of the database is a BEGIN+COMMIT pair, and (14+) every
 * logical message anyone emits is a row. So a peek that filled its limit with fewer than batchSize
 * changes is repeated, within the same poll, with a larger limit (up to ROWS_CAP): a poll moves past
 * thousands of unrelated transactions instead of ~250. A larger peek that would pass maxResultBytes
 * falls back to the last one that fit.
 */
import { execute, PgActionsError } from '../../connection/index.js';
import type { Batch, TriggerArguments } from '../definition.js';
import { columnTypes, type ColumnTypes } from '../../connection/column-types.js';
import { ChangeAssembler, parseLate, type ChangeEvent } from './changes.js';
import { formatLsn, parseLsn, type Lsn } from './lsn.js';

/** A poll peeks at most batchSize × this many rows (8× more each time the last peek brought too few changes). */
const ROWS_CAP_FACTOR = 64;
import { decodePgOutput } from './pgoutput.js';
import { assertSlotMatches, publicationName, slotInUse, slotName, slotState, type CdcConfig } from './slot.js';
import { beat, heartbeatMode, isHeartbeatChange } from './heartbeat.js';
import type { CdcPosition } from './stream.js';

export async function pollChanges(args: TriggerArguments<CdcConfig>, position: CdcPosition, heartbeat = true): Promise<Batch<ChangeEvent, CdcPosition>> {
  const slot = slotName(args);
  const state = await slotState(args);
  const from = parseLsn(position.lsn);
  assertSlotMatches(args, state, from);
  if (state.confirmedFlush < from) await execute(args.connection, { text: 'SELECT pg_replication_slot_advance($1, $2::pg_lsn)', values: [slot, position.lsn] });
  const messages = state.serverVersion >= 140000;
  const options = ['proto_version', '1', 'publication_names', publicationName(args), ...(messages ? ['messages', 'true'] : [])];
  const batchSize = args.config.batchSize ?? 500;
  const peek = async (limit: number) =>
    (await execute(args.connection, {
      text: `SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, $2, ${options.map((_, i) => `$${i + 3}`).join(', ')})`,
      values: [slot, limit, ...options],
    }).catch((error: unknown) => {
      throw slotInUse(args, error);
    })).rows;
  const types = columnTypes(args.connection);
  let limit = batchSize;
  let rows = await peek(limit);
  let batch = readChanges(rows, from, batchSize, types);
  while (rows.length >= limit && batch.events.length < batchSize && limit < batchSize * ROWS_CAP_FACTOR) {
    limit *= 8;
    try {
      rows = await peek(limit);
    } catch (error) {
      if (error instanceof PgActionsError && error.code === 'RESULT_TOO_LARGE') break; // keep the peek that fit
      throw error;
    }
    batch = readChanges(rows, from, batchSize, types);
  }
  await parseLate(batch.events, types); // a poll's first sight of a domain or enum array: one lookup, then cached
  if (heartbeat && rows.length === 0 && (args.config.heartbeatSeconds ?? 30) > 0) await beat(args, heartbeatMode(args.config, state.serverVersion)).catch(() => undefined); // a failed beat only delays the position: never the poll
  return { events: batch.events, position: { lsn: formatLsn(batch.end) } };
}

/** A peek's rows at most batchSize changes from `from` ends at whole transactions (the one that reaches it included). */
function readChanges(rows: Record<string, unknown>[], from: Lsn, batchSize: number, types: ColumnTypes): { events: ChangeEvent[]; end: Lsn } {
  const assembler = new ChangeAssembler(types);
  const events: ChangeEvent[] = [];
  let pending: ChangeEvent[] = [];
  let end = from;
  for (const row of rows) {
    if (events.length >= batchSize) break;
    for (const item of assembler.feed(decodePgOutput(Buffer.from(row.data as string, 'base64')))) {
      if (item.kind === 'change') {
        if (!isHeartbeatChange(item.event)) pending.push(item.event);
      } else if (item.kind === 'commit') {
        events.push(...pending);
        pending = [];
        if (item.endLsn > end) end = item.endLsn;
      } else if (item.kind === 'message' && !item.transactional && !assembler.inTransaction && item.lsn > end) end = item.lsn;
    }
  }
  return { events, end };
}
