/** Delete Rows: a DELETE; any other kind of statement is refused before it runs. */
import inputSchema from '../schemas/actions/delete-rows.input.schema.json' with { type: 'json' };
import outputSchema from '../schemas/actions/delete-rows.output.schema.json' with { type: 'json' };
import type { DeleteRowsInput, DeleteRowsOutput } from '../schemas/types.gen.js';
import { defineAction } from './definition.js';
import { queryStatement } from './query-statement.js';
import { refuseOtherWrites } from './statement-kind.js';

export const deleteRows = defineAction<DeleteRowsInput, DeleteRowsOutput>({
  key: 'delete-rows',
  name: 'Delete Rows',
  description:
    'Delete rows with a DELETE statement. Another kind of statement, a second statement, or a write hidden in ' +
    'a WITH clause is refused with INVALID_INPUT before anything runs (read from PostgreSQL\'s own parse tree); ' +
    'the DELETE runs in a transaction committed only if the server reports it really was a DELETE.',
  input: inputSchema,
  output: outputSchema,
  example: {
    setup: [
      `CREATE TABLE sessions (id serial PRIMARY KEY, token text, expires_at timestamptz)`,
      `INSERT INTO sessions (token, expires_at) SELECT 'old-' || g, '2026-01-01T00:00:00Z' FROM generate_series(1, 15) g`,
      `INSERT INTO sessions (token, expires_at) VALUES ('fresh', '2026-12-31T00:00:00Z')`,
    ],
    input: { query: 'DELETE FROM sessions\nWHERE expires_at < $1', parameters: ['{{now}}'] },
    context: { now: '2026-01-15T10:30:00.000Z' },
    output: { rowCount: 15 },
  },
  prepare({ input, context }) {
    // Templates first: a broken one is a TEMPLATE_ERROR, and the check reads the text that is sent.
    const statement = queryStatement(input, context, { expectCommands: ['DELETE'], actionName: 'Delete Rows', discardRows: true });
    refuseOtherWrites(statement.text, 'DELETE', 'Delete Rows');
    return statement;
  },
  shape: (result) => ({ rowCount: result.rowCount }),
});
