/**
 * pollTrigger for table-changes-cdc, over plain SQL for hosts that cannot hold a connection open:
 * first advance the slot to the state's position (what the host handled and stored, so the server
 * may release that WAL), then peek the next transactions without consuming them. Nothing moves
 * the slot past the state, so a host that crashes before storing the state gets the same events,
 * same ids, again. When nothing is pending a heartbeat is written (heartbeat.ts), so the next
 * poll can move a quiet slot forward and release WAL.
 */
import { execute } from '../../connection/index.js';
import type { Batch, TriggerArguments } from '../definition.js';
import { ChangeAssembler, type ChangeEvent } from './changes.js';
import { formatLsn, parseLsn } from './lsn.js';
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
  const { rows } = await execute(args.connection, {
    text: `SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, $2, ${options.map((_, i) => `$${i + 3}`).join(', ')})`,
    values: [slot, args.config.batchSize ?? 500, ...options],
  }).catch((error: unknown) => {
    throw slotInUse(args, error);
  });
  const assembler = new ChangeAssembler();
  const events: ChangeEvent[] = [];
  let pending: ChangeEvent[] = [];
  let end = from;
  for (const row of rows) {
    for (const item of assembler.feed(decodePgOutput(Buffer.from(row.data as string, 'base64')))) {
      if (item.kind === 'change') {
        if (!isHeartbeatChange(item.event)) pending.push(item.event);
      }
      else if (item.kind === 'commit') {
        events.push(...pending);
        pending = [];
        if (item.endLsn > end) end = item.endLsn;
      } else if (item.kind === 'message' && !item.transactional && !assembler.inTransaction && item.lsn > end) end = item.lsn;
    }
  }
  if (heartbeat && rows.length === 0 && (args.config.heartbeatSeconds ?? 30) > 0) await beat(args, heartbeatMode(args.config, state.serverVersion)).catch(() => undefined); // a failed beat only delays the position: never the poll
  return { events, position: { lsn: formatLsn(end) } };
}
