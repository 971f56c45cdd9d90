/**
 * schema-changes' event-trigger mode: install (when the role may create event triggers, which
 * PostgreSQL allows superusers only), detect and remove its objects, and read its outbox as
 * schema-change events. When the role may not, nothing is left behind and the catalog-snapshot
 * mode is used instead; activation says which.
 */
import { configOf, execute, isPgActionsError } from '../connection/index.js';
import { inTransaction } from '../connection/session.js';
import type { SchemaChangesEvent } from '../schemas/types.gen.js';
import type { OutboxKind } from './outbox-reader.js';
import { refuseWhenPublished } from './outbox-publications.js';
import { lockActivations, retryingRaces } from './activation-lock.js';
import { SCHEMA } from './outbox-sql.js';
import { dropSchemaIfEmpty } from './pgactions-schema.js';
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
    await retryingRaces(connection, () => inTransaction(connection, async (query) => {
      await refuseWhenPublished(query, 'schema-changes');
      await lockActivations(query, true, 'schema-changes activation');
      for (const statement of schemaEventStatements(names)) await query(statement);
      await query(`INSERT INTO ${names.watch} (schema_name) SELECT pg_catalog.unnest($1::pg_catalog.text[]) ON CONFLICT DO NOTHING`, [schemas]);
      await query(knownSnapshotStatement(names));
    }, { name: 'schema-changes activation', again: 'activate schema-changes again' }));
  } catch (error) {
    if (isPgActionsError(error) && error.code === 'OUTBOX_WOULD_BE_PUBLISHED') {
      return { installed: false, mode: SNAPSHOT_MODE, note: `${SNAPSHOT_MODE}: no event trigger was installed (${error.message}); each poll compares the catalog with the last one` };
    }
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
    text: 'SELECT pg_catalog.count(*)::int AS n FROM pg_catalog.pg_event_trigger WHERE evtname OPERATOR(pg_catalog.=) ANY (ARRAY[$1::pg_catalog.name, $2::pg_catalog.name])',
    values: [names.ddlTrigger, names.dropTrigger],
    readOnly: true,
  });
  return rows[0]?.n === 2;
}

/** Removes exactly this configuration's event triggers, functions and tables (nothing when none are there). */
export async function removeSchemaEvents(connection: unknown, fingerprint: string): Promise<void> {
  const names = schemaEventNames(fingerprint);
  await retryingRaces(connection, () => inTransaction(connection, async (query) => {
    await lockActivations(query, false, 'schema-changes deactivation');
    const [found] = await query(
      `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname OPERATOR(pg_catalog.=) ANY (ARRAY[$1::pg_catalog.name, $2::pg_catalog.name]))
              OR pg_catalog.to_regclass($3::pg_catalog.text) IS NOT NULL OR pg_catalog.to_regclass($4::pg_catalog.text) IS NOT NULL AS any`,
      [names.ddlTrigger, names.dropTrigger, names.outbox, names.known],
    );
    if (!found?.any) return;
    for (const statement of schemaEventRemovals(names)) await query(statement);
    await dropSchemaIfEmpty(query);
  }, { name: 'schema-changes deactivation', again: 'deactivate schema-changes again' }));
}

const OBJECTS_SQL = `
SELECT substring(o.name from 'sc_([0-9a-f]{16})') AS fingerprint, o.kind, o.name FROM (
  SELECT c.relname::pg_catalog.text AS name, 'table' AS kind FROM pg_catalog.pg_class c
   WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace($1::pg_catalog.text)::pg_catalog.oid AND c.relkind OPERATOR(pg_catalog.=) 'r'
  UNION ALL SELECT p.proname::pg_catalog.text, 'function' FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace($1::pg_catalog.text)::pg_catalog.oid
  UNION ALL SELECT e.evtname::pg_catalog.text, 'event trigger' FROM pg_catalog.pg_event_trigger e WHERE e.evtname::pg_catalog.text OPERATOR(pg_catalog.~) '^pg_actions_sc_[0-9a-f]{16}_(ddl|drop)$') AS o
 WHERE o.name OPERATOR(pg_catalog.~) 'sc_[0-9a-f]{16}'
 ORDER BY 1, 2, 3`;

const PARTS = ['table:outbox', 'table:cursor', 'table:watch', 'table:known', 'function:on_ddl', 'function:on_drop', 'function:read', 'event trigger:ddl', 'event trigger:drop'];

/** schema-changes' event-trigger activations (listActivations shows them with row-changes'), complete or not. */
export async function schemaEventActivations(connection: unknown): Promise<{ trigger: 'schema-changes'; fingerprint: string; complete: boolean; outdated: boolean; objects: string[] }[]> {
  configOf(connection);
  const { rows } = await execute(connection, { text: OBJECTS_SQL, values: [SCHEMA], readOnly: true });
  const found = new Map<string, { parts: Set<string>; objects: string[] }>();
  for (const row of rows) {
    const fingerprint = String(row.fingerprint);
    const name = String(row.name);
    const entry = found.get(fingerprint) ?? { parts: new Set<string>(), objects: [] };
    found.set(fingerprint, entry);
    entry.parts.add(`${String(row.kind)}:${name.slice(name.indexOf(`sc_${fingerprint}_`) + `sc_${fingerprint}_`.length)}`);
    entry.objects.push(row.kind === 'event trigger' ? `event trigger ${name}` : `${String(row.kind)} ${SCHEMA}.${name}`);
  }
  return [...found].map(([fingerprint, entry]) => ({
    trigger: 'schema-changes' as const,
    fingerprint,
    complete: PARTS.every((part) => entry.parts.has(part)),
    outdated: false,
    objects: entry.objects,
  }));
}
