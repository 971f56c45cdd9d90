/** Values never reach SQL text; templates are parsed once per distinct text. */
import { jest } from '@jest/globals';
import Handlebars from 'handlebars';
import { bindSqlTemplates, renderStatement, renderValue, type TemplateContext } from '../templating/index.js';
import { BoundedCache } from '../templating/bounded-cache.js';
import { createTestDatabase } from './harness/db.js';

const ADVERSARIAL = [
  "'; DROP TABLE users; --",
  "' OR '1'='1",
  "''''",
  '\\',
  "\\'; SELECT pg_sleep(10); --",
  '"; DROP TABLE "users',
  '$1',
  '$$ $tag$',
  '*/ SELECT 1 /*',
  '{{trigger.secret}}',
  'ünïcødé ☃ 𝄞 \u202e',
  '\u0001\u001f\u007f',
  'a\u0000b',
  '\r\n\t',
];

const SQL_SHAPES = [
  'SELECT {{trigger.v}}',
  "SELECT '{{trigger.v}}'",
  "SELECT 'prefix {{trigger.v}} suffix'",
  "SELECT E'\\\\{{trigger.v}}\\''",
  'SELECT {{trigger.v}}::text AS a, $1 AS b -- note',
];

describe('adversarial values never appear in the SQL text', () => {
  test.each(ADVERSARIAL)('%j', (value) => {
    for (const sql of SQL_SHAPES) {
      const ctx: TemplateContext = { trigger: { v: value, secret: 'leak' } };
      const authorCount = sql.includes('$1') ? 1 : 0;
      const bound = bindSqlTemplates(sql, authorCount, ctx, 'input.query');
      // The text depends only on the SQL, never on the values.
      expect(bound.text).toBe(bindSqlTemplates(sql, authorCount, { trigger: { v: 'x', secret: 'x' } }, 'input.query').text);
      expect(bound.text).not.toContain('{{');
      if (value.length > 2) expect(bound.text).not.toContain(value);
      expect(bound.values).toHaveLength(1);
      expect(String(bound.values[0])).toContain(value);
    }
  });

  test('values round-trip exactly through renderValue and renderStatement', () => {
    for (const value of ADVERSARIAL) {
      const ctx: TemplateContext = { trigger: { v: value } };
      expect(renderValue('{{trigger.v}}', ctx, 'f')).toBe(value);
      expect(renderValue('<{{trigger.v}}>', ctx, 'f')).toBe(`<${value}>`);
      expect(renderStatement("SELECT $1, '{{trigger.v}}', 'x{{trigger.v}}'", ['{{trigger.v}}'], ctx).values).toEqual([
        value,
        value,
        `x${value}`,
      ]);
    }
  });

  test('the same values round-trip through a real server, and the users table they aim at is untouched', async () => {
    const db = await createTestDatabase('templating_safety');
    try {
      await db.sql('CREATE TABLE users (id int PRIMARY KEY, name text)');
      await db.sql(`INSERT INTO users VALUES (1, 'Ada'), (2, 'Grace')`);
      // PostgreSQL text cannot hold NUL, so that one value is checked above only.
      for (const value of ADVERSARIAL.filter((v) => !v.includes('\u0000'))) {
        const statement = renderStatement(
          "SELECT '{{trigger.v}}'::text AS whole, 'x{{trigger.v}}y'::text AS mixed, {{trigger.v}}::text AS bare, $1::text AS param",
          ['{{trigger.v}}'],
          { trigger: { v: value } },
        );
        expect(await db.sql(statement.text, statement.values)).toEqual([{ whole: value, mixed: `x${value}y`, bare: value, param: value }]);
      }
      // "'; DROP TABLE users; --" and friends were data: the table is there, rows and all.
      expect(await db.sql('SELECT id, name FROM users ORDER BY id')).toEqual([{ id: 1, name: 'Ada' }, { id: 2, name: 'Grace' }]);
    } finally {
      await db.drop();
    }
  }, 60_000);
});

describe('parsing cost', () => {
  afterEach(() => jest.restoreAllMocks());

  test('each distinct template text is parsed once', () => {
    const parse = jest.spyOn(Handlebars, 'parse');
    const key = `cached_${Date.now()}`; // a text no other test has parsed
    const ctx: TemplateContext = { trigger: { [key]: 1 }, now: new Date() };
    for (let i = 0; i < 50; i++) expect(renderValue(`{{trigger.${key}}}`, ctx, 'f')).toBe(1);
    expect(parse).toHaveBeenCalledTimes(1);

    parse.mockClear();
    for (let i = 0; i < 50; i++) expect(bindSqlTemplates(`SELECT {{trigger.${key}}}, {{now}}`, 0, ctx, 'q').values).toHaveLength(2);
    expect(parse).toHaveBeenCalledTimes(2); // two expressions, once each
  });

  test('strings and SQL without {{ are not parsed at all', () => {
    const parse = jest.spyOn(Handlebars, 'parse');
    renderValue('plain', {}, 'f');
    renderValue({ a: ['b', 1, { c: 'd' }] }, {}, 'f');
    bindSqlTemplates('SELECT $1', 1, {}, 'q');
    expect(parse).not.toHaveBeenCalled();
  });

  test('the cache is bounded and evicts the least recently used text', () => {
    const cache = new BoundedCache<number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1); // a is now the most recent
    cache.set('c', 3);
    expect(cache.size).toBe(2);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(1);
    expect(cache.get('c')).toBe(3);
  });
});
