/**
 * The heartbeat that keeps a slot on quiet tables moving: while other databases (or unpublished
 * tables) write WAL, the slot's position only advances when something of ours reaches the
 * consumer, so each beat writes something that does, when the published tables were idle.
 * - 'message' (PostgreSQL 14+): pg_logical_emit_message(false, …). The function exists since 9.6,
 *   but pgoutput only passes messages on with its `messages` option, which came in 14: before,
 *   the message is decoded and dropped, and neither a subscription nor a poll learns a position.
 * - 'table' (any version; 'auto' before 14): an UPDATE of pgactions.<slot>_heartbeat, a one-row
 *   table activateTrigger creates and adds to the trigger's own publication, and deactivateTrigger
 *   drops. Its changes advance the position like any transaction and are never delivered as events.
 *   With a publication the user named it is not published: PostgreSQL before 15 still sends the
 *   empty transaction (15+ skips it, and uses messages on 'auto').
 *   The table is never created where it would reach anyone else: a FOR ALL TABLES publication (or,
 *   15+, one FOR TABLES IN SCHEMA pgactions) would ship its UPDATEs to subscribers that have no such
 *   table (their apply worker stops for good), and a role without CREATE cannot make it. Then 'auto'
 *   goes without it (the position follows keepalives only) and an explicit 'table' is refused before
 *   anything is created (HEARTBEAT_TABLE_UNAVAILABLE). A beat skips a table that is missing or has
 *   become published that way since, and never fails a poll.
 */
import { execute, PgActionsError, quoteIdentifier } from '../../connection/index.js';
import { HEARTBEAT_SCHEMA, heartbeatTable, heartbeatTablePlan, heartbeatUsesTable } from '../../connection/replication-readiness/heartbeat-table.js';
import type { ReadRows } from '../../connection/replication-readiness/schema-publications.js';
import type { TriggerArguments } from '../definition.js';
import { refuseUntrustedOwnerOn, trustCheckPlpgsql, untrustedOwner } from '../schema-owner.js';
import { OBJECT_PREFIX, slotName, type CdcConfig } from './slot.js';

export const HEARTBEAT_PREFIX = 'pg-actions-heartbeat';
export { HEARTBEAT_SCHEMA };
const TAG = 'pg-actions table-changes-cdc heartbeat';

export type HeartbeatMode = 'message' | 'table';

export function heartbeatMode(config: CdcConfig, serverVersion: number): HeartbeatMode {
  return heartbeatUsesTable(config.heartbeat, serverVersion) ? 'table' : 'message';
}

export function heartbeatTableName(args: TriggerArguments<CdcConfig>): string {
  return `${slotName(args)}_heartbeat`;
}

function qualified(args: TriggerArguments<CdcConfig>): string {
  return heartbeatTable(slotName(args));
}

/** True for the change events of any trigger's heartbeat table (dropped, their commit still moves the position): a publication FOR ALL TABLES made by the user can carry another trigger's. */
export function isHeartbeatChange(event: { schema: string; table: string }): boolean {
  return event.schema === HEARTBEAT_SCHEMA && event.table.startsWith(OBJECT_PREFIX) && event.table.endsWith('_heartbeat');
}

/**
 * Whether the table ($1) exists in schema $2, read from the catalogs: to_regclass and DROP TABLE IF
 * EXISTS raise 'permission denied for schema' where pgactions belongs to another role (any
 * row-changes / schema-changes activation makes it) and the least-privilege CDC role may not use it.
 */
const TABLE_EXISTS = `EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  WHERE n.nspname OPERATOR(pg_catalog.=) $2::pg_catalog.text AND c.relname OPERATOR(pg_catalog.=) $1::pg_catalog.text)`;

/**
 * Whether activation installs the table: false when the mode is not 'table', or on 'auto' when it
 * cannot be installed safely; an explicit 'table' that cannot is refused here, before the slot exists.
 */
export async function planHeartbeat(args: TriggerArguments<CdcConfig>): Promise<boolean> {
  const read: ReadRows = async (text, values) => (await execute(args.connection, { text, values, readOnly: true })).rows;
  const plan = await heartbeatTablePlan(read, slotName(args));
  if (heartbeatMode(args.config, plan.serverVersion) !== 'table') return false;
  if (!plan.problem) return true;
  if (args.config.heartbeat !== 'table') return false; // 'auto': no table heartbeat
  if (plan.untrustedOwner !== undefined) throw untrustedOwner(plan.untrustedOwner, 'table-changes-cdc activation (heartbeat table)');
  throw new PgActionsError('HEARTBEAT_TABLE_UNAVAILABLE', {
    message: `The heartbeat table ${HEARTBEAT_SCHEMA}.${heartbeatTableName(args)} (heartbeat 'table') cannot be used: ${plan.problem.why}. Nothing was created.`,
    fixes: plan.problem.fixes,
  });
}

/** Creates the table and publishes it in our own publication; idempotent. Call when planHeartbeat said so. */
export async function installHeartbeat(args: TriggerArguments<CdcConfig>, ownPublication: string | undefined): Promise<void> {
  const table = qualified(args);
  await execute(args.connection, { text: `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(HEARTBEAT_SCHEMA)}` });
  // Made by another role since planHeartbeat looked (REVIEW9 R156): refused; the activation drops its slot.
  await refuseUntrustedOwnerOn(args.connection, 'table-changes-cdc activation (heartbeat table)');
  await execute(args.connection, { text: `CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY DEFAULT 1 CHECK (id OPERATOR(pg_catalog.=) 1), beat pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now())` });
  await execute(args.connection, { text: `COMMENT ON TABLE ${table} IS '${TAG}'` });
  await execute(args.connection, { text: `INSERT INTO ${table} DEFAULT VALUES ON CONFLICT (id) DO NOTHING` });
  if (!ownPublication) return;
  const { rows } = await execute(args.connection, {
    text: `SELECT 1 FROM pg_catalog.pg_publication_tables WHERE pubname OPERATOR(pg_catalog.=) $1::pg_catalog.text
             AND schemaname OPERATOR(pg_catalog.=) $2::pg_catalog.text AND tablename OPERATOR(pg_catalog.=) $3::pg_catalog.text`,
    values: [ownPublication, HEARTBEAT_SCHEMA, heartbeatTableName(args)],
    readOnly: true,
  });
  if (rows.length === 0) await execute(args.connection, { text: `ALTER PUBLICATION ${quoteIdentifier(ownPublication)} ADD TABLE ${table}` });
}

/** Drops the table, and the pgactions schema when nothing else is left in it. */
export async function removeHeartbeat(args: TriggerArguments<CdcConfig>): Promise<void> {
  const { rows } = await execute(args.connection, { text: `SELECT ${TABLE_EXISTS} AS exists`, values: [heartbeatTableName(args), HEARTBEAT_SCHEMA], readOnly: true });
  if (!rows[0]!.exists) return; // nothing of ours (and the schema may be another role's)
  await execute(args.connection, { text: `DROP TABLE IF EXISTS ${qualified(args)}` });
  await execute(args.connection, {
    text: `DO $$ BEGIN
             IF pg_catalog.to_regnamespace('${HEARTBEAT_SCHEMA}') IS NOT NULL
                AND (SELECT pg_catalog.pg_has_role(nspowner, 'USAGE') FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) '${HEARTBEAT_SCHEMA}')
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace('${HEARTBEAT_SCHEMA}')::pg_catalog.oid)
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE pronamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace('${HEARTBEAT_SCHEMA}')::pg_catalog.oid)
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type WHERE typnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace('${HEARTBEAT_SCHEMA}')::pg_catalog.oid
                                AND typrelid OPERATOR(pg_catalog.=) 0::pg_catalog.oid AND typelem OPERATOR(pg_catalog.=) 0::pg_catalog.oid)
             THEN DROP SCHEMA ${quoteIdentifier(HEARTBEAT_SCHEMA)}; END IF; END $$`,
  });
}

/**
 * One beat: WAL the consumer will see, so the position can move past what other databases wrote.
 * The table is updated only if it exists ('auto' may have gone without it) and no publication
 * FOR ALL TABLES / FOR TABLES IN SCHEMA pgactions was created since (plpgsql plans the 15+ catalog
 * query only when it runs it).
 */
export async function beat(args: TriggerArguments<CdcConfig>, mode: HeartbeatMode): Promise<void> {
  if (mode === 'message') {
    await execute(args.connection, { text: 'SELECT pg_catalog.pg_logical_emit_message(false, $1::pg_catalog.text, $2::pg_catalog.text)', values: [HEARTBEAT_PREFIX, ''] });
    return;
  }
  const table = qualified(args); // quoted identifiers of hex names: no quote to escape in the literal
  await execute(args.connection, {
    // The schema's owner first (REVIEW9 R156): one it does not trust could have put a trigger on the table.
    // Then what other roles left there (R162): a table of theirs under this name, with a trigger, made
    // while the table was missing (never created: 'auto' or 'message' at activation; dropped since).
    text: `DO $$ BEGIN
             ${trustCheckPlpgsql('table-changes-cdc heartbeat')}
             IF pg_catalog.to_regclass('${table}') IS NULL OR EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE puballtables) THEN RETURN; END IF;
             IF pg_catalog.current_setting('server_version_num')::int OPERATOR(pg_catalog.>=) 150000 THEN
               IF EXISTS (SELECT 1 FROM pg_catalog.pg_publication_namespace WHERE pnnspid OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace('${HEARTBEAT_SCHEMA}')::pg_catalog.oid) THEN RETURN; END IF;
             END IF;
             UPDATE ${table} SET beat = pg_catalog.now(); END $$`,
  });
}
