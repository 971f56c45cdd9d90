/**
 * Insert Row: one row from a column → value map. The only action that writes identifiers into
 * SQL, and it does so through connection/identifiers (quoted, never concatenated raw).
 */
import { describeTable, PgActionsError, quoteIdentifier, quoteQualifiedName, type Statement } from '../connection/index.js';
import inputSchema from '../schemas/actions/insert-row.input.schema.json' with { type: 'json' };
import outputSchema from '../schemas/actions/insert-row.output.schema.json' with { type: 'json' };
import type { InsertRowInput, InsertRowOutput } from '../schemas/types.gen.js';
import { renderValue } from '../templating/index.js';
import { defineAction } from './definition.js';

interface InsertStatement extends Statement {
  /** Primary-key columns of the table, in key order, to read insertedId from the returned row. */
  primaryKey: readonly string[];
}

export const insertRow = defineAction<InsertRowInput, InsertRowOutput, InsertStatement>({
  key: 'insert-row',
  name: 'Insert Row',
  description:
    'Insert a new row into a table. Column names are quoted for you; values are bound, and may be templates. ' +
    'Returns the primary key value and the row as stored. A json/jsonb column takes an object or array as it is; ' +
    'a string is read as JSON text when it is valid JSON (so "42" is stored as the number 42), and as a JSON string otherwise.',
  input: inputSchema,
  output: outputSchema,
  example: {
    setup: [
      `CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL,
         status text NOT NULL DEFAULT 'active', created_at timestamptz NOT NULL DEFAULT now())`,
    ],
    input: {
      table: 'users',
      columns: { name: '{{trigger.name}}', email: '{{trigger.email}}', status: 'active', created_at: '{{now}}' },
    },
    context: { trigger: { name: 'John Doe', email: 'john@example.com' }, now: '2026-01-15T10:30:00.000Z' },
    output: {
      insertedId: 1,
      rowCount: 1,
      row: { id: 1, name: 'John Doe', email: 'john@example.com', status: 'active', created_at: '2026-01-15T10:30:00Z' },
    },
  },
  async prepare({ input, context, connection }) {
    const table = renderValue(input.table, context, 'input.table');
    if (typeof table !== 'string' || table === '') {
      throw new PgActionsError('INVALID_INPUT', { message: 'input.table must render to a table name', problems: ['input.table must render to a table name'] });
    }
    const names = Object.keys(input.columns);
    // Names are checked (NUL, empty, over 63 bytes) before the catalog lookup sends the table name.
    const text = insertText(table, names);
    const info = await describeTable(connection, table);
    const values = names.map((name) => {
      const value = renderValue(input.columns[name], context, columnPath(name));
      return info?.columns.find((column) => column.name === name)?.isJson ? asJsonText(value) : value;
    });
    return {
      text,
      values,
      // In a transaction committed only once the returned row has arrived within the cap.
      expectCommands: ['INSERT'],
      actionName: 'Insert Row',
      timeoutMs: input.timeoutMs,
      maxResultBytes: input.maxResultBytes,
      primaryKey: info?.primaryKey ?? [],
    };
  },
  shape(result, _args, statement) {
    const row = result.rows[0] ?? {};
    const key = statement.primaryKey;
    const insertedId = key.length === 0 ? null : key.length === 1 ? (row[key[0]!] as string | number) : Object.fromEntries(key.map((k) => [k, row[k]]));
    return { insertedId, rowCount: result.rowCount, row };
  },
});

/** The INSERT for a table and column names: every name quoted, every value a parameter. */
export function insertText(table: string, names: readonly string[]): string {
  const target = quoteQualifiedName(table, 'input.table');
  if (names.length === 0) return `INSERT INTO ${target} DEFAULT VALUES RETURNING *`;
  const columns = names.map((name) => quoteIdentifier(name, columnPath(name))).join(', ');
  return `INSERT INTO ${target} (${columns}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING *`;
}

function columnPath(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? `input.columns.${name}` : `input.columns[${JSON.stringify(name)}]`;
}

/**
 * A json/jsonb column takes JSON text. Objects, arrays, numbers and booleans are serialised; a
 * string that already is a JSON document is sent as it is, any other string as a JSON string.
 */
function asJsonText(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') {
    try {
      JSON.parse(value);
      return value;
    } catch {
      return JSON.stringify(value);
    }
  }
  return JSON.stringify(value instanceof Date ? value.toISOString() : value);
}
