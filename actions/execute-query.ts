/** Execute Query: any single statement, DDL included. */
import inputSchema from '../schemas/actions/execute-query.input.schema.json' with { type: 'json' };
import outputSchema from '../schemas/actions/execute-query.output.schema.json' with { type: 'json' };
import type { ExecuteQueryInput, ExecuteQueryOutput } from '../schemas/types.gen.js';
import { defineAction } from './definition.js';
import { queryStatement } from './query-statement.js';

export const executeQuery = defineAction<ExecuteQueryInput, ExecuteQueryOutput>({
  key: 'execute-query',
  name: 'Execute Query',
  description:
    'Execute any single SQL statement (DDL, DML, maintenance). One statement per step; values are bound as $1, $2…. ' +
    'The step is its own transaction: a statement that would leave one open (BEGIN) is rolled back and refused.',
  input: inputSchema,
  output: outputSchema,
  example: {
    setup: [`CREATE TABLE users (id serial PRIMARY KEY, email text)`],
    input: { query: 'CREATE INDEX IF NOT EXISTS idx_users_email\nON users(email)' },
    output: { success: true, rowCount: 0 },
  },
  prepare: ({ input, context }) => queryStatement(input, context, { discardRows: true }),
  shape: (result) => ({ success: true, rowCount: result.rowCount }),
});
