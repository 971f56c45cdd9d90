/**
 * Schema Overview: a schema's tables with their row counts (the reference connectors'
 * getSchemaOverview), estimated from the catalog by default, counted exactly on request.
 */
import { execute, PgActionsError, type Statement } from '../connection/index.js';
import inputSchema from '../schemas/actions/schema-overview.input.schema.json' with { type: 'json' };
import outputSchema from '../schemas/actions/schema-overview.output.schema.json' with { type: 'json' };
import type { SchemaOverviewInput, SchemaOverviewOutput } from '../schemas/types.gen.js';
import { defineAction, type ActionDefinition } from './definition.js';
import { COUNTED_KINDS, EXACT_LISTING_SQL, exactCountText, OVERVIEW_SQL } from './schema-overview-sql.js';

type OverviewTable = SchemaOverviewOutput['tables'][number];

/** The exact count: tables found locked by other sessions are left out, with who holds them. */
interface OverviewStatement extends Statement {
  lockedBy?: ReadonlyMap<string, readonly (number | null)[]>;
}

/**
 * How long the exact count waits for any one lock. Locks seen in pg_locks are never waited for;
 * this bounds one taken after that check, or one it cannot see (a table a row-level security
 * policy reads): a second attempt lists the locks again, then LOCK_NOT_AVAILABLE.
 */
export const EXACT_LOCK_WAIT_MS = 1000;
const EXACT_ATTEMPTS = 2;

const overview = defineAction<SchemaOverviewInput, SchemaOverviewOutput, OverviewStatement>({
  key: 'schema-overview',
  name: 'Schema Overview',
  description:
    "List a schema's tables with their row counts, columns, primary key and size. Counts are the planner's estimate " +
    '(free, but behind recent writes, and null for a table never analyzed) unless `exact` is on: then every table the role ' +
    'may SELECT from is counted with count(*) in one read-only statement, bounded by the step timeout. A table the role ' +
    'can see but not read keeps its estimate, with a note saying why; so does a table another session holds (or waits for) ' +
    'an ACCESS EXCLUSIVE lock on (ALTER TABLE, TRUNCATE, VACUUM FULL, REINDEX, LOCK TABLE…: counting it would wait for that ' +
    `session), the note naming the server process. A lock the count still meets is waited for at most ${EXACT_LOCK_WAIT_MS} ms, ` +
    'then the step fails with LOCK_NOT_AVAILABLE. Runs read-only; changes nothing.',
  input: inputSchema,
  output: outputSchema,
  example: {
    setup: [
      `CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL)`,
      `INSERT INTO users (name, email) VALUES ('John Doe', 'john@example.com'), ('Jane Roe', 'jane@example.com')`,
      `ANALYZE users`,
      `CREATE TABLE order_lines (order_id int, line int, sku text, PRIMARY KEY (order_id, line))`,
    ],
    input: {},
    output: {
      tables: [
        {
          name: 'order_lines', kind: 'table', rows: null, rowsExact: false, columns: ['order_id', 'line', 'sku'], primaryKey: ['order_id', 'line'],
          sizeBytes: 16384, note: 'No estimate yet: the table has never been analyzed. Ask for exact counts, or run ANALYZE.',
        },
        { name: 'users', kind: 'table', rows: 2, rowsExact: false, columns: ['id', 'name', 'email'], primaryKey: ['id'], sizeBytes: 49152 },
      ],
      tableCount: 2,
      rowCounts: { order_lines: null, users: 2 },
    },
  },
  async prepare({ input, connection }) {
    const listing: OverviewStatement = {
      text: OVERVIEW_SQL,
      values: [input.schema ?? null, input.includeViews ?? false],
      readOnly: true,
      timeoutMs: input.timeoutMs,
      maxResultBytes: input.maxResultBytes,
    };
    if (!input.exact) return listing;
    // The names to count come from the catalog, so only existing, readable tables are counted.
    const { rows } = await execute(connection, { ...listing, text: EXACT_LISTING_SQL });
    const schema = rows[0]?.schema_name as string | undefined;
    if (schema === undefined) throw schemaNotFound(input.schema);
    const countable = rows.filter((row) => row.readable && row.populated && COUNTED_KINDS.includes(row.kind as string));
    const lockedBy = new Map(countable.filter((row) => (row.locked_by as unknown[]).length > 0).map((row) => [row.name as string, row.locked_by as (number | null)[]]));
    const counted = countable.map((row) => row.name as string).filter((name) => !lockedBy.has(name));
    return { ...listing, text: exactCountText(schema, counted), values: [...listing.values!, ...counted], lockTimeoutMs: EXACT_LOCK_WAIT_MS, lockedBy };
  },
  shape({ rows }, { input }, statement) {
    if (rows.length === 0) throw schemaNotFound(input.schema);
    const tables = rows.filter((row) => row.name !== null).map((row) => overviewTable(row, input.exact ?? false, statement.lockedBy?.get(row.name as string)));
    return { tables, tableCount: tables.length, rowCounts: Object.fromEntries(tables.map((table) => [table.name, table.rows])) };
  },
});

export const schemaOverview: ActionDefinition<SchemaOverviewInput, SchemaOverviewOutput, OverviewStatement> = {
  ...overview,
  async run(args) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await overview.run(args);
      } catch (error) {
        // A lock taken after the listing: the next attempt's listing sees it and leaves its table out.
        if (!(error instanceof PgActionsError) || error.code !== 'LOCK_NOT_AVAILABLE' || !args.input.exact) throw error;
        if (attempt >= EXACT_ATTEMPTS) throw lockedOut(error);
      }
    }
  },
};

function lockedOut(error: PgActionsError): PgActionsError {
  return new PgActionsError('LOCK_NOT_AVAILABLE', {
    message:
      `Schema Overview could not count exactly: a relation the count reads waited more than ${EXACT_LOCK_WAIT_MS} ms for another session's lock ` +
      `(${EXACT_ATTEMPTS} attempts), on a table pg_locks did not show as locked before counting (e.g. one that a row-level security policy reads). Nothing was counted.`,
    fixes: [
      "Run the step again once the other session's ALTER TABLE, TRUNCATE, VACUUM FULL, REINDEX or LOCK TABLE has finished; this shows it: SELECT pid, mode, relation::pg_catalog.regclass FROM pg_catalog.pg_locks WHERE NOT granted OR mode OPERATOR(pg_catalog.=) 'AccessExclusiveLock';",
      'Turn exact off: the estimate reads only the catalog and waits for no lock.',
    ],
    sqlstate: error.sqlstate,
    cause: error,
  });
}

function overviewTable(row: Record<string, unknown>, exact: boolean, lockedBy?: readonly (number | null)[]): OverviewTable {
  const counted = typeof row.exact_rows === 'number';
  const table: OverviewTable = {
    name: row.name as string,
    kind: row.kind as OverviewTable['kind'],
    rows: counted ? (row.exact_rows as number) : (row.estimated_rows as number | null),
    rowsExact: counted,
    columns: row.columns as string[],
    primaryKey: row.primary_key as string[],
    sizeBytes: row.size_bytes as number | null,
  };
  const note = counted ? undefined : lockedBy ? lockedNote(lockedBy) : whyNotCounted(table, exact, row.readable === true, row.populated !== false);
  return note ? { ...table, note } : table;
}

function lockedNote(lockedBy: readonly (number | null)[]): string {
  const holders = lockedBy.map((pid) => (pid === null ? 'a prepared transaction' : `server process ${pid}`)).join(', ');
  return `Not counted: another session holds or waits for an ACCESS EXCLUSIVE lock on it (${holders}); counting would wait for it. The estimate is shown.`;
}

function whyNotCounted(table: OverviewTable, exact: boolean, readable: boolean, populated: boolean): string | undefined {
  if (table.kind === 'view') return 'Views are not counted: counting one runs its query.';
  if (!populated) return 'Not populated: the materialized view was created WITH NO DATA and never refreshed.';
  if (exact && table.kind === 'foreign table') return 'Foreign tables are not counted (a remote scan); the estimate is shown.';
  if (exact && !readable) return 'Not counted: the role may not SELECT from this table (or use its schema); the estimate is shown.';
  if (table.rows === null) return 'No estimate yet: the table has never been analyzed. Ask for exact counts, or run ANALYZE.';
  return undefined;
}

function schemaNotFound(schema: string | undefined): PgActionsError {
  const problem = schema === undefined
    ? 'input.schema is not given and no schema of the search_path exists'
    : `input.schema names a schema that does not exist: ${JSON.stringify(schema)} (names are case-sensitive)`;
  return new PgActionsError('INVALID_INPUT', { message: problem, problems: [problem] });
}
