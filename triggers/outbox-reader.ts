/** Reads an outbox: one call acknowledges up to the position given, stamps new commits, prunes and reads. */
import { execute, isPgActionsError, PgActionsError } from '../connection/index.js';
import { MAX_RESULT_BYTES } from '../connection/config.js';
import type { RowChangesConfig, RowChangesEvent } from '../schemas/types.gen.js';
import type { Batch } from './definition.js';
import { namesOf, type OutboxPrefix } from './outbox-sql.js';
import { guarded, ownerRefusal, refuseUntrustedOwnerOn } from './schema-owner.js';

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

/**
 * Missing objects mean the trigger was never activated (or was removed): say so plainly. 3F000:
 * the last deactivation dropped the schema too, and a call of its function names the schema.
 */
export function notActive(error: unknown, trigger = 'row-changes'): unknown {
  if (isPgActionsError(error) && (error.sqlstate === '42883' || error.sqlstate === '42P01' || error.sqlstate === '3F000')) {
    return new PgActionsError('TRIGGER_NOT_ACTIVE', { message: `${trigger} is not activated with this configuration in this database: its outbox is missing`, cause: error });
  }
  return error;
}

/**
 * How large one event may be when it alone passes the connection's maxResultBytes (an UPDATE
 * carries its row twice): the schema's ceiling for maxResultBytes, 256 MiB of parsed result.
 */
export const MAX_EVENT_BYTES = MAX_RESULT_BYTES;

/**
 * `leader`: a subscriber's lease id: the read goes on after the position acknowledged by any consumer
 * (subscribers share one outbox) and is refused (LEASE_LOST_SQLSTATE) unless it holds the lease. Without
 * it (a poll), the read goes on after `after`.
 * A batch over maxResultBytes is read again in halves down to one event, and one event alone may
 * take up to MAX_EVENT_BYTES: a big statement or a big row never stalls the reader. (A failed read
 * changed nothing: acknowledging, stamping and reading are one statement.)
 */
export async function readOutbox<Event>(
  connection: unknown, fingerprint: string, config: Settled, after: number, kind: OutboxKind<Event>, leader?: string,
): Promise<Batch<Event, OutboxPosition>> {
  const names = namesOf(fingerprint, kind.prefix);
  await checkOwner(connection, kind.trigger);
  // The first argument is guarded too (evaluated before the call): refused when the schema changed hands since the check.
  const position = guarded('$1::pg_catalog.int8', 'pg_catalog.int8');
  let rows: Record<string, unknown>[];
  let batchSize = config.batchSize;
  let maxResultBytes: number | undefined;
  for (;;) {
    try {
      ({ rows } = await execute(connection, {
        // Every argument typed exactly (REVIEW10 R162): no overload of rc_F_read can win the call. The lease id goes in as a setting of this statement's transaction, evaluated before the call (an argument).
        text: leader === undefined
          ? `SELECT * FROM ${names.read}(${position}, $2::pg_catalog.int4, pg_catalog.make_interval(mins => $3::pg_catalog.int4), $4::pg_catalog.bool)`
          : `SELECT * FROM ${names.read}(${position}, $2::pg_catalog.int4, pg_catalog.make_interval(mins => $3::pg_catalog.int4),
               pg_catalog.set_config('pgactions.leader', $4::pg_catalog.text, true) OPERATOR(pg_catalog.=) $4::pg_catalog.text)`,
        values: [after, batchSize, config.retentionMinutes, leader ?? false],
        maxResultBytes,
        // writtenAt in UTC, whatever the reading session's TimeZone (REVIEW10 R171): the same event reads the same.
        fixedFormats: true,
      }));
      break;
    } catch (error) {
      if (!isPgActionsError(error) || error.code !== 'RESULT_TOO_LARGE') throw notActive(ownerRefusal(error, `${kind.trigger} read`), kind.trigger);
      if (batchSize > 1) batchSize = Math.ceil(batchSize / 2);
      else if (maxResultBytes === undefined) maxResultBytes = MAX_EVENT_BYTES;
      else throw tooLarge(after, kind.prefix, error);
    }
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

function tooLarge(after: number, prefix: OutboxPrefix, cause: unknown): PgActionsError {
  return new PgActionsError('RESULT_TOO_LARGE', {
    message: `The change after position ${after} is larger than one event may be (${MAX_EVENT_BYTES / 2 ** 20} MiB of row images): it cannot be delivered, and reading stops here.`,
    fixes: [
      `Find it in the outbox (pgactions.${prefix}_<id>_outbox, the first row with pos greater than the position) and delete it by hand if it may be skipped, or deactivate and activate the trigger again (its unread changes are dropped).`,
      'Keep rows of watched tables below about 100 MiB (an UPDATE carries the row twice).',
    ],
    cause,
  });
}

export async function acknowledgedPosition(connection: unknown, fingerprint: string, kind: OutboxKind<unknown>): Promise<OutboxPosition> {
  await checkOwner(connection, kind.trigger);
  try {
    const acked = guarded(`(SELECT k.acked FROM ${namesOf(fingerprint, kind.prefix).cursor} AS k LIMIT 1)`, 'pg_catalog.int8');
    const { rows } = await execute(connection, { text: `SELECT ${acked} AS acked`, readOnly: true });
    return { after: Number(rows[0]?.acked ?? 0) };
  } catch (error) {
    throw notActive(ownerRefusal(error, `${kind.trigger} read`), kind.trigger);
  }
}

/**
 * Refuses before any statement names the schema's objects: a guard inside the statement alone would
 * come too late where the planner runs code while planning (an IMMUTABLE function the owner put in
 * place of ours, folded or inlined before the guard is evaluated).
 */
export async function checkOwner(connection: unknown, trigger: string): Promise<void> {
  await refuseUntrustedOwnerOn(connection, `${trigger} read`);
}
