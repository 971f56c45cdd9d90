/**
 * What the server says about a table's columns: types, nullability, defaults, keys. Used by
 * Insert Row (primary key for insertedId, json columns) and by the pickers a host shows.
 * Cached per connection and table for a short while, since a step may run thousands of times.
 */
import { execute } from './execute.js';
import { quoteQualifiedName } from './identifiers.js';
import { shortCache } from './short-cache.js';

export interface ColumnInfo {
  name: string;
  /** As PostgreSQL writes it: "integer", "character varying(255)", "jsonb", "text[]". */
  type: string;
  /** pg_type.typcategory: 'A' array, 'N' numeric, 'S' string, 'U' user (json, jsonb)… */
  category: string;
  isJson: boolean;
  isArray: boolean;
  nullable: boolean;
  default: string | null;
  isIdentity: boolean;
  isGenerated: boolean;
  inPrimaryKey: boolean;
  inUniqueKey: boolean;
  /** A value must be given on insert: NOT NULL, no default, not identity or generated. */
  requiredOnInsert: boolean;
}

export interface TableInfo {
  schema: string;
  name: string;
  columns: ColumnInfo[];
  primaryKey: string[];
}

const COLUMNS_SQL = `
SELECT n.nspname AS schema, c.relname AS table, a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       t.typcategory AS category, t.typname OPERATOR(pg_catalog.=) ANY ('{json,jsonb}'::pg_catalog.name[]) AS is_json, a.attnotnull AS not_null,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default_expr, a.attidentity OPERATOR(pg_catalog.<>) '' AS is_identity, a.attgenerated OPERATOR(pg_catalog.<>) '' AS is_generated,
       coalesce((SELECT pg_catalog.bool_or(i.indisprimary) FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey)), false) AS in_pk,
       coalesce((SELECT pg_catalog.bool_or(i.indisunique AND NOT i.indisprimary) FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey)), false) AS in_unique,
       pg_catalog.array_position((SELECT i.indkey::pg_catalog.int2[] FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary), a.attnum) AS pk_position
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
  JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) c.oid AND d.adnum OPERATOR(pg_catalog.=) a.attnum
 WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1::pg_catalog.text)::pg_catalog.oid
 ORDER BY a.attnum`;

interface ColumnRow {
  schema: string;
  table: string;
  name: string;
  type: string;
  category: string;
  is_json: boolean;
  not_null: boolean;
  default_expr: string | null;
  is_identity: boolean;
  is_generated: boolean;
  in_pk: boolean;
  in_unique: boolean;
  pk_position: number | null;
}

/** Table shapes, by connection and table: a short while (30 s), forgotten after DDL. */
const tableCache = shortCache<TableInfo | undefined>(30_000);

/**
 * Columns of `table` ("name" or "schema.name", resolved on the search_path as PostgreSQL does),
 * or undefined when no such table is visible to the user.
 */
export function describeTable(connection: unknown, table: string, field = 'input.table'): Promise<TableInfo | undefined> {
  // Validate and normalise the name the way the INSERT will quote it.
  const regclass = quoteQualifiedName(table, field);
  return tableCache.get(JSON.stringify([connection, regclass]), () => load(connection, regclass));
}

/** Forget cached table shapes (after DDL, or when a statement failed on a stale shape). */
export function forgetTables(): void {
  tableCache.clear();
}

async function load(connection: unknown, regclass: string): Promise<TableInfo | undefined> {
  const { rows } = await execute(connection, { text: COLUMNS_SQL, values: [regclass], readOnly: true });
  const columns = rows as unknown as ColumnRow[];
  if (columns.length === 0) return undefined;
  return {
    schema: columns[0]!.schema,
    name: columns[0]!.table,
    columns: columns.map((c) => ({
      name: c.name,
      type: c.type,
      category: c.category,
      isJson: c.is_json,
      isArray: c.category === 'A',
      nullable: !c.not_null,
      default: c.default_expr,
      isIdentity: c.is_identity,
      isGenerated: c.is_generated,
      inPrimaryKey: c.in_pk,
      inUniqueKey: c.in_unique,
      requiredOnInsert: c.not_null && c.default_expr === null && !c.is_identity && !c.is_generated,
    })),
    primaryKey: columns.filter((c) => c.pk_position !== null).sort((a, b) => a.pk_position! - b.pk_position!).map((c) => c.name),
  };
}
