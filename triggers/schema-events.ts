/**
 * schema-changes' event-trigger mode: install (when the role may create event triggers, which
 * PostgreSQL allows superusers only), detect and remove its objects, and read its outbox as
 * schema-change events. When the role may not, nothing is left behind and the catalog-snapshot
 * mode is used instead; activation says which.
 */
import { execute, isPgActionsError } from '../connection/index.js';
import { inTransaction } from '../connection/session.js';
import type { SchemaChangesEvent } from '../schemas/types.gen.js';
import { dropSchemaIfEmpty } from './activations.js';
import type { OutboxKind } from './outbox-reader.js';
import { LOCK_CLASS } from './outbox-sql.js';
import { knownSnapshotStatement, schemaEventNames, schemaEventRemovals, schemaEventStatements } from './schema-events-sql.js';

export const SCHEMA_CHANGES_OUTBOX: OutboxKind<SchemaChangesEvent> = {
  prefix: 'sc',
  trigger: 'schema-changes',
  toEvent(row, id) {
    const op = row.op as SchemaChangesEvent['op'];
    const event: SchemaChangesEvent = { id, op, schema: String(row.schema_name), table: String(row.table_name), columns: row.new as SchemaChangesEvent['columns'] };
    if (op === 'ALTER_TABLE') event.previousColumns = row.old as SchemaChangesEvent['columns'];
    return event;
  },
};

export const EVENT_TRIGGER_MODE = 'event trigger';
export const SNAPSHOT_MODE = 'catalog snapshots';

export interface SchemaEventsActivation {
  installed: boolean;
  mode: string;
  note: string;
}

/** SQLSTATE 42501: "permission denied to create event trigger" (or to create the pgactions schema). */
const INSUFFICIENT_PRIVILEGE = '42501';

export async function installSchemaEvents(connection: unknown, fingerprint: string, schemas: readonly string[]): Promise<SchemaEventsActivation> {
  const names = schemaEventNames(fingerprint);
  try {
    await inTransaction(connection, async (query) => {
      await query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_CLASS]);
      for (const statement of schemaEventStatements(names)) await query(statement);
      await query(`INSERT INTO ${names.watch} (schema_name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, [schemas]);
      await query(knownSnapshotStatement(names));
    });
  } catch (error) {
    if (!isPgActionsError(error) || error.sqlstate !== INSUFFICIENT_PRIVILEGE) throw error;
    // The transaction rolled back: nothing of the attempt is left.
    return { installed: false, mode: SNAPSHOT_MODE, note: `${SNAPSHOT_MODE}: this role may not create an event trigger (${error.message}); each poll compares the catalog with the last one` };
  }
  return { installed: true, mode: EVENT_TRIGGER_MODE, note: `${EVENT_TRIGGER_MODE}: DDL in the watched schemas is recorded in an outbox as it commits` };
}

/** Whether this configuration's event triggers are installed (then polls read the outbox). */
export async function schemaEventsInstalled(connection: unknown, fingerprint: string): Promise<boolean> {
  const names = schemaEventNames(fingerprint);
  const { rows } = await execute(connection, {
    text: 'SELECT count(*)::int AS n FROM pg_event_trigger WHERE evtname IN ($1, $2)',
    values: [names.ddlTrigger, names.dropTrigger],
    readOnly: true,
  });
  return rows[0]?.n === 2;
}

/** Removes exactly this configuration's event triggers, functions and tables (nothing when none are there). */
export async function removeSchemaEvents(connection: unknown, fingerprint: string): Promise<void> {
  const names = schemaEventNames(fingerprint);
  await inTransaction(connection, async (query) => {
    await query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_CLASS]);
    const [found] = await query(
      'SELECT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname IN ($1, $2)) OR to_regclass($3) IS NOT NULL OR to_regclass($4) IS NOT NULL AS any',
      [names.ddlTrigger, names.dropTrigger, names.outbox, names.known],
    );
    if (!found?.any) return;
    for (const statement of schemaEventRemovals(names)) await query(statement);
    await dropSchemaIfEmpty(query);
  });
}
