/** Query Rows: a SELECT, run read-only, rows streamed under the result cap. */
import inputSchema from '../schemas/actions/query-rows.input.schema.json' with { type: 'json' };
import outputSchema from '../schemas/actions/query-rows.output.schema.json' with { type: 'json' };
import type { QueryRowsInput, QueryRowsOutput } from '../schemas/types.gen.js';
import { defineAction } from './definition.js';
import { queryStatement } from './query-statement.js';

export const queryRows = defineAction<QueryRowsInput, QueryRowsOutput>({
  key: 'query-rows',
  name: 'Query Rows',
  description:
    'Execute a SELECT query to retrieve data. It runs inside a READ ONLY transaction, so a statement that ' +
    'would change data fails with READ_ONLY_VIOLATION and changes nothing.',
  input: inputSchema,
  output: outputSchema,
  example: {
    setup: [
      `CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL,
         status text NOT NULL DEFAULT 'active', created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz)`,
      `INSERT INTO users (name, email, status, created_at) VALUES
         ('John Doe', 'john@example.com', 'active', '2026-01-15T10:30:00Z'),
         ('Jane Roe', 'jane@example.com', 'inactive', '2026-01-10T08:00:00Z')`,
    ],
    input: {
      query: 'SELECT id, name, email, created_at\nFROM users\nWHERE status = $1\nORDER BY created_at DESC\nLIMIT 10',
      parameters: ['active'],
    },
    output: {
      rows: [{ id: 1, name: 'John Doe', email: 'john@example.com', created_at: '2026-01-15T10:30:00Z' }],
      rowCount: 1,
    },
  },
  prepare: ({ input, context }) => queryStatement(input, context, { readOnly: true }),
  shape: (result) => ({ rows: result.rows, rowCount: result.rows.length }),
});
