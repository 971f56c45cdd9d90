/** Update Rows: an UPDATE; any other kind of statement is refused before it runs. */
import inputSchema from '../schemas/actions/update-rows.input.schema.json' with { type: 'json' };
import outputSchema from '../schemas/actions/update-rows.output.schema.json' with { type: 'json' };
import type { UpdateRowsInput, UpdateRowsOutput } from '../schemas/types.gen.js';
import { defineAction } from './definition.js';
import { queryStatement } from './query-statement.js';
import { refuseOtherWrites } from './statement-kind.js';

export const updateRows = defineAction<UpdateRowsInput, UpdateRowsOutput>({
  key: 'update-rows',
  name: 'Update Rows',
  description:
    'Update existing rows with an UPDATE statement. Another kind of statement, a second statement, or a write ' +
    'hidden in a WITH clause is refused with INVALID_INPUT before anything runs (read from PostgreSQL\'s own ' +
    'parse tree); the UPDATE runs in a transaction committed only if the server reports it really was an UPDATE.',
  input: inputSchema,
  output: outputSchema,
  example: {
    setup: [
      `CREATE TABLE users (id serial PRIMARY KEY, name text, email text UNIQUE, status text, updated_at timestamptz)`,
      `INSERT INTO users (name, email, status) VALUES ('John Doe', 'john@example.com', 'active')`,
    ],
    input: {
      query: 'UPDATE users\nSET status = $1, updated_at = $2\nWHERE email = $3',
      parameters: ['inactive', '{{now}}', '{{trigger.email}}'],
    },
    context: { trigger: { email: 'john@example.com' }, now: '2026-01-15T10:30:00.000Z' },
    output: { rowCount: 1 },
  },
  prepare({ input, context }) {
    // Templates first: a broken one is a TEMPLATE_ERROR, and the check reads the text that is sent.
    const statement = queryStatement(input, context, { expectCommands: ['UPDATE'], actionName: 'Update Rows', discardRows: true });
    refuseOtherWrites(statement.text, 'UPDATE', 'Update Rows');
    return statement;
  },
  shape: (result) => ({ rowCount: result.rowCount }),
});
