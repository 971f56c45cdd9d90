/**
 * What a host needs to fill its dropdowns: the schemas, tables and columns the connection's user
 * can see. Every query goes through execute(…, { readOnly: true }) so pickers get the same pools,
 * timeouts and friendly errors as steps, and can never change anything. Results are plain JSON.
 */
import { describeTable, forgetTables, type ColumnInfo } from './catalog.js';
import { PgActionsError } from './errors/index.js';
import { execute } from './execute.js';
import { quoteQualifiedName } from './identifiers.js';

export interface SchemaEntry {
  name: string;
}

export type TableKind = 'table' | 'view' | 'materialized view' | 'partitioned table' | 'foreign table';

export interface TableEntry {
  schema: string;
  name: string;
  kind: TableKind;
  /** The planner's estimate (pg_class.reltuples); null when never analysed, and for views. */
  estimatedRows: number | null;
}

export interface ListTablesOptions {
  /** Only this schema's tables; all visible schemas when omitted. */
  schema?: string;
}

// System schemas hold nothing a flow author picks; pg_toast* and pg_temp* are per-session internals.
const USER_SCHEMA = `n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[])
   AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\\_toast%' AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\\_temp%'
   AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')`;

const SCHEMAS_SQL = `SELECT n.nspname AS name FROM pg_catalog.pg_namespace n WHERE ${USER_SCHEMA} ORDER BY n.nspname`;

// Partitions are left out: rows go through their partitioned parent, which is listed.
// "Can see" means any table or column privilege, the way psql's \dp reads it.
const TABLES_SQL = `
SELECT n.nspname AS schema, c.relname AS name,
       CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'r' THEN 'table' WHEN c.relkind OPERATOR(pg_catalog.=) 'v' THEN 'view'
            WHEN c.relkind OPERATOR(pg_catalog.=) 'm' THEN 'materialized view' WHEN c.relkind OPERATOR(pg_catalog.=) 'p' THEN 'partitioned table'
            WHEN c.relkind OPERATOR(pg_catalog.=) 'f' THEN 'foreign table' END AS kind,
       -- Never analysed: reltuples is -1 on PostgreSQL 14+, and 0 with no pages and no stats before.
       CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'v' OR c.reltuples OPERATOR(pg_catalog.<) 0::real
              OR (c.reltuples OPERATOR(pg_catalog.=) 0::real AND c.relpages OPERATOR(pg_catalog.=) 0
                  AND coalesce(s.last_analyze, s.last_autoanalyze, s.last_vacuum, s.last_autovacuum) IS NULL)
            THEN NULL ELSE pg_catalog.round(c.reltuples::pg_catalog.float8) END AS estimated_rows
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid OPERATOR(pg_catalog.=) c.oid
 WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,v,m,p,f}'::pg_catalog."char"[])
   AND NOT c.relispartition
   AND ${USER_SCHEMA}
   AND ($1::pg_catalog.text IS NULL OR n.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.text)
   AND (pg_catalog.has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
        OR pg_catalog.has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
 ORDER BY n.nspname, c.relname`;

export async function listSchemas(connection: unknown): Promise<SchemaEntry[]> {
  const { rows } = await execute(connection, { text: SCHEMAS_SQL, readOnly: true });
  return rows.map((row) => ({ name: row.name as string }));
}

export async function listTables(connection: unknown, options: ListTablesOptions = {}): Promise<TableEntry[]> {
  const schema = options.schema;
  if (schema !== undefined && (typeof schema !== 'string' || schema === '')) throw invalid('schema must be a non-empty string');
  const { rows } = await execute(connection, { text: TABLES_SQL, values: [schema ?? null], readOnly: true });
  return rows.map((row) => ({
    schema: row.schema as string,
    name: row.name as string,
    kind: row.kind as TableKind,
    estimatedRows: row.estimated_rows as number | null,
  }));
}

/**
 * The columns of `table` ("name" or "schema.name", each part quoted as Insert Row quotes it).
 * A table that does not exist fails with the server's own UNDEFINED_TABLE error.
 */
export async function listColumns(connection: unknown, table: string): Promise<ColumnInfo[]> {
  if (typeof table !== 'string' || table === '') throw invalid('table must be a non-empty string');
  const info = await describeTable(connection, table, 'table');
  if (info) return info.columns.map((column) => ({ ...column }));
  // No columns found: let PostgreSQL itself say the table is missing (42P01, with its wording).
  await execute(connection, { text: 'SELECT $1::pg_catalog.regclass', values: [quoteQualifiedName(table, 'table')], readOnly: true });
  // It exists after all: a table without columns, or one created since a cached miss.
  forgetTables();
  return (await describeTable(connection, table, 'table'))?.columns.map((column) => ({ ...column })) ?? [];
}

function invalid(problem: string): PgActionsError {
  return new PgActionsError('INVALID_INPUT', { message: problem, problems: [problem] });
}
