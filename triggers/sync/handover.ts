/**
 * table-sync → table-changes-cdc without a gap or a stale row. Each batch of the sync is read in a
 * REPEATABLE READ transaction whose snapshot (xmin:xmax:xip) is recorded with the batch's key range.
 * A change of a row is then either in the row the sync read (its transaction is visible in that
 * batch's snapshot) or delivered by the slot afterwards (it is not): the handed-over CDC state
 * drops exactly the changes already in the copy (replication/handover-filter.ts). No snapshot has
 * to outlive a batch, so a killed sync resumes with the same guarantee; nothing waits for a
 * replication connection to stay open between polls.
 *
 * The slot must exist before the first batch, and the CDC state starts at its confirmed position
 * then: every transaction invisible to a batch commits after it, so the slot still has it.
 */
import { execute, PgActionsError, quoteQualifiedName } from '../../connection/index.js';
import type { TableSyncConfig } from '../../schemas/types.gen.js';
import type { TriggerArguments } from '../definition.js';
import { fingerprintOf, invalidState, positionOf, wrapState, type TriggerState } from '../state.js';
import { formatLsn } from '../replication/lsn.js';
import { checkSyncHandover } from './checked-handover.js';
import { slotState, type CdcConfig } from '../replication/slot.js';

export interface HandoverTable {
  schema: string;
  table: string;
  /** Primary key columns and their types (to compare a change's key with the batch bounds). */
  key: string[];
  types: string[];
  /**
   * The key columns' collations the batches were cut in (quote_ident, schema-qualified; null for a type
   * without one): the handover places keys in them only (REVIEW11 R174). Absent in states made before it.
   */
  collations?: (string | null)[];
  /**
   * The labels of the enums the key reaches, as the table's last batch read them (enum-labels.ts): the
   * bounds are label texts, so a rename before the handover ends is refused (REVIEW11 R175). Absent when
   * the key reaches no enum, and in states made before it.
   */
  labels?: string;
  /** In key order: [last key of the batch (null: to the end of the table), snapshot of its read]. */
  batches: [BatchBound, string][];
}

/**
 * A batch's last key: `{ text }`, each key column as PostgreSQL wrote it (COPY text), which casts
 * back to exactly that key whatever its type; in states made before it, the values as events carry
 * them (parsed: not exact for domains over bytea, arrays, jsonb numbers beyond a double, REVIEW5
 * R101-R103). null: the batch reached the end of the table.
 */
export type BatchBound = { text: string[] } | unknown[] | null;

export interface SyncHandover {
  /** table-changes-cdc's fingerprint (its tables and publication). */
  fingerprint: string;
  /** The slot's confirmed position when the sync started: the handed-over CDC state starts there. */
  lsn: string;
  /** Set once the sync is complete: every transaction a batch saw had committed before this WAL position. */
  until?: string;
  tables: HandoverTable[];
}

/** What the CDC state carries until its position passes `until`. */
export interface CdcHandover {
  until: string;
  tables: HandoverTable[];
  /**
   * Keys whose every change is delivered from now on (replication/handover-filter.ts, REVIEW4 R26):
   * [schema, table, the key as the server wrote it], matched with the key type's own equality (a
   * citext key 'A' is the key 'a').
   */
  reopenedKeys?: [string, string, string[]][];
  /** The same in states made before reopenedKeys: JSON of [schema, table, ...the key's parsed values], matched as that text. */
  reopened?: string[];
}

const CDC_KEY = 'table-changes-cdc';
const CDC_IDENTITY = ['tables', 'publication'];
const WAIT_STEP_MS = 20;

/** Starts a sync's handover: the slot of table-changes-cdc must exist; its position is where changes begin. */
export async function beginHandover(args: TriggerArguments<TableSyncConfig>): Promise<SyncHandover | undefined> {
  const target = args.config.handover;
  if (!target) return undefined;
  const cdcConfig: CdcConfig = { tables: target.tables ?? args.config.tables, ...(target.publication ? { publication: target.publication } : {}) };
  const published = new Set(cdcConfig.tables.map((table, i) => quoteQualifiedName(table, `config.handover.tables[${i}]`)));
  args.config.tables.forEach((table, i) => {
    if (!published.has(quoteQualifiedName(table, `config.tables[${i}]`))) {
      throw new PgActionsError('INVALID_INPUT', {
        message: `config.tables[${i}]: ${JSON.stringify(table)} is not among the tables of the table-changes-cdc trigger it hands over to`,
        problems: [`config.handover.tables must include ${JSON.stringify(table)}`],
      });
    }
  });
  const fingerprint = fingerprintOf(CDC_KEY, CDC_IDENTITY, cdcConfig as unknown as Record<string, unknown>);
  const slot = await slotState({ connection: args.connection, config: cdcConfig, fingerprint }); // REPLICATION_SLOT_MISSING: activate first
  await waitForCommitting(args.connection, args.config);
  return { fingerprint, lsn: formatLsn(slot.confirmedFlush), tables: [] };
}

/**
 * A transaction whose commit record is written (so the slot may already be past it) is briefly
 * still invisible to new snapshots (until it leaves the process array; with synchronous
 * replication, until the standby answered). The first batch must see it: wait until none is left.
 */
async function waitForCommitting(connection: unknown, config: TableSyncConfig): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { rows } = await execute(connection, {
      text: `SELECT pg_catalog.count(*)::int AS n
               FROM pg_catalog.unnest(pg_catalog.string_to_array(pg_catalog.split_part(pg_catalog.txid_current_snapshot()::pg_catalog.text, ':', 3), ',')) AS x
              WHERE x OPERATOR(pg_catalog.<>) '' AND pg_catalog.txid_status(x::bigint) OPERATOR(pg_catalog.=) 'committed'`,
      readOnly: true,
    });
    if (rows[0]!.n === 0) return;
    if (Date.now() > deadline) {
      throw new PgActionsError('QUERY_TIMEOUT', { message: `table-sync (${config.tables.join(', ')}): committed transactions stayed invisible for 60 s (synchronous replication waiting for a standby?); the handover cannot start.` });
    }
    await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS));
  }
}

/** The handover after one more batch (a new object: a stored state is never changed). */
export function recordBatch(
  handover: SyncHandover,
  index: number,
  shape: Omit<HandoverTable, 'batches'>,
  upTo: BatchBound,
  snapshot: string,
  until: string | undefined,
): SyncHandover {
  const tables = [...handover.tables];
  const batches = [...(tables[index]?.batches ?? [])];
  const previous = batches[batches.length - 1];
  // Consecutive batches read in the same snapshot share one range (a quiet table keeps the state small).
  if (previous && previous[1] === snapshot) batches[batches.length - 1] = [upTo, snapshot];
  else batches.push([upTo, snapshot]);
  tables[index] = { ...shape, batches };
  return { ...handover, tables, ...(until ? { until } : {}) };
}

/**
 * The state to start table-changes-cdc with after a complete sync made with `handover`: changes
 * from the slot's position at the sync's start, minus those already in the rows the sync read.
 */
export function handoverState(syncState: unknown): TriggerState {
  if (typeof syncState !== 'object' || syncState === null) positionOf('table-sync', '', syncState); // throws the usual message
  const { fingerprint } = syncState as { fingerprint?: string };
  const position = positionOf('table-sync', String(fingerprint), syncState) as { handover?: SyncHandover } | null;
  const handover = position?.handover;
  if (!handover) throw invalidState('state is from a table-sync without config.handover: it has no snapshots to hand over', ['config.handover must be set for the sync']);
  checkSyncHandover(handover);
  if (!handover.until) throw invalidState('the sync is not complete yet: poll table-sync until it returns no more events, then hand over its last state', ['state must be the last table-sync state']);
  const cdc: CdcHandover = { until: handover.until, tables: handover.tables };
  return wrapState(CDC_KEY, handover.fingerprint, { lsn: handover.lsn, handover: cdc });
}
