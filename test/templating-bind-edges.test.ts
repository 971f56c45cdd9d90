/** Edges of binding {{ }} in SQL that the other templating tests do not pin down. */
import { bindSqlTemplates } from '../templating/index.js';
import { createTestDatabase } from './harness/db.js';

test('{{ }} in a comment binds nothing: the SQL is left as written and its $n are not checked against the parameters', () => {
  for (const sql of ['SELECT $1 -- {{trigger.x}}', 'SELECT $1 /* {{trigger.x}} */']) {
    expect(bindSqlTemplates(sql, 0, { trigger: { x: 1 } }, 'input.query')).toEqual({ text: sql, values: [] });
  }
});

test('on a real server: a typed value before a subscript keeps the subscript; SQL without {{ is not read, so the server reports its own syntax error', async () => {
  const db = await createTestDatabase('bind_edges');
  try {
    // ($1::pg_catalog.int8[])[2]: without the parentheses, `::pg_catalog.int8[][2]` would be read as an array type.
    const subscripted = bindSqlTemplates('SELECT {{trigger.ids}}[2] AS second', 0, { trigger: { ids: [10, 20, 30] } }, 'input.query');
    expect(await db.sql(subscripted.text, subscripted.values)).toEqual([{ second: '20' }]);
    // Text the template reader cannot scan is not ours to refuse when it holds no template.
    const unterminated = "SELECT 'no closing quote";
    expect(bindSqlTemplates(unterminated, 0, {}, 'input.query')).toEqual({ text: unterminated, values: [] });
    await expect(db.sql(unterminated)).rejects.toMatchObject({ code: '42601' });
  } finally {
    await db.drop();
  }
}, 60_000);
