/** renderValue, renderStatement and hasTemplate: typed values, mixed text, missing paths, default. */
import pg from 'pg';
import { hasTemplate, renderStatement, renderValue, type TemplateContext } from '../templating/index.js';
import { PgActionsError } from '../connection/errors/index.js';
import { expectNoSecretIn } from './harness/secrets.js';

const now = new Date('2026-01-15T10:30:00.000Z');
const context: TemplateContext = {
  trigger: {
    email: 'john@example.com',
    name: "O'Brien & <Co>",
    count: 42,
    active: false,
    nickname: null,
    ids: [1, 2, 3],
    profile: { city: 'Oslo', tags: ['a'] },
    items: [{ id: 7 }, { id: 8 }],
    'weird key': 'w',
  },
  steps: { lookup: { rows: [{ id: 1, name: 'Ann' }], rowCount: 1 } },
  now,
};

function templateErrorOf(run: () => unknown): PgActionsError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(PgActionsError);
    expectNoSecretIn(error as PgActionsError);
    expect((error as PgActionsError).code).toBe('TEMPLATE_ERROR');
    return error as PgActionsError;
  }
  throw new Error('expected a TEMPLATE_ERROR');
}

describe('renderValue: a string that is exactly one expression keeps its type', () => {
  test.each([
    ['{{trigger.count}}', 42],
    ['{{trigger.active}}', false],
    ['{{trigger.nickname}}', null],
    ['{{trigger.ids}}', [1, 2, 3]],
    ['{{trigger.profile}}', { city: 'Oslo', tags: ['a'] }],
    ['{{steps.lookup.rows}}', [{ id: 1, name: 'Ann' }]],
    ['  {{trigger.count}}\n', 42],
    ['{{ trigger.count }}', 42],
    ['{{{trigger.count}}}', 42],
  ])('%j', (template, expected) => {
    expect(renderValue(template, context, 'f')).toEqual(expected);
  });

  test('returns the very same Date and array objects', () => {
    expect(renderValue('{{now}}', context, 'f')).toBe(now);
    expect(renderValue('{{trigger.ids}}', context, 'f')).toBe((context.trigger as { ids: unknown }).ids);
  });

  test('segment-literal paths work as in Handlebars', () => {
    expect(renderValue('{{trigger.items.[1].id}}', context, 'f')).toBe(8);
    expect(renderValue('{{trigger.[weird key]}}', context, 'f')).toBe('w');
    expect(renderValue('{{steps.lookup.rows.[0].name}}', context, 'f')).toBe('Ann');
  });
});

describe('renderValue: mixed text renders to a string', () => {
  test('literals and expressions', () => {
    expect(renderValue('Hello {{trigger.email}}! You have {{trigger.count}} items', context, 'f')).toBe(
      'Hello john@example.com! You have 42 items',
    );
  });

  test('no HTML escaping', () => {
    expect(renderValue('Dear {{trigger.name}}', context, 'f')).toBe("Dear O'Brien & <Co>");
    expect(renderValue('{{trigger.name}}', context, 'f')).toBe("O'Brien & <Co>");
  });

  test('dates as ISO 8601, objects and arrays as JSON, null as nothing, booleans as words', () => {
    expect(renderValue('at {{now}}', context, 'f')).toBe('at 2026-01-15T10:30:00.000Z');
    expect(renderValue('ids={{trigger.ids}} p={{trigger.profile}}', context, 'f')).toBe('ids=[1,2,3] p={"city":"Oslo","tags":["a"]}');
    expect(renderValue('[{{trigger.nickname}}] {{trigger.active}}', context, 'f')).toBe('[] false');
  });

  test('strings without templates, and non-strings, pass through as they are', () => {
    expect(renderValue('plain text { } }}', context, 'f')).toBe('plain text { } }}');
    expect(renderValue(5, context, 'f')).toBe(5);
    expect(renderValue(null, context, 'f')).toBeNull();
    expect(renderValue(now, context, 'f')).toBe(now);
    const untouched = { a: 1, b: ['x'] };
    expect(renderValue(untouched, context, 'f')).toBe(untouched);
  });

  test('arrays and plain objects are rendered leaf by leaf, without mutating the input', () => {
    const input = { to: '{{trigger.email}}', ids: ['{{trigger.count}}', 'n={{trigger.count}}', 3], '{{key}}': 'k' };
    expect(renderValue(input, context, 'f')).toEqual({ to: 'john@example.com', ids: [42, 'n=42', 3], '{{key}}': 'k' });
    expect(input.to).toBe('{{trigger.email}}');
  });

  test('Handlebars text rules: \\{{ is literal, ~ trims, comments render nothing', () => {
    expect(renderValue('\\{{trigger.count}} is {{trigger.count}}', context, 'f')).toBe('{{trigger.count}} is 42');
    expect(renderValue('a   {{~trigger.count~}}   b', context, 'f')).toBe('a42b');
    expect(renderValue('a{{! note }}b', context, 'f')).toBe('ab');
  });

  test('values from the context are never rendered again', () => {
    const sneaky = { trigger: { note: '{{trigger.secret}}', secret: 's3cret' } };
    expect(renderValue('{{trigger.note}}', sneaky, 'f')).toBe('{{trigger.secret}}');
    expect(renderValue('x {{trigger.note}}', sneaky, 'f')).toBe('x {{trigger.secret}}');
  });

  test('text that only looks like braces (a 2-D array literal) is not a template', () => {
    expect(renderValue('{{1,2},{3,4}}', context, 'f')).toBe('{{1,2},{3,4}}');
  });
});

describe('missing paths are errors that name the path and the field', () => {
  test('a typo', () => {
    const error = templateErrorOf(() => renderValue('{{trigger.emial}}', context, 'input.parameters[0]'));
    expect(error.message).toBe('input.parameters[0]: trigger.emial is not in the trigger data or earlier steps');
    expect(error.problems).toEqual([error.message]);
  });

  test('in mixed text, in nested values, in unknown roots and steps', () => {
    expect(templateErrorOf(() => renderValue('Hi {{trigger.nme}}', context, 'f')).message).toContain('f: trigger.nme is not');
    expect(templateErrorOf(() => renderValue({ a: ['{{trigger.x.y}}'] }, context, 'input.parameters[2]')).message).toMatch(
      /^input\.parameters\[2\]\.a\[0\]: trigger\.x\.y is not/,
    );
    expect(templateErrorOf(() => renderValue('{{email}}', context, 'f')).message).toContain('a path starts with trigger, steps or now');
    expect(templateErrorOf(() => renderValue('{{steps.nope.rows}}', context, 'f')).message).toContain('steps.nope.rows');
    expect(templateErrorOf(() => renderValue('{{now}}', { trigger: {} }, 'f')).message).toContain('now is not');
  });

  test('walking into a non-object is missing too', () => {
    expect(templateErrorOf(() => renderValue('{{trigger.email.length}}', context, 'f')).message).toContain('trigger.email.length');
    expect(templateErrorOf(() => renderValue('{{trigger.ids.[9]}}', context, 'f')).message).toContain('trigger.ids.[9]');
  });

  test('prototype properties never resolve', () => {
    for (const path of ['trigger.constructor', 'trigger.__proto__', 'trigger.[__proto__]', 'trigger.toString', 'trigger.ids.map', 'steps.hasOwnProperty']) {
      const error = templateErrorOf(() => renderValue(`{{${path}}}`, context, 'f'));
      expect(error.message).toContain('is not in the trigger data');
    }
    expect(renderValue('{{default trigger.constructor "safe"}}', context, 'f')).toBe('safe');
  });

  test('syntax errors and unsupported forms name the field', () => {
    expect(templateErrorOf(() => renderValue('{{trigger.', context, 'input.parameters[1]')).message).toMatch(/^input\.parameters\[1\]: .*not closed/);
    expect(templateErrorOf(() => renderValue('{{trigger..}}', context, 'g')).message).toMatch(/^g: /);
    expect(templateErrorOf(() => renderValue('{{#if trigger.active}}y{{/if}}', context, 'g')).message).toContain('block helpers');
    expect(templateErrorOf(() => renderValue('{{upper trigger.email}}', context, 'g')).message).toContain('"upper" is not a known helper');
    expect(templateErrorOf(() => renderValue('{{@root.trigger}}', context, 'g')).message).toContain('@-variables');
  });
});

describe('the default helper', () => {
  test('missing path → fallback, keeping the fallback type when alone', () => {
    expect(renderValue('{{default trigger.missing "anonymous"}}', context, 'f')).toBe('anonymous');
    expect(renderValue('{{default trigger.missing 0}}', context, 'f')).toBe(0);
    expect(renderValue('{{default trigger.missing null}}', context, 'f')).toBeNull();
    expect(renderValue('Hi {{default trigger.missing "you"}}!', context, 'f')).toBe('Hi you!');
  });

  test('null → fallback; a present value wins and keeps its type', () => {
    expect(renderValue('{{default trigger.nickname "anonymous"}}', context, 'f')).toBe('anonymous');
    expect(renderValue('{{default trigger.count 0}}', context, 'f')).toBe(42);
    expect(renderValue('{{default trigger.ids "none"}}', context, 'f')).toEqual([1, 2, 3]);
    expect(renderValue('{{default trigger.active true}}', context, 'f')).toBe(false);
  });

  test('fallbacks can be paths or nested defaults; a missing fallback path is still an error', () => {
    expect(renderValue('{{default trigger.missing trigger.email}}', context, 'f')).toBe('john@example.com');
    expect(renderValue('{{default trigger.a (default trigger.b "c")}}', context, 'f')).toBe('c');
    expect(templateErrorOf(() => renderValue('{{default trigger.a trigger.b}}', context, 'f')).message).toContain('trigger.b is not');
  });
});

describe('null in the context', () => {
  test('renders null when alone and empty text when mixed', () => {
    expect(renderValue('{{trigger.nickname}}', context, 'f')).toBeNull();
    expect(renderValue('nick: {{trigger.nickname}}.', context, 'f')).toBe('nick: .');
  });
});

describe('hasTemplate', () => {
  test.each([
    ['{{trigger.email}}', true],
    ['a {{ now }} b', true],
    ['{{default trigger.x "y"}}', true],
    ['no braces', false],
    ['{ single }', false],
    ['{{1,2},{3,4}}', false],
    ['{{}}', false],
  ])('%j → %s', (value, expected) => {
    expect(hasTemplate(value)).toBe(expected);
  });
});

describe('renderStatement', () => {
  test('renders parameters (typed) and binds the SQL templates after them', () => {
    const statement = renderStatement(
      'UPDATE users SET status = $1, updated_at = $2 WHERE email = $3 AND id = ANY({{trigger.ids}})',
      ['inactive', '{{now}}', '{{trigger.email}}'],
      context,
    );
    expect(statement).toEqual({
      text: 'UPDATE users SET status = $1, updated_at = $2 WHERE email = $3 AND id = ANY($4::pg_catalog.int8[])',
      values: ['inactive', now, 'john@example.com', [1, 2, 3]],
    });
  });

  test('names the parameter index in errors', () => {
    expect(templateErrorOf(() => renderStatement('SELECT $1, $2', ['ok', '{{trigger.nope}}'], context)).message).toMatch(
      /^input\.parameters\[1\]: trigger\.nope/,
    );
    expect(templateErrorOf(() => renderStatement('SELECT {{trigger.nope}}', undefined, context)).message).toMatch(/^input\.query: /);
  });

  test('is deterministic: the same inputs give equal output, and inputs are not changed', () => {
    const parameters = ['{{trigger.profile}}'];
    const first = renderStatement("SELECT $1, '{{trigger.name}}'", parameters, context);
    const second = renderStatement("SELECT $1, '{{trigger.name}}'", parameters, context);
    expect(second).toEqual(first);
    expect(parameters).toEqual(['{{trigger.profile}}']);
  });

  test('without templates the SQL and values come back unchanged', () => {
    expect(renderStatement('SELECT $1::int', [1], context)).toEqual({ text: 'SELECT $1::int', values: [1] });
    expect(renderStatement('SELECT 1', undefined, context)).toEqual({ text: 'SELECT 1', values: [] });
  });
});

describe('against a real server', () => {
  let client: pg.Client;
  beforeAll(async () => {
    client = new pg.Client(process.env.PG_TEST_URL);
    await client.connect();
  }, 60_000);
  afterAll(async () => {
    await client.end();
  }, 30_000);

  test('the output of renderStatement executes and returns the exact values', async () => {
    const evil = "x'); DROP TABLE users; -- \\ \" ☃ 𝄞";
    const ctx: TemplateContext = { trigger: { email: evil, n: 41, ids: [3, 1, 2] }, now };
    const statement = renderStatement(
      "SELECT '{{trigger.email}}'::text AS e, {{trigger.n}}::int + $1 AS n, 'Hi {{trigger.email}}' AS greeting, " +
        "array_length({{trigger.ids}}::int[], 1) AS len, {{now}}::timestamptz AS at, E'\\'{{trigger.n}}\\'' AS quoted",
      [1],
      ctx,
    );
    expect(statement.text).not.toContain('DROP');
    const result = await client.query(statement.text, statement.values);
    expect(result.rows).toEqual([{ e: evil, n: 42, greeting: `Hi ${evil}`, len: 3, at: now, quoted: "'41'" }]);
  });
});
