/**
 * Schema Changes: tables created, dropped or altered (columns, or a rename) in chosen schemas, the
 * reference's CREATE_TABLE / DESTROY_TABLE notifications. Two modes, chosen at activation:
 * - event trigger (the role may create one: superusers): DDL is recorded in an outbox as it
 *   commits (schema-events.ts), read with row-changes' at-least-once cursor, woken by NOTIFY;
 * - catalog snapshots (any role; also without activation): the state holds each watched table's
 *   columns, a poll reads pg_catalog and reports the difference.
 * The state says which mode it belongs to; a state keeps its mode.
 */
import configSchema from '../schemas/triggers/schema-changes.config.schema.json' with { type: 'json' };
import eventSchema from '../schemas/triggers/schema-changes.event.schema.json' with { type: 'json' };
import { execute, quoteIdentifier } from '../connection/index.js';
import type { SchemaChangesConfig, SchemaChangesEvent } from '../schemas/types.gen.js';
import { defineTrigger, type Batch, type RunningSubscription, type TriggerArguments, type TriggerDefinition } from './definition.js';
import { eventId } from './event-id.js';
import { acknowledgedPosition, readOutbox, type OutboxPosition } from './outbox-reader.js';
import { subscribeOutbox } from './outbox-subscription.js';
import { subscribeByPolling } from './polling-subscription.js';
import { installSchemaEvents, removeSchemaEvents, SCHEMA_CHANGES_OUTBOX, schemaEventsInstalled, SNAPSHOT_MODE, EVENT_TRIGGER_MODE } from './schema-events.js';

type Column = [name: string, type: string];
/** oid → [schema, table, columns] as of the last poll. */
export interface CatalogPosition {
  tables: Record<string, [string, string, Column[]]>;
}
/** Event-trigger mode: the outbox position. */
type Position = CatalogPosition | OutboxPosition;
const inOutbox = (position: Position): position is OutboxPosition => typeof (position as OutboxPosition).after === 'number';
/** Schema changes are few: a small batch, acknowledged changes kept a week. */
const OUTBOX_SETTINGS = { batchSize: 100, retentionMinutes: 7 * 24 * 60 };

const SNAPSHOT_SQL = `
SELECT c.oid::pg_catalog.int8 AS oid, n.nspname AS schema, c.relname AS name,
       coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
                FILTER (WHERE a.attnum IS NOT NULL), '[]') AS columns
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
 WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog."char"[]) AND n.nspname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[])
 GROUP BY c.oid, n.nspname, c.relname`;

async function snapshot(args: TriggerArguments<SchemaChangesConfig>): Promise<CatalogPosition> {
  const schemas = args.config.schemas ?? ['public'];
  schemas.forEach((schema, i) => quoteIdentifier(schema, `config.schemas[${i}]`)); // length and NUL checks, naming the field
  const { rows } = await execute(args.connection, { text: SNAPSHOT_SQL, values: [schemas], readOnly: true });
  return { tables: Object.fromEntries(rows.map((row) => [String(row.oid), [String(row.schema), String(row.name), row.columns as Column[]]])) };
}

const asColumns = (columns: Column[]) => columns.map(([name, type]) => ({ name, type }));

export function diff(before: CatalogPosition, after: CatalogPosition): SchemaChangesEvent[] {
  const events: SchemaChangesEvent[] = [];
  const event = (op: SchemaChangesEvent['op'], oid: string, was: CatalogPosition['tables'][string] | undefined, now: CatalogPosition['tables'][string] | undefined) => {
    const [schema, table, columns] = (now ?? was)!;
    const change: SchemaChangesEvent = { id: eventId('schema-changes', op, oid, was ?? null, now ?? null), op, schema, table, columns: asColumns(columns) };
    if (op === 'ALTER_TABLE') change.previousColumns = asColumns(was![2]);
    events.push(change);
  };
  for (const [oid, was] of Object.entries(before.tables)) {
    const now = after.tables[oid];
    if (!now) event('DROP_TABLE', oid, was, undefined);
    else if (JSON.stringify(now) !== JSON.stringify(was)) event('ALTER_TABLE', oid, was, now);
  }
  for (const [oid, now] of Object.entries(after.tables)) if (!before.tables[oid]) event('CREATE_TABLE', oid, undefined, now);
  return events;
}

async function pollSnapshot(args: TriggerArguments<SchemaChangesConfig>, position: CatalogPosition): Promise<Batch<SchemaChangesEvent, CatalogPosition>> {
  const now = await snapshot(args);
  return { events: diff(position, now), position: now };
}
/** What subscribeByPolling needs to poll snapshots (it only calls poll). */
const snapshotPolling = { poll: pollSnapshot } as unknown as TriggerDefinition;

export const schemaChanges = defineTrigger<SchemaChangesConfig, SchemaChangesEvent, Position>({
  key: 'schema-changes',
  name: 'Schema Changes',
  description:
    'Starts a flow when a table is created, dropped or altered (columns added, dropped, retyped, or the table renamed) in the ' +
    'chosen schemas. When the role may create an event trigger (superusers), activation installs one that records each change ' +
    'as it commits; otherwise (or without activation) each poll compares the catalog with the last one. activateTrigger and ' +
    'sampleEvents say which mode runs.',
  config: configSchema,
  event: eventSchema,
  example: {
    setup: [],
    config: { schemas: ['public'] },
    event: {
      id: 'mW1cE0b3Yq8zR5n2k7xA4g',
      op: 'CREATE_TABLE',
      schema: 'public',
      table: 'invoices',
      columns: [{ name: 'id', type: 'integer' }, { name: 'total', type: 'numeric(10,2)' }],
    },
  },
  guarantees: [
    'Event-trigger mode (activated by a superuser): every CREATE TABLE, ALTER TABLE (columns, rename, moved between schemas) and DROP TABLE in a watched schema is written to an outbox in the DDL\'s own transaction (a rolled-back DDL leaves no event) and delivered at least once, in commit order, with ids stable on redelivery; subscribers are woken by NOTIFY. Each change is seen, also ones that cancel out. A table moved out of the watched schemas is reported as dropped.',
    'Catalog-snapshot mode (any role; used when activation could not create the event trigger, or without activation): every difference between two polls is reported, including changes made while nobody was polling (the state holds the last snapshot). Changes that cancel out between two polls (a table created and dropped again) are not seen; a table dropped and re-created between polls is reported as a drop and a create. The state grows with the number of watched tables and columns.',
    "Event-trigger mode never fails DDL for its wake-up: no NOTIFY when the cluster's NOTIFY queue is more than half full (REVIEW12 R180) or in a session with `pg_actions.notify` set to `off` (set it for DDL in two-phase transactions: PostgreSQL refuses to PREPARE a transaction that sent a NOTIFY, R192); the change is read at the next poll.",
    'activateTrigger returns { mode, note } and sampleEvents notes say which mode runs; a state keeps the mode it started in (activate before the first poll to use the event trigger).',
    'Event-trigger mode is not used where a publication FOR ALL TABLES (PostgreSQL 15+: also FOR TABLES IN SCHEMA pgactions) exists: its outbox tables would be replicated to that publication\'s subscribers and stop them. activateTrigger then installs nothing and returns catalog-snapshot mode, its note naming the publication.',
    'deactivateTrigger removes exactly its event triggers, functions and tables (nothing else).',
    "Schema pgactions must be the activating role's or a superuser's (REVIEW9 R156): activation and deactivation refuse any other owner with PERMISSION_DENIED naming it. While the event triggers are installed, any DDL that leaves the schema with another owner is refused by them (42501) before they write anything, and so is every later DDL in the database if it was handed over with event triggers disabled, until ALTER SCHEMA pgactions OWNER TO a trusted role (which passes); polls are refused the same way.",

    'Activation and deactivation wait at most 5 s (half of statementTimeoutMs when that is shorter) for each lock, on the server, e.g. pg-actions\' activation lock (the pgactions schema\'s own, which a role without rights on it cannot hold), held while another row-changes or schema-changes activation or deactivation runs in the database: then they fail with LOCK_NOT_AVAILABLE naming it, having changed nothing.',
  ],
  privileges: [
    '-- catalog snapshots: nothing beyond CONNECT (pg_catalog is readable by every role)',
    'GRANT CONNECT ON DATABASE <database> TO <role>;',
    '-- event-trigger mode: PostgreSQL (up to 18 at least) lets only superusers create event triggers, so activate,',
    '-- poll and deactivate with a superuser connection (the outbox it installs is not granted to other roles).',
    '-- Any other role gets catalog-snapshot mode from activateTrigger, with nothing installed.',
    '-- Schema pgactions, when it exists, must be owned by that superuser connection\'s role or another superuser: any other owner is refused (PERMISSION_DENIED).',
  ],
  identity: ['schemas'],
  installs: true,
  async start(args) {
    if (await schemaEventsInstalled(args.connection, args.fingerprint)) return acknowledgedPosition(args.connection, args.fingerprint, SCHEMA_CHANGES_OUTBOX);
    return snapshot(args);
  },
  async poll(args, position) {
    if (inOutbox(position)) return readOutbox(args.connection, args.fingerprint, OUTBOX_SETTINGS, position.after, SCHEMA_CHANGES_OUTBOX);
    return pollSnapshot(args, position);
  },
  subscribe(args, position, deliver, onError): RunningSubscription {
    if (!inOutbox(position)) return subscribeByPolling(snapshotPolling, args, position, deliver as never, onError);
    const config = { ...OUTBOX_SETTINGS, intervalSeconds: args.config.intervalSeconds ?? 30 };
    return subscribeOutbox(args.connection, args.fingerprint, config, position, deliver, onError, SCHEMA_CHANGES_OUTBOX);
  },
  async activate(args) {
    const schemas = args.config.schemas ?? ['public'];
    schemas.forEach((schema, i) => quoteIdentifier(schema, `config.schemas[${i}]`));
    return installSchemaEvents(args.connection, args.fingerprint, schemas);
  },
  deactivate: (args) => removeSchemaEvents(args.connection, args.fingerprint),
  async sample(args) {
    const installed = await schemaEventsInstalled(args.connection, args.fingerprint);
    const now = await snapshot(args);
    const events = diff({ tables: {} }, now).slice(0, 3);
    const mode = installed
      ? `Mode: ${EVENT_TRIGGER_MODE} (installed by activateTrigger): DDL is recorded as it commits.`
      : `Mode: ${SNAPSHOT_MODE} (compares pg_catalog at each poll): no event trigger is installed for this configuration; activate as a superuser to use one (not possible where a publication FOR ALL TABLES would replicate its outbox: activateTrigger then says so).`;
    return { events, warnings: [], notes: [mode, 'The examples show existing tables as if just created.'] };
  },
});
