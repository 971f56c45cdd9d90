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
 */
import { execute, quoteIdentifier } from '../../connection/index.js';
import type { TriggerArguments } from '../definition.js';
import { slotName, type CdcConfig } from './slot.js';

export const HEARTBEAT_PREFIX = 'pg-actions-heartbeat';
export const HEARTBEAT_SCHEMA = 'pgactions';
const TAG = 'pg-actions table-changes-cdc heartbeat';

export type HeartbeatMode = 'message' | 'table';

export function heartbeatMode(config: CdcConfig, serverVersion: number): HeartbeatMode {
  return config.heartbeat === 'table' || serverVersion < 140000 ? 'table' : 'message';
}

export function heartbeatTableName(args: TriggerArguments<CdcConfig>): string {
  return `${slotName(args)}_heartbeat`;
}

function qualified(args: TriggerArguments<CdcConfig>): string {
  return `${quoteIdentifier(HEARTBEAT_SCHEMA)}.${quoteIdentifier(heartbeatTableName(args))}`;
}

/** True for the change events of our heartbeat table (dropped, their commit still moves the position). */
export function isHeartbeatChange(args: TriggerArguments<CdcConfig>, event: { schema: string; table: string }): boolean {
  return event.schema === HEARTBEAT_SCHEMA && event.table === heartbeatTableName(args);
}

/** Creates the table (table mode) and publishes it in our own publication; idempotent. */
export async function installHeartbeat(args: TriggerArguments<CdcConfig>, serverVersion: number, ownPublication: string | undefined): Promise<void> {
  if (heartbeatMode(args.config, serverVersion) !== 'table') return;
  const table = qualified(args);
  await execute(args.connection, { text: `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(HEARTBEAT_SCHEMA)}` });
  await execute(args.connection, { text: `CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY DEFAULT 1 CHECK (id = 1), beat timestamptz NOT NULL DEFAULT now())` });
  await execute(args.connection, { text: `COMMENT ON TABLE ${table} IS '${TAG}'` });
  await execute(args.connection, { text: `INSERT INTO ${table} DEFAULT VALUES ON CONFLICT (id) DO NOTHING` });
  if (!ownPublication) return;
  const { rows } = await execute(args.connection, {
    text: 'SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3',
    values: [ownPublication, HEARTBEAT_SCHEMA, heartbeatTableName(args)],
    readOnly: true,
  });
  if (rows.length === 0) await execute(args.connection, { text: `ALTER PUBLICATION ${quoteIdentifier(ownPublication)} ADD TABLE ${table}` });
}

/** Drops the table, and the pgactions schema when nothing else is left in it. */
export async function removeHeartbeat(args: TriggerArguments<CdcConfig>): Promise<void> {
  await execute(args.connection, { text: `DROP TABLE IF EXISTS ${qualified(args)}` });
  await execute(args.connection, {
    text: `DO $$ BEGIN
             IF to_regnamespace('${HEARTBEAT_SCHEMA}') IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = to_regnamespace('${HEARTBEAT_SCHEMA}'))
                AND NOT EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = to_regnamespace('${HEARTBEAT_SCHEMA}'))
                AND NOT EXISTS (SELECT 1 FROM pg_type WHERE typnamespace = to_regnamespace('${HEARTBEAT_SCHEMA}') AND typrelid = 0 AND typelem = 0)
             THEN DROP SCHEMA ${quoteIdentifier(HEARTBEAT_SCHEMA)}; END IF; END $$`,
  });
}

/** One beat: WAL the consumer will see, so the position can move past what other databases wrote. */
export async function beat(args: TriggerArguments<CdcConfig>, mode: HeartbeatMode): Promise<void> {
  if (mode === 'message') await execute(args.connection, { text: 'SELECT pg_logical_emit_message(false, $1, $2)', values: [HEARTBEAT_PREFIX, ''] });
  else await execute(args.connection, { text: `UPDATE ${qualified(args)} SET beat = now()` });
}
