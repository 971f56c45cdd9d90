/**
 * The "Templates in SQL" section of the query-based action pages: how a {{ }} in SQL text is
 * bound and typed, with an example whose "sent" text is computed by the code a step runs.
 */
import { renderStatement } from '../templating/index.js';

export const EXAMPLE_QUERY =
  "SELECT id FROM orders\nWHERE customer_id = {{trigger.customerId}}\n  AND paid = {{trigger.paid}}\n  AND placed_at > {{trigger.since}}::date\n" +
  "  AND note = '{{trigger.customerId}}'\n  AND status = {{trigger.status}}\n  AND tags && {{trigger.tags}}\n  AND meta @> {{trigger.filter}}";
export const EXAMPLE_TRIGGER = { customerId: 42, paid: true, since: '2026-01-01', status: 'shipped', tags: ['gift'], filter: { vip: true } };

export function sqlTemplateMarkdown(): string[] {
  const sent = renderStatement(EXAMPLE_QUERY, undefined, { trigger: EXAMPLE_TRIGGER, now: new Date('2026-01-15T10:30:00Z') });
  return [
    '## Templates in SQL',
    '',
    'A `{{ }}` in the SQL text is never pasted into it: it becomes a bound parameter numbered after `parameters` ',
    '(`$k+1`, `$k+2`, …). The SQL is read by PostgreSQL\'s own scanner (the server\'s parser compiled to ',
    'WebAssembly), so comments, `E\'…\'` escapes, continued strings and dollar quotes are where the server sees them.',
    '',
    '- A template inside a string literal, `\'{{trigger.x}}\'` or `\'Dear {{trigger.name}}\'`, makes the whole ',
    '  literal one parameter with no type: PostgreSQL infers it from the context, as for any quoted literal. ',
    '  `~` (`{{~x~}}`) trims the literal\'s text next to it.',
    '- A bare template in SQL code carries its value\'s type, the way JDBC (stringtype=unspecified) and Npgsql ',
    '  send typed parameters: an integer is sent as `$n::pg_catalog.int8` (an index on an int4 column is still used), any ',
    '  other number as `numeric`, a boolean as `boolean`, an object as `pg_catalog.jsonb`, a date as `pg_catalog.timestamptz`, and an ',
    '  array of one of those as the array type (`pg_catalog.int8[]`, …). A string, an array of strings, null and an empty ',
    '  array stay untyped, so uuid, enum, json and text columns decide. To compare a number with a text column, ',
    '  quote it (`\'{{x}}\'`) or cast it.',
    '- A template the SQL already casts, `{{x}}::int` or `CAST({{x}} AS int)`, is left to that cast.',
    '- Uses of the same expression share a parameter; a quoted and a bare use get separate ones.',
    '- A template inside a `--` or `/* */` comment is not rendered; a Handlebars comment `{{! … }}` in code ',
    '  reads as a space.',
    '- Where a name goes (after `FROM`, inside `"…"`, in a `$$` body, `INTERVAL \'…\'`) a template is refused: ',
    '  PostgreSQL cannot take a name as a parameter.',
    '',
    'The preview shows exactly the text sent, casts included. For example, with trigger data',
    '',
    '```json',
    JSON.stringify(EXAMPLE_TRIGGER),
    '```',
    '',
    '```sql',
    EXAMPLE_QUERY,
    '```',
    '',
    'is sent as',
    '',
    '```sql',
    sent.text,
    '```',
    '',
    'with parameters `' + JSON.stringify(sent.values) + '`.',
    '',
  ];
}
