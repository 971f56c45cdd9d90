/**
 * The publication and logical slot of a change-capture trigger. Both are named pg_actions_<fingerprint>
 * (the tag that finds a crashed activation's leftovers); activate creates what is missing and checks
 * readiness first, deactivate drops exactly them (a publication the user named is left alone).
 * Before every read the slot is checked against the state: a missing, lost or recreated slot is a
 * loud error with the fix, never a silent restart from "now".
 */
import { createHash } from 'node:crypto';
import { configOf, execute, PgActionsError, quoteIdentifier, quoteQualifiedName } from '../../connection/index.js';
import { inTransaction, tablesLock } from '../../connection/session.js';
import type { TriggerArguments } from '../definition.js';
import { diagnoseReplication } from '../../connection/replication-readiness/diagnose.js';
import { formatLsn, parseLsn, type Lsn } from './lsn.js';

export interface CdcConfig {
  tables: string[];
  publication?: string;
  batchSize?: number;
  heartbeatSeconds?: number;
  heartbeat?: 'auto' | 'message' | 'table';
}

export const OBJECT_PREFIX = 'pg_actions_';
const TAG = 'pg-actions table-changes-cdc';

/** pg_actions_<hash of the trigger's fingerprint and the database>: slots are per server, not per database. */
export function slotName(args: TriggerArguments<CdcConfig>): string {
  const database = configOf(args.connection).database;
  return OBJECT_PREFIX + createHash('sha256').update(JSON.stringify([args.fingerprint, database])).digest('hex').slice(0, 16);
}

export function publicationName(args: TriggerArguments<CdcConfig>): string {
  return args.config.publication ?? slotName(args);
}

export interface SlotState {
  confirmedFlush: Lsn;
  active: boolean;
  walStatus: string | null;
  serverVersion: number;
  /** How far the server's WAL goes (on a standby: what it received or replayed). */
  walEnd: Lsn;
}

const RESNAPSHOT = 'Re-snapshot the tables (table-sync) and start without a state: the changes in between cannot be recovered from this slot.';

/** The slot's state, or a loud error when it is missing or lost. */
export async function slotState(args: TriggerArguments<CdcConfig>): Promise<SlotState> {
  const slot = slotName(args);
  const { rows } = await execute(args.connection, {
    text: `SELECT pg_catalog.to_jsonb(s) AS slot, pg_catalog.current_setting('server_version_num')::pg_catalog.int4 AS version,
                  (CASE WHEN pg_catalog.pg_is_in_recovery() THEN GREATEST(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn())
                        ELSE pg_catalog.pg_current_wal_lsn() END)::pg_catalog.text AS wal_end FROM (SELECT 1) AS one
             LEFT JOIN pg_catalog.pg_replication_slots s ON s.slot_name OPERATOR(pg_catalog.=) $1::pg_catalog.name AND s.database OPERATOR(pg_catalog.=) pg_catalog.current_database()`,
    values: [slot],
    readOnly: true,
  });
  const found = rows[0]!.slot as { confirmed_flush_lsn: string | null; active: boolean; wal_status?: string | null } | null;
  if (!found || !found.confirmed_flush_lsn) {
    throw new PgActionsError('REPLICATION_SLOT_MISSING', {
      message: `The replication slot "${slot}" of this trigger does not exist in this database: it was never created (activateTrigger) or it was dropped.`,
      fixes: ['Run activateTrigger to create the publication and slot.', `If the trigger was running before: ${RESNAPSHOT}`],
    });
  }
  if (found.wal_status === 'lost') {
    throw new PgActionsError('REPLICATION_SLOT_LOST', {
      message: `The replication slot "${slot}" is lost: the server removed WAL it still needed (max_slot_wal_keep_size), so changes are gone.`,
      fixes: [`Drop and recreate it: deactivateTrigger, then activateTrigger.`, RESNAPSHOT, 'Raise max_slot_wal_keep_size, or keep the consumer running.'],
    });
  }
  return { confirmedFlush: parseLsn(found.confirmed_flush_lsn), active: found.active, walStatus: found.wal_status ?? null, serverVersion: rows[0]!.version as number, walEnd: parseLsn(rows[0]!.wal_end as string) };
}

/**
 * The slot may not be ahead of the state: that means changes after the state were consumed by someone else, or the slot is a new one.
 * Nor may the state be ahead of the server's WAL (REVIEW8 R150): advancing the slot to it would confirm every change written since
 * without reading it, at every poll (a database restored or failed over behind the host's state, or a state from another server).
 */
export function assertSlotMatches(args: TriggerArguments<CdcConfig>, state: SlotState, position: Lsn): void {
  if (position > state.walEnd) {
    throw new PgActionsError('REPLICATION_SLOT_MISMATCH', {
      message:
        `This state's position ${formatLsn(position)} is ahead of the server's WAL, which ends at ${formatLsn(state.walEnd)}: the database was restored ` +
        'or failed over to a server that is behind, or the state belongs to another server. Nothing was read or acknowledged.',
      fixes: [RESNAPSHOT, 'Make sure the host uses the state returned by this server, not one from before a restore or from another environment.'],
    });
  }
  if (state.confirmedFlush <= position) return;
  throw new PgActionsError('REPLICATION_SLOT_MISMATCH', {
    message:
      `The replication slot "${slotName(args)}" is at ${formatLsn(state.confirmedFlush)}, after this state's position ${formatLsn(position)}: ` +
      'the slot was recreated, or another consumer acknowledged changes this state has not seen.',
    fixes: [RESNAPSHOT, 'Make sure only one host consumes this trigger, with the state it returned last.'],
  });
}

/** What activateSlot created (the rest existed before, from an earlier activation or the user). */
export interface CreatedObjects {
  publication: boolean;
  slot: boolean;
}

export async function activateSlot(args: TriggerArguments<CdcConfig>): Promise<CreatedObjects> {
  const slot = slotName(args);
  const publication = publicationName(args);
  const own = args.config.publication === undefined;
  const diagnosis = await diagnoseReplication(args.connection, { tables: args.config.tables, publication: own ? undefined : publication, slot });
  const exists = own && (await publicationExists(args.connection, publication));
  const failed = diagnosis.checks.filter((c) => c.level === 'failed' && !(exists && c.code === 'CANNOT_CREATE_PUBLICATION'));
  if (failed.length) {
    throw new PgActionsError('REPLICATION_NOT_READY', {
      message: `The database is not ready for change data capture: ${failed.map((c) => `${c.code}: ${c.message}`).join(' ')}`,
      fixes: failed.flatMap((c) => c.fixes),
    });
  }
  // A partitioned table's changes come under its own name and key, as table-sync and row-changes give
  // them, not each partition's (REVIEW7 R130): PostgreSQL 13+ publishes them through the root.
  const viaRoot = own && (await serverVersionOf(args.connection)) >= 130000;
  if (own && !exists) {
    const tables = args.config.tables.map((table, i) => quoteQualifiedName(table, `config.tables[${i}]`));
    await inTransaction(args.connection, async (query) => {
      // Waits for a SHARE UPDATE EXCLUSIVE lock on each table (behind a VACUUM, an ALTER TABLE, a LOCK TABLE): bounded (REVIEW7 R140).
      await query(`CREATE PUBLICATION ${quoteIdentifier(publication)} FOR TABLE ${tables.join(', ')}${viaRoot ? ' WITH (publish_via_partition_root = true)' : ''}`, undefined, tablesLock(tables));
      await query(`COMMENT ON PUBLICATION ${quoteIdentifier(publication)} IS '${TAG}'`);
    }, { name: 'table-changes-cdc activation', again: 'activate table-changes-cdc again' });
  } else if (viaRoot) {
    // Made by an earlier version: activating again moves it to the root's names.
    const { rows: [row] } = await execute(args.connection, { text: 'SELECT pubviaroot FROM pg_catalog.pg_publication WHERE pubname OPERATOR(pg_catalog.=) $1::pg_catalog.name', values: [publication], readOnly: true });
    if (row && row.pubviaroot === false) await execute(args.connection, { text: `ALTER PUBLICATION ${quoteIdentifier(publication)} SET (publish_via_partition_root = true)` });
  }
  const created = { publication: own && !exists, slot: false };
  try {
    const { rows } = await execute(args.connection, { text: 'SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name OPERATOR(pg_catalog.=) $1::pg_catalog.name', values: [slot] });
    // Waits for every transaction holding an xid to end (QUERY_TIMEOUT at the step's deadline).
    if (rows.length === 0) await execute(args.connection, { text: "SELECT pg_catalog.pg_create_logical_replication_slot($1::pg_catalog.name, 'pgoutput')", values: [slot] });
    return { ...created, slot: rows.length === 0 };
  } catch (error) {
    await undoActivation(args, created).catch(() => undefined); // a failed activation leaves no publication of its own (REVIEW7 R140)
    throw error;
  }
}

/** Drops what a failed activation just created, and only that. */
export async function undoActivation(args: TriggerArguments<CdcConfig>, created: CreatedObjects): Promise<void> {
  if (created.slot) await execute(args.connection, { text: 'SELECT pg_catalog.pg_drop_replication_slot($1::pg_catalog.name)', values: [slotName(args)] });
  if (created.publication) await execute(args.connection, { text: `DROP PUBLICATION IF EXISTS ${quoteIdentifier(publicationName(args))}` });
}

export async function deactivateSlot(args: TriggerArguments<CdcConfig>): Promise<void> {
  const slot = slotName(args);
  const { rows } = await execute(args.connection, { text: 'SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name OPERATOR(pg_catalog.=) $1::pg_catalog.name', values: [slot] });
  if (rows[0]?.active) {
    throw new PgActionsError('REPLICATION_SLOT_IN_USE', {
      message: `The replication slot "${slot}" is being read by a running subscription; close it before deactivating.`,
    });
  }
  if (rows.length) await execute(args.connection, { text: 'SELECT pg_catalog.pg_drop_replication_slot($1::pg_catalog.name)', values: [slot] });
  if (args.config.publication === undefined && (await publicationExists(args.connection, publicationName(args)))) {
    await execute(args.connection, { text: `DROP PUBLICATION IF EXISTS ${quoteIdentifier(publicationName(args))}` });
  }
}

async function serverVersionOf(connection: unknown): Promise<number> {
  const { rows } = await execute(connection, { text: "SELECT pg_catalog.current_setting('server_version_num')::pg_catalog.int4 AS version", readOnly: true });
  return rows[0]!.version as number;
}

async function publicationExists(connection: unknown, name: string): Promise<boolean> {
  const { rows } = await execute(connection, { text: 'SELECT 1 FROM pg_catalog.pg_publication WHERE pubname OPERATOR(pg_catalog.=) $1::pg_catalog.name', values: [name], readOnly: true });
  return rows.length > 0;
}

/** "replication slot … is active for PID …" (55006) as the error a host can act on. */
export function slotInUse(args: TriggerArguments<CdcConfig>, error: unknown): unknown {
  if (!(error instanceof PgActionsError) || error.sqlstate !== '55006') return error;
  return new PgActionsError('REPLICATION_SLOT_IN_USE', {
    message: `Another session is reading the replication slot "${slotName(args)}"; only one consumer may stream it at a time.`,
    cause: error,
  });
}
