/** Reads row-changes' outbox: one call acknowledges up to the position given, stamps new commits, prunes and reads. */
import { execute, isPgActionsError, PgActionsError } from '../connection/index.js';
import type { RowChangesConfig, RowChangesEvent } from '../schemas/types.gen.js';
import type { Batch } from './definition.js';
import { namesOf } from './outbox-sql.js';

export interface OutboxPosition {
  /** The last position handled (0 = none). */
  after: number;
}

export type Settled = Required<Pick<RowChangesConfig, 'batchSize' | 'retentionMinutes'>>;

/** Missing objects mean the trigger was never activated (or was removed): say so plainly. */
export function notActive(error: unknown): unknown {
  if (isPgActionsError(error) && (error.sqlstate === '42883' || error.sqlstate === '42P01')) {
    return new PgActionsError('TRIGGER_NOT_ACTIVE', { message: 'row-changes is not activated with this configuration in this database: its outbox is missing', cause: error });
  }
  return error;
}

/** `shared`: read after the position acknowledged by any consumer (subscribers sharing one outbox). */
export async function readOutbox(connection: unknown, fingerprint: string, config: Settled, after: number, shared: boolean): Promise<Batch<RowChangesEvent, OutboxPosition>> {
  const names = namesOf(fingerprint);
  let rows: Record<string, unknown>[];
  try {
    ({ rows } = await execute(connection, {
      text: `SELECT * FROM ${names.read}($1, $2, make_interval(mins => $3), $4)`,
      values: [after, config.batchSize, config.retentionMinutes, shared],
    }));
  } catch (error) {
    throw notActive(error);
  }
  if (rows[0] && rows[0].gap !== null) {
    throw new PgActionsError('TRIGGER_STATE_INVALID', {
      message: `state is at position ${after}, but the outbox was pruned through ${String(rows[0].gap)}: changes in between are gone`,
      problems: ['state.position is older than the outbox keeps'],
    });
  }
  const events = rows.map((row) => ({
    id: `${String(row.epoch)}-${String(row.seq)}`,
    op: row.op as RowChangesEvent['op'],
    schema: String(row.schema_name),
    table: String(row.table_name),
    key: row.key as RowChangesEvent['key'],
    new: row.new as RowChangesEvent['new'],
    old: row.old as RowChangesEvent['old'],
    writtenAt: String(row.written_at),
  }));
  const last = rows[rows.length - 1];
  return { events, position: { after: last ? Number(last.pos) : after } };
}

export async function acknowledgedPosition(connection: unknown, fingerprint: string): Promise<OutboxPosition> {
  try {
    const { rows } = await execute(connection, { text: `SELECT acked FROM ${namesOf(fingerprint).cursor}`, readOnly: true });
    return { after: Number(rows[0]?.acked ?? 0) };
  } catch (error) {
    throw notActive(error);
  }
}
