/** Edges of binding {{ }} in SQL that the other templating tests do not pin down. */
import { bindSqlTemplates } from '../templating/index.js';

test('{{ }} in a comment binds nothing: the SQL is left as written and its $n are not checked against the parameters', () => {
  for (const sql of ['SELECT $1 -- {{trigger.x}}', 'SELECT $1 /* {{trigger.x}} */']) {
    expect(bindSqlTemplates(sql, 0, { trigger: { x: 1 } }, 'input.query')).toEqual({ text: sql, values: [] });
  }
});
