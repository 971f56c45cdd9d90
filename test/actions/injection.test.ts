/**
 * SQL injection, end to end against a real server. Hostile text is placed everywhere a step
 * takes data: (a) parameters, (b) {{ }} inside SQL text (quoted and bare), (c) Insert Row
 * column names and values, (d) the Insert Row table. Each attempt must either store and return
 * the text byte for byte, or fail cleanly with a PgActionsError code; and at the end the
 * canary row is untouched (same bytes, same row version), no table appeared or vanished, no
 * role was created, and an event log (event trigger for DDL, statement trigger on the canary)
 * shows that only the intended statements ran.
 */
import { preview } from '../../actions/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failure, ident, run } from './helpers.js';

const CANARY = `canary 🐤 'quoted' "double" \\ end`;
const SECRET = 'SECRET-FROM-TRIGGER';

const HOSTILE: readonly (readonly [label: string, value: string])[] = [
  ['a single quote', "'"],
  ['a double quote', '"'],
  ['quote, DROP TABLE, comment', "'; DROP TABLE canary; --"],
  ['identifier quote, DROP TABLE', '"; DROP TABLE canary; --'],
  ['CREATE ROLE', "'); CREATE ROLE pg_actions_pwned SUPERUSER; --"],
  ['tautology', "' OR '1'='1"],
  ['statement batch', '1; DELETE FROM canary'],
  ['a placeholder', '$1'],
  ['more placeholders', '$2 $3 $99999'],
  ['dollar quotes', '$$'],
  ['tagged dollar quote', "$x$'; DROP TABLE canary; $x$"],
  ['an empty block comment', '/* */'],
  ['a comment around a quote', "/* ' */ OR 1=1 --"],
  ['a backslash', '\\'],
  ['backslash-quote', "\\'; DROP TABLE canary; --"],
  ['E-string text', "E'\\\\x00'"],
  ['bytea hex text', '\\x00ff'],
  ['emoji', '👩‍💻🎉 🇺🇳'],
  ['right-to-left text and override', 'مرحبا \u202Eevil\u202C שלום'],
  ['combining marks', 'e\u0301 Z\u0351\u0300a\u0308'],
  ['zero-width characters', 'a\u200Bb\u200Cc\u200Dd\uFEFF'],
  ['control characters', '\u0001\u001f\u007f\r\n\t'],
  ['a template as data', '{{trigger.secret}}'],
  ['a default helper as data', '{{default trigger.secret "x"}}'],
  ['an escaped template as data', '\\{{trigger.secret}}'],
  ['an array literal', '{1,2,"x"}'],
  ['a JSON document', '{"a": [1, "b"]}'],
  ['the word NULL', 'NULL'],
  ['reserved word select', 'select'],
  ['reserved word user', 'user'],
  ['reserved words with a dot', 'order.table'],
  ['spaces around', '  padded name  '],
  ['63 bytes of multi-byte letters', 'é'.repeat(31) + 'x'],
  ['__proto__', '__proto__'],
  ['constructor', 'constructor'],
  ['an empty string', ''],
  ['100k characters', ("'; DROP TABLE canary; -- \"$1\" {{trigger.secret}} ").repeat(2500).slice(0, 100_000)],
];

const NUL = 'a\u0000b';

const db = useTestDatabase('injection');
let tablesBefore: unknown[];
let canaryBefore: unknown[];

const connection = () => db.config;
const tables = () =>
  db.sql(`SELECT table_schema, table_name, table_type FROM information_schema.tables
          WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`);
const canary = () => db.sql(`SELECT id, v, encode(convert_to(v, 'UTF8'), 'hex') AS bytes, xmin::text AS version, ctid::text AS place FROM canary`);
const storeCount = async () => (await db.sql<{ n: number }>('SELECT count(*)::int AS n FROM store'))[0]!.n;
/** The text as PostgreSQL holds it, in hex, to compare byte for byte with the UTF-8 we sent. */
const hex = (value: string) => Buffer.from(value, 'utf8').toString('hex');
const codePoints = (value: string) => [...value].length;

/** A name PostgreSQL can hold as a column name: non-empty, at most 63 bytes, no NUL. */
const validName = (value: string) => value !== '' && Buffer.byteLength(value) <= 63 && !value.includes('\0');
const NAMES = HOSTILE.map(([, value]) => value).filter(validName);

beforeAll(async () => {
  await db.sql('CREATE TABLE canary (id int, v text)');
  await db.sql('INSERT INTO canary VALUES (1, $1)', [CANARY]);
  await db.sql('CREATE TABLE store (id serial PRIMARY KEY, v text)');
  // A column for every hostile text that can be a name, so Insert Row can target each of them.
  await db.sql(`CREATE TABLE named (id serial PRIMARY KEY, ${NAMES.map((name) => `${ident(name)} text`).join(', ')})`);
  // The event log: every DDL command (event trigger) and every write to the canary (statement
  // trigger, fires even when no row matches) from here on. Only intended statements may appear.
  await db.sql('CREATE TABLE event_log (id serial PRIMARY KEY, kind text NOT NULL, tag text NOT NULL)');
  await db.sql(`CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
                BEGIN INSERT INTO event_log (kind, tag) VALUES ('ddl', tg_tag); END $$`);
  await db.sql('CREATE EVENT TRIGGER log_ddl ON ddl_command_start EXECUTE FUNCTION log_ddl()');
  await db.sql(`CREATE FUNCTION log_canary() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN INSERT INTO event_log (kind, tag) VALUES ('canary', tg_op); RETURN NULL; END $$`);
  await db.sql('CREATE TRIGGER log_canary AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON canary FOR EACH STATEMENT EXECUTE FUNCTION log_canary()');
  await db.sql('TRUNCATE event_log');
  tablesBefore = await tables();
  canaryBefore = await canary();
  expect(canaryBefore).toEqual([{ id: 1, v: CANARY, bytes: hex(CANARY), version: expect.any(String), place: '(0,1)' }]);
}, 60_000);

describe.each(HOSTILE)('%s', (_label, x) => {
  const context = { trigger: { x, secret: SECRET } };

  test('(a) as a parameter of query-rows, update-rows and execute-query: bound, round-trips exactly', async () => {
    const selected = await run('query-rows', {
      connection: connection(),
      input: {
        query: 'SELECT $1::text AS v, length($1::text) AS n, encode(convert_to($1::text, $2), $3) AS bytes, (SELECT count(*) FROM canary WHERE v = $1) AS hits',
        parameters: ['{{trigger.x}}', 'UTF8', 'hex'],
      },
      context,
    });
    expect(selected.rows).toHaveLength(1);
    const row = selected.rows[0]!;
    expect(row.v === x).toBe(true);
    expect(row).toEqual({ v: x, n: codePoints(x), bytes: hex(x), hits: '0' });

    // Given directly (not through a template) when it holds no template of its own.
    if (!x.includes('{{')) {
      const direct = await run('query-rows', { connection: connection(), input: { query: 'SELECT $1::text AS v', parameters: [x] } });
      expect(direct.rows[0]!.v === x).toBe(true);
    }

    const updated = await run('update-rows', {
      connection: connection(),
      input: { query: 'UPDATE canary SET v = v WHERE v = $1', parameters: ['{{trigger.x}}'] },
      context,
    });
    expect(updated).toEqual({ rowCount: 0 });

    const before = await storeCount();
    const inserted = await run('execute-query', {
      connection: connection(),
      input: { query: 'INSERT INTO store (v) VALUES ($1)', parameters: ['{{trigger.x}}'] },
      context,
    });
    expect(inserted).toEqual({ success: true, rowCount: 1 });
    expect(await storeCount()).toBe(before + 1);
    const [stored] = await db.sql<{ v: string; bytes: string }>(`SELECT v, encode(convert_to(v, 'UTF8'), 'hex') AS bytes FROM store ORDER BY id DESC LIMIT 1`);
    expect(stored!.v === x).toBe(true);
    expect(stored!.bytes).toBe(hex(x));
  });

  test('(b) as {{ }} inside SQL text, quoted and bare: bound as $n, never part of the text', async () => {
    const query =
      "SELECT '{{trigger.x}}'::text AS quoted, {{trigger.x}}::text AS bare, 'pre {{trigger.x}} post' AS mixed, " +
      "E'{{trigger.x}}'::text AS e_string, (SELECT count(*) FROM canary WHERE v = '{{trigger.x}}') AS hits";
    const shown = await preview('query-rows', { connection: connection(), input: { query }, context });
    expect(shown).toEqual({
      // Quoted and bare uses of one path are separate parameters (a bare use may carry a type).
      text: 'SELECT $1::text AS quoted, $2::text AS bare, $3 AS mixed, $1::text AS e_string, (SELECT count(*) FROM canary WHERE v = $1) AS hits',
      values: [x, x, `pre ${x} post`],
    });
    const output = await run('query-rows', { connection: connection(), input: { query }, context });
    expect(output).toEqual({ rows: [{ quoted: x, bare: x, mixed: `pre ${x} post`, e_string: x, hits: '0' }], rowCount: 1 });
    expect(output.rows[0]!.quoted === x && output.rows[0]!.bare === x).toBe(true);

    expect(await run('update-rows', { connection: connection(), input: { query: "UPDATE canary SET v = v WHERE v = '{{trigger.x}}'" }, context })).toEqual({ rowCount: 0 });
    expect(await run('delete-rows', { connection: connection(), input: { query: 'DELETE FROM canary WHERE v = {{trigger.x}}' }, context })).toEqual({ rowCount: 0 });

    expect(await run('execute-query', { connection: connection(), input: { query: "INSERT INTO store (v) VALUES ('{{trigger.x}}')" }, context })).toEqual({
      success: true,
      rowCount: 1,
    });
    const [stored] = await db.sql<{ v: string; bytes: string }>(`SELECT v, encode(convert_to(v, 'UTF8'), 'hex') AS bytes FROM store ORDER BY id DESC LIMIT 1`);
    expect(stored!.v === x).toBe(true);
    expect(stored!.bytes).toBe(hex(x));
  });

  test('(c) as an Insert Row value: stored and returned byte for byte', async () => {
    const viaTemplate = await run('insert-row', { connection: connection(), input: { table: 'store', columns: { v: '{{trigger.x}}' } }, context });
    expect(viaTemplate.rowCount).toBe(1);
    expect(viaTemplate.row.v === x).toBe(true);
    const [stored] = await db.sql<{ v: string; bytes: string }>(`SELECT v, encode(convert_to(v, 'UTF8'), 'hex') AS bytes FROM store WHERE id = $1`, [viaTemplate.insertedId]);
    expect(stored!.v === x).toBe(true);
    expect(stored!.bytes).toBe(hex(x));

    if (!x.includes('{{')) {
      const direct = await run('insert-row', { connection: connection(), input: { table: 'store', columns: { v: x } } });
      expect(direct.row.v === x).toBe(true);
    }
  });

  test('(c) as an Insert Row column name: quoted, so it names exactly that column or none', async () => {
    const before = await storeCount();
    if (validName(x)) {
      const columns = Object.fromEntries([[x, '{{trigger.x}}']]);
      const shown = await preview('insert-row', { connection: connection(), input: { table: 'named', columns }, context });
      expect(shown).toEqual({ text: `INSERT INTO "named" (${ident(x)}) VALUES ($1) RETURNING *`, values: [x] });
      const output = await run('insert-row', { connection: connection(), input: { table: 'named', columns }, context });
      expect(output.rowCount).toBe(1);
      expect(Object.getOwnPropertyDescriptor(output.row, x)?.value === x).toBe(true);
      const [stored] = await db.sql<{ v: string }>(`SELECT ${ident(x)} AS v FROM named WHERE id = $1`, [output.insertedId]);
      expect(stored!.v === x).toBe(true);

      // The same name on a table without that column: UNDEFINED_COLUMN and nothing else.
      const error = await failure('insert-row', { connection: connection(), input: { table: 'store', columns }, context });
      expect(error.code).toBe('UNDEFINED_COLUMN');
    } else {
      // Not a name PostgreSQL could hold (empty or longer than 63 bytes): refused before the server.
      const error = await failure('insert-row', { connection: connection(), input: { table: 'store', columns: Object.fromEntries([[x, 'v']]) } });
      expect(error.code).toBe('INVALID_INPUT');
      expect(error.problems).toEqual([x === '' ? 'input.columns[""] must not be empty' : expect.stringMatching(/is longer than 63 bytes$/)]);
    }
    expect(await storeCount()).toBe(before);
  });

  test('(d) as the Insert Row table: fails cleanly (UNDEFINED_TABLE or INVALID_INPUT), writes nothing', async () => {
    const before = await storeCount();
    for (const input of [
      { table: x, columns: { v: 'x' } },
      { table: `store; ${x}`, columns: { v: 'x' } },
      { table: '{{trigger.x}}', columns: { v: 'x' } },
    ]) {
      const error = await failure('insert-row', { connection: connection(), input, context });
      expect(['UNDEFINED_TABLE', 'INVALID_INPUT']).toContain(error.code);
    }
    expect(await storeCount()).toBe(before);
  });
});

describe('hostile text in composite values', () => {
  const values = HOSTILE.map(([, value]) => value);

  test('an array of every hostile text round-trips through a text[] parameter, element by element', async () => {
    const output = await run('query-rows', {
      connection: connection(),
      input: { query: 'SELECT u.v, u.i FROM unnest({{trigger.list}}::text[]) WITH ORDINALITY AS u(v, i) ORDER BY u.i' },
      context: { trigger: { list: values, secret: SECRET } },
    });
    expect(output.rowCount).toBe(values.length);
    output.rows.forEach((row, i) => expect(row.v === values[i]).toBe(true));
  });

  test('an object with hostile keys and values round-trips through jsonb', async () => {
    const doc = Object.fromEntries(NAMES.map((name, i) => [name, values[i]]));
    const output = await run('query-rows', {
      connection: connection(),
      input: { query: 'SELECT $1::jsonb AS doc', parameters: ['{{trigger.doc}}'] },
      context: { trigger: { doc } },
    });
    expect(output.rows[0]!.doc).toEqual(doc);
    const inserted = await run('insert-row', { connection: connection(), input: { table: 'store', columns: { v: '{{trigger.doc}}' } }, context: { trigger: { doc } } });
    // A text column takes the object as its JSON text.
    expect(JSON.parse(inserted.row.v as string)).toEqual(doc);
  });
});

describe('hostile table names', () => {
  test.each([
    ['users; DROP TABLE canary', 'UNDEFINED_TABLE'],
    ['"users"; --', 'UNDEFINED_TABLE'],
    ['canary; DROP TABLE canary; --', 'UNDEFINED_TABLE'],
    ['canary (v) VALUES (1); --', 'UNDEFINED_TABLE'],
    ['public.canary; DROP TABLE canary', 'UNDEFINED_TABLE'],
    ['"canary"" (v) VALUES (\'x\'); DROP TABLE canary; --"', 'UNDEFINED_TABLE'],
    [`canary" (v) VALUES ('x'); DROP TABLE canary; --`, 'INVALID_INPUT'],
    ['public.canary.v', 'INVALID_INPUT'],
    ['pg_catalog.pg_authid; --', 'UNDEFINED_TABLE'],
  ])('%j → %s', async (table, code) => {
    const error = await failure('insert-row', { connection: connection(), input: { table, columns: { v: 'pwned' } } });
    expect(error.code).toBe(code);
  });
});

describe('a NUL character, which PostgreSQL text cannot hold', () => {
  test('in parameters and SQL templates: INVALID_VALUE, nothing written, connection fine', async () => {
    const context = { trigger: { x: NUL } };
    const before = await storeCount();
    const attempts: [string, unknown][] = [
      ['query-rows', { query: 'SELECT $1::text AS v', parameters: ['{{trigger.x}}'] }],
      ['query-rows', { query: "SELECT count(*) FROM canary WHERE v = '{{trigger.x}}'" }],
      ['update-rows', { query: 'UPDATE canary SET v = $1', parameters: [NUL] }],
      ['update-rows', { query: 'UPDATE canary SET v = {{trigger.x}}' }],
      ['delete-rows', { query: 'DELETE FROM canary WHERE v <> {{trigger.x}}' }],
      ['execute-query', { query: 'INSERT INTO store (v) VALUES ($1)', parameters: ['{{trigger.x}}'] }],
      ['execute-query', { query: "INSERT INTO store (v) VALUES ('x{{trigger.x}}x')" }],
    ];
    for (const [key, input] of attempts) {
      const error = await failure(key, { connection: connection(), input, context });
      expect([key, error.code]).toEqual([key, 'INVALID_VALUE']);
      expect(error.message).toBe('Invalid byte sequence for encoding "UTF8": 0x00');
    }
    expect(await storeCount()).toBe(before);
    expect(await run('query-rows', { connection: connection(), input: { query: 'SELECT 1 AS ok' } })).toEqual({ rows: [{ ok: 1 }], rowCount: 1 });
  });

  test('in Insert Row: a value is INVALID_VALUE, a column name or table INVALID_INPUT; nothing written', async () => {
    const before = await storeCount();
    const value = await failure('insert-row', { connection: connection(), input: { table: 'store', columns: { v: '{{trigger.x}}' } }, context: { trigger: { x: NUL } } });
    expect(value.code).toBe('INVALID_VALUE');
    const column = await failure('insert-row', { connection: connection(), input: { table: 'store', columns: { [NUL]: 'x' } } });
    expect(column.code).toBe('INVALID_INPUT');
    expect(column.problems).toEqual(['input.columns["a\\u0000b"] must not contain a NUL character']);
    const table = await failure('insert-row', { connection: connection(), input: { table: `store${NUL}`, columns: { v: 'x' } } });
    expect(table.code).toBe('INVALID_INPUT');
    expect(table.problems).toEqual(['input.table must not contain a NUL character']);
    // In jsonb, \u0000 is refused as well.
    const json = await failure('query-rows', { connection: connection(), input: { query: 'SELECT $1::jsonb', parameters: ['{{trigger.doc}}'] }, context: { trigger: { doc: { k: NUL } } } });
    expect(json.code).toBe('INVALID_VALUE');
    expect(await storeCount()).toBe(before);
  });
});

test('after every attack: the canary row is byte-identical and unrewritten, no table or role appeared', async () => {
  expect(await canary()).toEqual(canaryBefore);
  expect(await tables()).toEqual(tablesBefore);
  expect(await db.sql(`SELECT rolname FROM pg_roles WHERE rolname ILIKE '%pwned%'`)).toEqual([]);
  // The event log: no DDL ran at all, and the canary only saw the intended statements, the
  // "UPDATE … WHERE v = <attack>" and "DELETE … WHERE v = <attack>" steps (which matched no row:
  // the canary is unchanged above); never an INSERT or TRUNCATE.
  expect(await db.sql(`SELECT DISTINCT kind, tag FROM event_log ORDER BY 1, 2`)).toEqual([
    { kind: 'canary', tag: 'DELETE' },
    { kind: 'canary', tag: 'UPDATE' },
  ]);
  // Every stored value came from the attacks above, none from a re-rendered template.
  expect(await db.sql('SELECT count(*)::int AS n FROM store WHERE v LIKE $1', [`%${SECRET}%`])).toEqual([{ n: 0 }]);
});
