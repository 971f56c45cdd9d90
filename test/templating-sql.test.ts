/** bindSqlTemplates: {{ }} in SQL text always becomes $n, and the scanner respects SQL quoting. */
import { bindSqlTemplates, type TemplateContext } from '../templating/index.js';
import { PgActionsError } from '../connection/errors/index.js';
import { expectNoSecretIn } from './harness/secrets.js';

const now = new Date('2026-01-15T10:30:00.000Z');
const context: TemplateContext = {
  trigger: { email: 'a@b.c', name: 'Ann', count: 3, ids: [1, 2], table: 'users' },
  steps: { lookup: { id: 9 } },
  now,
};

const bind = (sql: string, authorParameterCount = 0) => bindSqlTemplates(sql, authorParameterCount, context, 'input.query');

function refusal(sql: string, authorParameterCount = 0): string {
  try {
    bind(sql, authorParameterCount);
  } catch (error) {
    expect(error).toBeInstanceOf(PgActionsError);
    expectNoSecretIn(error as PgActionsError);
    expect((error as PgActionsError).code).toBe('TEMPLATE_ERROR');
    expect((error as PgActionsError).message).toMatch(/^input\.query: /);
    return (error as PgActionsError).message;
  }
  throw new Error(`expected a TEMPLATE_ERROR for ${sql}`);
}

describe('bare expressions become $n after the author parameters', () => {
  test('numbering starts after the author count and keeps types', () => {
    expect(bind('SELECT * FROM users WHERE email = $1 AND id = ANY({{trigger.ids}}) AND n > {{trigger.count}}', 1)).toEqual({
      text: 'SELECT * FROM users WHERE email = $1 AND id = ANY($2::pg_catalog.int8[]) AND n > $3::pg_catalog.int8',
      values: [[1, 2], 3],
    });
  });

  test('the same expression reuses its number; a quoted use gets its own (issue 9, defect 6)', () => {
    expect(bind("SELECT {{trigger.count}}, {{trigger.count}}, '{{trigger.count}}', '{{ trigger.count }}', {{now}}")).toEqual({
      text: 'SELECT $1::pg_catalog.int8, $1::pg_catalog.int8, $2, $2, $3::pg_catalog.timestamptz',
      values: [3, 3, now],
    });
  });

  test('$n is kept apart from neighbouring words so it still lexes as a placeholder', () => {
    expect(bind('SELECT{{trigger.count}}AS n').text).toBe('SELECT $1::pg_catalog.int8 AS n');
    expect(bind('SELECT {{trigger.count}}{{trigger.name}}').text).toBe('SELECT $1::pg_catalog.int8 $2');
  });

  test('everything else of the SQL is untouched: whitespace, case, casts, the author $n', () => {
    const sql = 'select   $2::text ,\n\t{{trigger.email}}::citext\r\n  FROM   t WHERE x=$1';
    expect(bind(sql, 2).text).toBe('select   $2::text ,\n\t$3::citext\r\n  FROM   t WHERE x=$1');
  });

  test('SQL without templates is returned as is', () => {
    const sql = "SELECT '{' || '}' , $1 -- {{";
    expect(bind(sql, 1)).toEqual({ text: sql, values: [] });
  });

  test('an author $n above the parameter count would collide with template numbers: refused', () => {
    expect(refusal('SELECT $1, $3, {{trigger.count}}', 2)).toContain('uses $3 but 2 parameter(s) were given');
  });

  test('steps and default work in SQL too', () => {
    expect(bind("SELECT {{steps.lookup.id}}, {{default trigger.nope 'x'}}")).toEqual({ text: 'SELECT $1::pg_catalog.int8, $2', values: [9, 'x'] });
  });
});

describe('single-quoted literals', () => {
  test("'{{x}}' becomes $n without quotes, typed", () => {
    expect(bind("SELECT * FROM users WHERE email = '{{trigger.email}}' AND n = '{{trigger.count}}'")).toEqual({
      text: 'SELECT * FROM users WHERE email = $1 AND n = $2',
      values: ['a@b.c', 3],
    });
  });

  test('a literal mixing text and expressions becomes one $n holding the rendered string', () => {
    expect(bind("SELECT 'Hello {{trigger.name}}, you have {{trigger.count}}'::text")).toEqual({
      text: 'SELECT $1::text',
      values: ['Hello Ann, you have 3'],
    });
  });

  test("'' escapes are decoded in the value and do not confuse the scanner", () => {
    expect(bind("SELECT 'It''s {{trigger.name}}''s'")).toEqual({ text: 'SELECT $1', values: ["It's Ann's"] });
    // '' inside a literal does not end it: the {{x}} below is inside the literal "''{{…}}''".
    expect(bind("SELECT 'x''{{trigger.count}}''y', {{trigger.count}}")).toEqual({ text: 'SELECT $1, $2::pg_catalog.int8', values: ["x'3'y", 3] });
  });

  test("E'…' literals: backslash escapes are decoded and \\' does not end the literal", () => {
    expect(bind("SELECT E'\\'{{trigger.name}}\\'\\n\\t\\x41\\u00e9', {{trigger.count}}")).toEqual({
      text: 'SELECT $1, $2::pg_catalog.int8',
      values: ["'Ann'\n\tAé", 3],
    });
    expect(bind("SELECT E'{{trigger.email}}'")).toEqual({ text: 'SELECT $1', values: ['a@b.c'] });
  });

  test('literals without templates stay in the SQL as written', () => {
    expect(bind("SELECT 'a {b} c', E'\\\\', {{trigger.count}}, '{{1,2},{3,4}}'::int[]")).toEqual({
      text: "SELECT 'a {b} c', E'\\\\', $1::pg_catalog.int8, '{{1,2},{3,4}}'::int[]",
      values: [3],
    });
  });

  test('quotes inside a template do not end the SQL literal around it', () => {
    expect(bind(`SELECT '{{default trigger.nope 'it is'}}', "col"`)).toEqual({ text: 'SELECT $1, "col"', values: ['it is'] });
  });

  test("a type-name literal like INTERVAL '…' cannot take $n: refused with the cast to write instead", () => {
    expect(refusal("SELECT now() - INTERVAL '{{trigger.count}} days'")).toContain("'{{trigger.count}} days'::interval");
    expect(bind("SELECT now() - '{{trigger.count}} days'::interval").text).toBe('SELECT now() - $1::interval');
  });
});

describe('comments are left untouched', () => {
  test('-- line comments and nested /* */ block comments', () => {
    const sql = 'SELECT {{trigger.count}} -- {{trigger.nope}} \'\n/* a /* {{trigger.nope}} */ " {{x}} */ , {{now}}';
    expect(bind(sql)).toEqual({
      text: 'SELECT $1::pg_catalog.int8 -- {{trigger.nope}} \'\n/* a /* {{trigger.nope}} */ " {{x}} */ , $2::pg_catalog.timestamptz',
      values: [3, now],
    });
  });
});

describe('templates where a name goes are refused', () => {
  test.each([
    ['SELECT * FROM {{trigger.table}}', 'after FROM'],
    ['INSERT INTO {{trigger.table}} (a) VALUES (1)', 'after INTO'],
    ['UPDATE {{trigger.table}} SET a = 1', 'after UPDATE'],
    ['SELECT * FROM a JOIN {{trigger.table}} ON true', 'after JOIN'],
    ['DROP TABLE IF EXISTS {{trigger.table}}', 'after EXISTS'],
    ['CREATE INDEX i ON {{trigger.table}} (a)', 'after INDEX … ON'],
    ['SELECT * FROM public.{{trigger.table}}', 'next to "."'],
    ['SELECT {{trigger.table}}.id FROM users', 'next to "."'],
    ['SELECT 1 AS {{trigger.name}}', 'after AS'],
    ['SELECT * FROM t ORDER BY {{trigger.name}}', 'after BY'],
    ['SELECT 1::{{trigger.name}}', 'after "::"'],
  ])('%s', (sql, reason) => {
    const message = refusal(sql);
    expect(message).toContain(reason);
    expect(message).toContain("Use a fixed name, or Insert Row's table field");
  });

  test('inside a double-quoted identifier', () => {
    const message = refusal('SELECT "{{trigger.name}}" FROM t');
    expect(message).toContain('double-quoted identifier');
    expect(message).toContain('Use a fixed name');
  });

  test('FROM that takes a value is fine: IS DISTINCT FROM, EXTRACT(… FROM …), SUBSTRING(… FROM …)', () => {
    expect(bind('SELECT a IS DISTINCT FROM {{trigger.count}}, extract(year FROM {{now}}), substring(s FROM {{trigger.count}}) FROM (SELECT 1) t').text).toBe(
      'SELECT a IS DISTINCT FROM $1::pg_catalog.int8, extract(year FROM $2::pg_catalog.timestamptz), substring(s FROM $1::pg_catalog.int8) FROM (SELECT 1) t',
    );
  });

  test('ON in a join condition takes a value', () => {
    expect(bind('SELECT * FROM a JOIN b ON {{trigger.count}} = b.n').text).toBe('SELECT * FROM a JOIN b ON $1::pg_catalog.int8 = b.n');
  });
});

describe('dollar-quoted strings', () => {
  test.each([
    'DO $$ BEGIN RAISE NOTICE \'{{trigger.name}}\'; END $$',
    'CREATE FUNCTION f() RETURNS int AS $body$ SELECT {{trigger.count}} $body$ LANGUAGE sql',
  ])('%s is refused', (sql) => {
    expect(refusal(sql)).toContain('dollar-quoted string');
  });

  test('a dollar-quoted string without templates is skipped whole, quotes and all', () => {
    expect(bind("SELECT $q$ it's \"{{1,2}}\" -- $q$, {{trigger.count}}")).toEqual({ text: "SELECT $q$ it's \"{{1,2}}\" -- $q$, $1::pg_catalog.int8", values: [3] });
  });
});

describe('template syntax problems in SQL name the field and the place', () => {
  test('unclosed expression', () => {
    const message = refusal('SELECT 1,\n  {{trigger.count');
    expect(message).toContain('not closed');
    expect(message).toContain('line 2, column 3');
  });

  test('an unclosed {{ inside a SQL comment is comment text', () => {
    expect(bind('SELECT {{trigger.count}} -- see {{trigger.count\n')).toEqual({ text: 'SELECT $1::pg_catalog.int8 -- see {{trigger.count\n', values: [3] });
    expect(refusal("SELECT '{{trigger.count' -- {{trigger.count}}")).toContain('not closed');
    // A broken template that would decide where the comment ends is reported, never swallowed.
    expect(refusal('SELECT 1 -- see {{trigger.count\n + 1}}')).toContain('template syntax error');
    // With a comma it cannot be a template at all (see the 2-D array literal rule): comment text.
    expect(bind('SELECT 1 -- see {{trigger.count\n, {{trigger.count}}').text).toBe('SELECT 1 -- see {{trigger.count\n, $1::pg_catalog.int8');
  });

  test('unclosed literal around a template', () => {
    expect(refusal("SELECT '{{trigger.count}}")).toContain('PostgreSQL cannot read this SQL: unterminated quoted string (line 1, column 8)');
  });
});
