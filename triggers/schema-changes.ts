/**
 * Schema Changes: tables created, dropped or altered (columns, or a rename) in chosen schemas, the
 * reference's CREATE_TABLE / DESTROY_TABLE notifications. Works by comparing catalog snapshots:
 * the state holds each watched table's columns, a poll reads pg_catalog and reports the
 * difference. Any role can do it (the catalog is readable by all); nothing is installed.
 */
import configSchema from '../schemas/triggers/schema-changes.config.schema.json' with { type: 'json' };
import eventSchema from '../schemas/triggers/schema-changes.event.schema.json' with { type: 'json' };
import { execute, quoteIdentifier } from '../connection/index.js';
import type { SchemaChangesConfig, SchemaChangesEvent } from '../schemas/types.gen.js';
import { defineTrigger, type TriggerArguments } from './definition.js';
import { eventId } from './event-id.js';

type Column = [name: string, type: string];
/** oid → [schema, table, columns] as of the last poll. */
export interface CatalogPosition {
  tables: Record<string, [string, string, Column[]]>;
}

const SNAPSHOT_SQL = `
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name,
       coalesce(json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
                FILTER (WHERE a.attnum IS NOT NULL), '[]') AS columns
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1)
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

export const schemaChanges = defineTrigger<SchemaChangesConfig, SchemaChangesEvent, CatalogPosition>({
  key: 'schema-changes',
  name: 'Schema Changes',
  description:
    'Starts a flow when a table is created, dropped or altered (columns added, dropped, retyped, or the table renamed) in the ' +
    'chosen schemas. Compares catalog snapshots between polls; nothing is installed and any role can use it.',
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
    'Every difference between two polls is reported, including changes made while nobody was polling (the state holds the last snapshot).',
    'Changes that cancel out between two polls (a table created and dropped again) are not seen; a table dropped and re-created between polls is reported as a drop and a create.',
    'Mode: catalog snapshots. An event-trigger mode (immediate, but it needs a superuser to create the event trigger) is not implemented: sampleEvents says which mode runs.',
    'The state grows with the number of watched tables and columns (it holds their names and types).',
  ],
  privileges: ['-- nothing beyond CONNECT: pg_catalog is readable by every role', 'GRANT CONNECT ON DATABASE <database> TO <role>;'],
  identity: ['schemas'],
  installs: false,
  start: snapshot,
  async poll(args, position) {
    const now = await snapshot(args);
    return { events: diff(position, now), position: now };
  },
  async sample(args) {
    const now = await snapshot(args);
    const events = diff({ tables: {} }, now).slice(0, 3);
    return { events, warnings: [], notes: ['Mode: catalog snapshots (compares pg_catalog at each poll); the examples show existing tables as if just created.'] };
  },
});
