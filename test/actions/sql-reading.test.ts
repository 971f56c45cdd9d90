/**
 * SQL read exactly as PostgreSQL reads it (issue 9): one regression test per templating defect
 * found in review, typed values on the server, and standard_conforming_strings kept on. Every
 * case runs through the public actions against a real server.
 */
import { preview } from '../../actions/index.js';
import { closeAll } from '../../connection/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { EXAMPLE_QUERY, EXAMPLE_TRIGGER } from '../../scripts/sql-template-docs.js';
import { failure, run } from './helpers.js';

const db = useTestDatabase('sqlreading');
const context = {
  trigger: { first: 'Ada', last: 'Lovelace', a: 'A', n: 42, m: 8, f: true, arr: [1, 2], obj: { k: [1, 'x'] }, id: 7, s: 'plain', bs: 'back\\slash', uid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' },
  now: new Date('2026-01-15T10:30:00.000Z'),
};

beforeAll(async () => {
  await db.sql('CREATE TABLE people (id int PRIMARY KEY, a text, b text, code text)');
  await db.sql('CREATE TABLE canary (id int PRIMARY KEY)');
  await db.sql('CREATE TABLE numbers (id int4 PRIMARY KEY, v int4)');
  await db.sql('INSERT INTO numbers SELECT g, g FROM generate_series(1, 20000) g');
  await db.sql('ANALYZE numbers');
});
beforeEach(async () => {
  await db.sql('TRUNCATE people, canary');
  await db.sql("INSERT INTO people VALUES (1, 'a0', 'b0', '7'), (7, 'a7', 'b7', 'x')");
  await db.sql('INSERT INTO canary SELECT generate_series(1, 3)');
});

const canaries = async () => (await db.sql<{ n: number }>('SELECT count(*)::int AS n FROM canary'))[0]!.n;
const person = async (id: number) => (await db.sql('SELECT a, b FROM people WHERE id = $1', [id]))[0];
const step = (query: string, parameters?: unknown[]) => ({ connection: db.config, input: parameters ? { query, parameters } : { query }, context });
const one = async (query: string, parameters?: unknown[]) => (await run('query-rows', step(query, parameters))).rows[0];

describe('the ten defects', () => {
  test('1. each quoted literal binds its own template, even after a Handlebars comment; a typo in the second is reported', async () => {
    const query = "UPDATE people SET a = '{{!-- n --}}{{trigger.first}}', b = '{{!-- n --}}{{trigger.last}}' WHERE id = 1";
    expect(await run('update-rows', step(query))).toEqual({ rowCount: 1 });
    expect(await person(1)).toEqual({ a: 'Ada', b: 'Lovelace' });
    const typo = await failure('update-rows', step(query.replace('trigger.last', 'trigger.lsat')));
    expect(typo.code).toBe('TEMPLATE_ERROR');
    expect(typo.message).toContain('trigger.lsat is not in the trigger data');
  });

  test('2a. a lone \\r ends a -- comment: the DELETE after it is seen and refused, nothing is deleted', async () => {
    const query = "WITH x AS (SELECT 1) -- c\r, gone AS (DELETE FROM canary RETURNING 1)\nUPDATE people SET a='z' WHERE id=1";
    const error = await failure('update-rows', step(query));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe('Update Rows only runs UPDATE statements; this one also contains a DELETE inside a WITH clause. Nothing was run.');
    expect(await canaries()).toBe(3);
    expect(await person(1)).toEqual({ a: 'a0', b: 'b0' });
    // The template after the \r is code: rendered (a missing path is an error, not literal text).
    expect((await failure('query-rows', step('SELECT 1 -- c\r, {{trigger.nope}}'))).code).toBe('TEMPLATE_ERROR');
    expect(await one('SELECT 1 -- c\r, {{trigger.first}} AS v')).toEqual({ '?column?': 1, v: 'Ada' });
  });

  test("2b. E'a'\\n'\\'' is one continued escape string: the data-modifying CTE after it is refused", async () => {
    const query = "WITH x AS (SELECT E'a'\n'\\'' AS s), gone AS (DELETE FROM canary RETURNING 1) UPDATE people SET a = 'z' WHERE id = 1";
    const error = await failure('update-rows', step(query));
    expect(error.message).toContain('a DELETE inside a WITH clause');
    expect(await canaries()).toBe(3);
    // A template in the continuation is part of the same value, escapes applied.
    expect(await one("SELECT E'x'\n'\\'{{trigger.first}}\\n' AS v")).toEqual({ v: "x'Ada\n" });
  });

  test('3. standard_conforming_strings switched off by one step is back on for the next', async () => {
    // With the setting off, '\'' would be one literal to the server, and the DELETE that our
    // reading (setting on) sees inside a string would run. With it on, the server reads what we read.
    await run('execute-query', step("SELECT set_config('standard_conforming_strings', 'off', false)"));
    const hidden = "WITH x AS (SELECT '\\'' AS s), gone AS (DELETE FROM canary RETURNING 1) UPDATE people SET a = 'z' WHERE id = 1 -- '";
    expect((await failure('update-rows', step(hidden))).code).toBe('SYNTAX_ERROR');
    expect(await canaries()).toBe(3);
    await run('execute-query', step("SELECT set_config('standard_conforming_strings', 'off', false)"));
    const row = await one("SELECT current_setting('standard_conforming_strings') AS scs, '\\' AS plain, '{{trigger.a}}\\' AS templated");
    expect(row).toEqual({ scs: 'on', plain: '\\', templated: 'A\\' });
  });

  test('3b. a database whose default is standard_conforming_strings = off: each session is switched on before the step', async () => {
    await db.sql(`ALTER DATABASE ${db.name} SET standard_conforming_strings = off`);
    try {
      await closeAll(); // new sessions take the database default
      const row = await one("SELECT current_setting('standard_conforming_strings') AS scs, '\\' AS plain, '{{trigger.a}}\\' AS templated");
      expect(row).toEqual({ scs: 'on', plain: '\\', templated: 'A\\' });
    } finally {
      await db.sql(`ALTER DATABASE ${db.name} RESET standard_conforming_strings`);
      await closeAll();
    }
  });

  test("4. E'…' octal and hex escapes are UTF-8 bytes; a bad \\u escape is refused as PostgreSQL refuses it", async () => {
    expect(await one("SELECT E'caf\\303\\251 {{trigger.a}}' AS v, E'caf\\xc3\\xa9' AS plain")).toEqual({ v: 'café A', plain: 'café' });
    const bad = await failure('query-rows', step("SELECT E'\\u00zz {{trigger.a}}'"));
    expect(bad.code).toBe('TEMPLATE_ERROR');
    expect(bad.message).toContain('invalid Unicode escape');
    const server = await failure('query-rows', step("SELECT E'\\u00zz'"));
    expect(server.message).toMatch(/invalid Unicode escape/i);
  });

  test('5. bare values carry their type to the server', async () => {
    expect(await one('SELECT {{trigger.n}} AS n, {{trigger.f}} AS f, {{trigger.arr}} AS arr, {{trigger.obj}} AS obj, {{now}} AS at')).toEqual({
      n: '42', // int8 comes back as text, exactly
      f: true,
      arr: ['1', '2'],
      obj: { k: [1, 'x'] },
      at: '2026-01-15T10:30:00Z',
    });
    expect(await one("SELECT jsonb_build_object('n', {{trigger.n}}) AS j, {{trigger.n}} + {{trigger.m}} AS sum")).toEqual({ j: { n: 42 }, sum: '50' });
    // A string is unspecified (upper() makes it text); a cast written in the SQL decides the type.
    expect(await one('SELECT upper({{trigger.s}}) AS s, pg_typeof({{trigger.n}}::int)::text AS cast, pg_typeof({{trigger.n}})::text AS bare')).toEqual({
      s: 'PLAIN',
      cast: 'integer',
      bare: 'bigint',
    });
  });

  test('6. quoted and bare uses of one path are separate parameters', async () => {
    const query = "SELECT id FROM people WHERE code = '{{trigger.id}}' OR id = {{trigger.id}} ORDER BY id";
    expect(await preview('query-rows', step(query))).toEqual({
      text: 'SELECT id FROM people WHERE code = $1 OR id = $2::pg_catalog.int8 ORDER BY id',
      values: [7, 7],
    });
    expect((await run('query-rows', step(query))).rows).toEqual([{ id: 1 }, { id: 7 }]);
  });

  test("7. a 2-D text array literal '{{a,b},{c,d}}' is SQL, not a template", async () => {
    expect(await one("SELECT '{{a,b},{c,d}}'::text[] AS arr, {{trigger.a}} AS v")).toEqual({ arr: [['a', 'b'], ['c', 'd']], v: 'A' });
  });

  test('8. a no-break space after {{ still opens a template, as in Handlebars', async () => {
    expect(await one('SELECT {{\u00a0trigger.first}} AS v')).toEqual({ v: 'Ada' });
  });

  test('9. ~ trims the text next to a template inside a SQL literal too', async () => {
    expect(await one("SELECT 'a  {{~trigger.first~}}  b' AS v, 'a  {{~!-- c --}}  b' AS w")).toEqual({ v: 'aAdab', w: 'a  b' });
  });

  test('10. a Handlebars comment in SQL code separates tokens, never joins them', async () => {
    expect(await preview('query-rows', step('SELECT 5 -{{!c}}- {{trigger.n}} AS v, 1{{! c }}2'))).toEqual({
      text: 'SELECT 5 - - $1::pg_catalog.int8 AS v, 1 2',
      values: [42],
    });
    expect(await one('SELECT 5 -{{!c}}- {{trigger.n}} AS v')).toEqual({ v: '47' });
  });
});

describe('statement kind from the parse tree', () => {
  test('Update Rows and Delete Rows refuse a second statement before anything runs', async () => {
    const error = await failure('update-rows', step("UPDATE people SET a = 'x' WHERE id = 1; DELETE FROM canary"));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe('Update Rows runs one UPDATE statement; this text holds 2 statements. Nothing was run.');
    expect((await failure('delete-rows', step('DELETE FROM people WHERE id = 7; DELETE FROM canary'))).code).toBe('INVALID_INPUT');
    expect(await canaries()).toBe(3);
    expect(await person(1)).toEqual({ a: 'a0', b: 'b0' });
    expect(await person(7)).toEqual({ a: 'a7', b: 'b7' });
  });

  test('CTEs that only read are fine; a write nested in a CTE is named', async () => {
    expect(await run('update-rows', step("WITH x AS (SELECT 1 AS id) UPDATE people SET a = 'w' WHERE id IN (SELECT id FROM x)"))).toEqual({ rowCount: 1 });
    const nested = "WITH x AS (SELECT 1), y AS (INSERT INTO canary VALUES (9) RETURNING id) DELETE FROM people WHERE id IN (SELECT id FROM y)";
    expect((await failure('delete-rows', step(nested))).message).toBe('Delete Rows only runs DELETE statements; this one also contains an INSERT inside a WITH clause. Nothing was run.');
    expect(await canaries()).toBe(3);
  });
});

describe('typed values', () => {
  test('an int8 parameter against an int4 column still uses its index (EXPLAIN)', async () => {
    const plan = async (query: string) => (await run('query-rows', step(query))).rows.map((row) => String(row['QUERY PLAN'])).join('\n');
    const byValue = await plan('EXPLAIN SELECT v FROM numbers WHERE id = {{trigger.n}}');
    expect(byValue).toMatch(/Index (Only )?Scan using numbers_pkey/);
    expect(byValue).toContain("'42'::bigint");
    expect(await plan('EXPLAIN SELECT v FROM numbers WHERE id = ANY({{trigger.arr}})')).toMatch(/Index (Only )?Scan using numbers_pkey|Bitmap Index Scan on numbers_pkey/);
    expect(await one('SELECT v FROM numbers WHERE id = {{trigger.n}}')).toEqual({ v: 42 });
  });

  test('strings stay unspecified, so the column decides (text, uuid)', async () => {
    expect(await one("SELECT '{{trigger.s}}' = {{trigger.s}} AS same, {{trigger.bs}} AS bs")).toEqual({ same: true, bs: 'back\\slash' });
    expect(await one("SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid = {{trigger.uid}} AS eq")).toEqual({ eq: true });
  });

  test("the docs' example runs as documented", async () => {
    await db.sql('CREATE TABLE orders (id int4 PRIMARY KEY, customer_id int4, paid boolean, placed_at timestamptz, note text, status text, tags text[], meta jsonb)');
    await db.sql(`INSERT INTO orders VALUES (1, 42, true, '2026-02-01', '42', 'shipped', '{gift}', '{"vip": true}'), (2, 42, false, '2026-02-01', '42', 'shipped', '{gift}', '{}')`);
    const rows = (await run('query-rows', { connection: db.config, input: { query: EXAMPLE_QUERY }, context: { trigger: EXAMPLE_TRIGGER } })).rows;
    expect(rows).toEqual([{ id: 1 }]);
  });
});
