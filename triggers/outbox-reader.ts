/** Reads an outbox: one call acknowledges up to the position given, stamps new commits, prunes and reads. */
import { execute, isPgActionsError, PgActionsError } from '../connection/index.js';
import type { RowChangesConfig, RowChangesEvent } from '../schemas/types.gen.js';
import type { Batch } from './definition.js';
import { namesOf, type OutboxPrefix } from './outbox-sql.js';

/** Which trigger's outbox, and how its rows read as that trigger's events. */
export interface OutboxKind<Event> {
  prefix: OutboxPrefix;
  /** Named in "not activated" errors. */
  trigger: string;
  toEvent(row: Record<string, unknown>, id: string): Event;
}

export const ROW_CHANGES_OUTBOX: OutboxKind<RowChangesEvent> = {
  prefix: 'rc',
  trigger: 'row-changes',
  toEvent: (row, id) => ({
    id,
    op: row.op as RowChangesEvent['op'],
    schema: String(row.schema_name),
    table: String(row.table_name),
    key: row.key as RowChangesEvent['key'],
    new: row.new as RowChangesEvent['new'],
    old: row.old as RowChangesEvent['old'],
    writtenAt: String(row.written_at),
  }),
};

export interface OutboxPosition {
  /** The last position handled (0 = none). */
  after: number;
}

export type Settled = Required<Pick<RowChangesConfig, 'batchSize' | 'retentionMinutes'>>;

/** Missing objects mean the trigger was never activated (or was removed): say so plainly. */
export function notActive(error: unknown, trigger = 'row-changes'): unknown {
  if (isPgActionsError(error) && (error.sqlstate === '42883' || error.sqlstate === '42P01')) {
    return new PgActionsError('TRIGGER_NOT_ACTIVE', { message: `${trigger} is not activated with this configuration in this database: its outbox is missing`, cause: error });
  }
  return error;
}

/** `shared`: read after the position acknowledged by any consumer (subscribers sharing one outbox). */
export async function readOutbox<Event>(
  connection: unknown, fingerprint: string, config: Settled, after: number, shared: boolean, kind: OutboxKind<Event>,
): Promise<Batch<Event, OutboxPosition>> {
  const names = namesOf(fingerprint, kind.prefix);
  let rows: Record<string, unknown>[];
  try {
    ({ rows } = await execute(connection, {
      text: `SELECT * FROM ${names.read}($1, $2, make_interval(mins => $3), $4)`,
      values: [after, config.batchSize, config.retentionMinutes, shared],
    }));
  } catch (error) {
    throw notActive(error, kind.trigger);
  }
  if (rows[0] && rows[0].gap !== null) {
    throw new PgActionsError('TRIGGER_STATE_INVALID', {
      message: `state is at position ${after}, but the outbox was pruned through ${String(rows[0].gap)}: changes in between are gone`,
      problems: ['state.position is older than the outbox keeps'],
    });
  }
  const events = rows.map((row) => kind.toEvent(row, `${String(row.epoch)}-${String(row.seq)}`));
  const last = rows[rows.length - 1];
  return { events, position: { after: last ? Number(last.pos) : after } };
}

export async function acknowledgedPosition(connection: unknown, fingerprint: string, kind: OutboxKind<unknown>): Promise<OutboxPosition> {
  try {
    const { rows } = await execute(connection, { text: `SELECT acked FROM ${namesOf(fingerprint, kind.prefix).cursor}`, readOnly: true });
    return { after: Number(rows[0]?.acked ?? 0) };
  } catch (error) {
    throw notActive(error, kind.trigger);
  }
}
