/**
 * R177: the SQL pg-actions prints for people to run (errors' fixes, check-replication's
 * fixes, notes, descriptions, Schema Overview's advice; docs/errors.md is generated from them) is
 * often run by a database admin, a superuser, in psql. An unqualified `=`, function or catalog view
 * there is looked up along that session's search_path: with public before pg_catalog (a role's or
 * database's default), a look-alike public.=(text, text), public.now() or view public.pg_locks made by
 * any role with CREATE on public runs with the admin's rights. So every printed statement names its
 * operators (`OPERATOR(pg_catalog.=)`), functions, types and catalog relations with their schema, as
 * the SQL pg-actions sends itself does (own-sql-qualified, R112/R134/R164).
 *
 * Which texts are printed: the error catalogue (read at run time), and every string in the sources
 * except those that hold SQL pg-actions runs itself (own-sql-qualified reads those on the wire) or a
 * user's own example SQL (NOT_PRINTED, by the name of the property or constant holding it). In each,
 * the statements are found with PostgreSQL's parser (sql-lint.ts printedStatements) and linted.
 */
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import ts from 'typescript';
import { CLI_FAILURES } from '../../cli/failure-catalogue.js';
import { ERROR_CATALOGUE, ERROR_CODES } from '../../connection/errors/index.js';
import { sampleEvents } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { PLACEHOLDER, printedStatements, unqualifiedIn, unqualifiedRelationsIn } from './sql-lint.js';

const ROOT = new URL('../../', import.meta.url);
const SOURCE_DIRS = ['actions', 'connection', 'triggers', 'templating', 'cli', 'playground', 'schemas'];

/**
 * Strings that are not printed for people to run, by the property or constant holding them:
 * SQL pg-actions sends itself (own-sql-qualified lints what crosses the wire; function bodies run
 * with search_path pinned to pg_catalog, pg_temp), and the user's own example SQL (an action's
 * example, the demo's steps, the playground's sample data), which the user writes and runs as the flow.
 */
const NOT_PRINTED = new Set([
  'text', 'PUT_GUARD', 'installStatements', 'ROW_KEY', 'CURRENT_KEY_COLUMNS', 'putFunctionStatement', 'captureSetFunction', 'readFunctionStatement', 'schemaEventStatements', 'guarded',
  'setup', 'query', 'usage', 'SAMPLE_SCHEMA',
]);

/**
 * Types filled in at run time (`TYPE ${…}`), which the lint cannot read, by the file printing them
 * and the test that checks the filled-in name is schema-qualified.
 */
const FILLED_TYPES: Record<string, string> = {
  'triggers/replication/handover-types.ts': 'test/triggers/sync-handover-recollated.test.ts (TYPE pg_catalog.text, and runs the printed ALTER)',
};

interface Printed {
  /** Where the text is: `file:line` or `ERROR_CATALOGUE.CODE`. */
  where: string;
  statement: string;
}

/** What is unqualified in one printed statement. */
function problems(statement: string): string[] {
  try {
    return [...new Set([...unqualifiedIn(statement), ...unqualifiedRelationsIn(statement)])];
  } catch (error) {
    return [`does not parse: ${(error as Error).message}`];
  }
}

/** The error catalogue's and the CLI failures' texts, as the errors carry them. */
function catalogueStatements(): Printed[] {
  const entries = [
    ...ERROR_CODES.map((code) => [`ERROR_CATALOGUE.${code}`, ERROR_CATALOGUE[code]] as const),
    ...Object.entries(CLI_FAILURES).map(([name, entry]) => [`CLI_FAILURES.${name}`, entry] as const),
  ];
  return entries.flatMap(([where, entry]) => [entry.cause, ...entry.fixes].flatMap((text) => printedStatements(text).map((statement) => ({ where, statement }))));
}

/**
 * Every string literal of the sources (a template's `${…}` read as a name, `'a' + 'b'` joined),
 * with the name of the property, constant or function holding it.
 */
function sourceTexts(): { where: string; holder: string | undefined; text: string }[] {
  const files = (dir: string): string[] =>
    readdirSync(new URL(`${dir}/`, ROOT), { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? files(`${dir}/${entry.name}`) : entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [`${dir}/${entry.name}`] : [],
    );
  const out: { where: string; holder: string | undefined; text: string }[] = [];
  for (const file of SOURCE_DIRS.flatMap(files)) {
    const source = ts.createSourceFile(file, readFileSync(new URL(file, ROOT), 'utf8'), ts.ScriptTarget.Latest, true);
    const isPlus = (node: ts.Node | undefined): node is ts.BinaryExpression => node !== undefined && ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken;
    const textOf = (node: ts.Node): string | undefined => {
      if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
      if (ts.isTemplateExpression(node)) return node.head.text + node.templateSpans.map((span) => PLACEHOLDER + span.literal.text).join('');
      if (ts.isParenthesizedExpression(node)) return textOf(node.expression);
      if (isPlus(node)) {
        const [left, right] = [textOf(node.left), textOf(node.right)];
        return left === undefined && right === undefined ? undefined : (left ?? PLACEHOLDER) + (right ?? PLACEHOLDER);
      }
      return undefined;
    };
    const holderOf = (node: ts.Node): string | undefined => {
      for (let up = node.parent; up; up = up.parent) {
        if (ts.isPropertyAssignment(up) || ts.isVariableDeclaration(up) || ts.isFunctionDeclaration(up) || ts.isMethodDeclaration(up)) return up.name?.getText();
      }
      return undefined;
    };
    const visit = (node: ts.Node): void => {
      const text = isPlus(node.parent) ? undefined : textOf(node); // a + chain is read whole, from its top
      if (text !== undefined) {
        out.push({ where: `${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`, holder: holderOf(node), text });
        if (!isPlus(node) && !ts.isParenthesizedExpression(node)) return;
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return out;
}

let scanned: Printed[] | undefined;
function sourceStatements(): Printed[] {
  return (scanned ??= sourceTexts()
    .filter(({ holder }) => holder === undefined || !NOT_PRINTED.has(holder))
    .flatMap(({ where, text }) => printedStatements(text).map((statement) => ({ where, statement }))));
}

/** `where: what is unqualified — the statement`, one line each. */
function report(printed: Printed[]): string[] {
  return printed.flatMap(({ where, statement }) => {
    const filled = where.split(':')[0]! in FILLED_TYPES;
    const found = problems(statement).filter((what) => !(filled && what === `type ${PLACEHOLDER}`));
    return found.length ? [`${where}: ${found.join(', ')} — ${statement.replace(/\s+/g, ' ')}`] : [];
  });
}

test('the statement finder reads printed SQL out of prose; the lint sees unqualified catalog relations', () => {
  expect(printedStatements("Find who holds the lock: SELECT pid, query FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids(<pid>));")).toEqual([
    `SELECT pid, query FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids(${PLACEHOLDER}));`,
  ]);
  expect(printedStatements("GRANT SELECT ON <table> TO <role>; -- then check: SELECT * FROM t WHERE grantee = '<role>';")).toEqual([
    `GRANT SELECT ON ${PLACEHOLDER} TO ${PLACEHOLDER};`,
    `SELECT * FROM t WHERE grantee = '${PLACEHOLDER}';`,
  ]);
  expect(printedStatements('Run it again when done (SELECT pid FROM pg_locks WHERE NOT granted shows it).')).toEqual(['SELECT pid FROM pg_locks WHERE NOT granted']);
  expect(printedStatements('Add LIMIT, filter earlier, or add an index.')).toEqual([]);
  expect(unqualifiedRelationsIn('SELECT 1 FROM pg_locks, pg_catalog.pg_class, orders, w')).toEqual(['relation pg_locks']);
  expect(unqualifiedRelationsIn('WITH pg_x AS (SELECT 1) SELECT * FROM pg_x')).toEqual([]);
});

test('every statement of the error catalogue\'s causes and fixes names its operators, functions, types and catalog relations with their schema', () => {
  const printed = catalogueStatements();
  // The scan reaches them: the lock holders' and the slot reader's queries are among them.
  expect(printed.map((p) => p.where)).toEqual(expect.arrayContaining(['ERROR_CATALOGUE.LOCK_NOT_AVAILABLE', 'ERROR_CATALOGUE.REPLICATION_SLOT_IN_USE', 'ERROR_CATALOGUE.POOL_EXHAUSTED']));
  expect(report(printed)).toEqual([]);
});

test('every statement printed from the sources (fixes, notes, descriptions, Schema Overview\'s advice, check-replication\'s fixes) is schema-qualified', () => {
  const printed = sourceStatements();
  const at = (file: string) => printed.filter((p) => p.where.startsWith(file + ':')).map((p) => p.statement).join('\n');
  // The scan reaches the places R177 named, and check-replication's dynamic fixes.
  expect(at('actions/schema-overview.ts')).toContain('pg_locks');
  expect(at('connection/errors/catalogue.ts')).toContain('pg_stat_activity');
  expect(at('connection/replication-readiness/diagnose.ts')).toContain('pg_drop_replication_slot');
  expect(at('triggers/listen.ts')).toContain('pg_notify');
  expect(report(printed)).toEqual([]);
});

const db = useTestDatabase('printedsql');

test('the printed statements, run by a superuser whose search_path puts public first, run none of the look-alikes planted there', async () => {
  const MARK = 'r177 look-alike ran';
  const boom = (what: string) => `BEGIN RAISE EXCEPTION '${MARK}: ${what} as %', current_user; END`;
  await db.sql(`
    CREATE FUNCTION public.r177_eq_text(text, text) RETURNS boolean LANGUAGE plpgsql AS $f$ ${boom('=(text, text)')} $f$;
    CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.r177_eq_text);
    CREATE FUNCTION public.r177_eq_int(integer, integer) RETURNS boolean LANGUAGE plpgsql AS $f$ ${boom('=(integer, integer)')} $f$;
    CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.r177_eq_int);
    CREATE FUNCTION public.r177_eq_name(name, name) RETURNS boolean LANGUAGE plpgsql AS $f$ ${boom('=(name, name)')} $f$;
    CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.r177_eq_name);
    CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $f$ ${boom('now()')} $f$;
    CREATE FUNCTION public.pg_blocking_pids(integer) RETURNS integer[] LANGUAGE plpgsql AS $f$ ${boom('pg_blocking_pids()')} $f$;
    CREATE FUNCTION public.pg_terminate_backend(integer) RETURNS boolean LANGUAGE plpgsql AS $f$ ${boom('pg_terminate_backend()')} $f$;
    CREATE FUNCTION public.r177_rows() RETURNS SETOF record LANGUAGE plpgsql AS $f$ ${boom('a look-alike catalog view')} $f$;
    CREATE VIEW public.pg_locks AS SELECT * FROM public.r177_rows() AS r(pid int, mode text, relation oid, granted boolean);
    CREATE VIEW public.pg_stat_activity AS SELECT * FROM public.r177_rows() AS r(pid int, query text, query_start timestamptz, application_name text);
    CREATE VIEW public.pg_replication_slots AS SELECT * FROM public.r177_rows() AS r(active_pid int, slot_name name)`);
  const admin = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
  await admin.connect();
  try {
    await admin.query('SET search_path = public, pg_catalog');
    // The trap works: unqualified, each of these runs a look-alike.
    for (const trap of ["SELECT 1 WHERE 'a'::text = 'a'", 'SELECT now()', 'SELECT * FROM pg_locks']) await expect(admin.query(trap)).rejects.toThrow(MARK);
    // Every printed SELECT whose placeholders can be filled (`<pid>` 0, `'<slot>'` 'x'), each in a transaction rolled back.
    const runnable = [...catalogueStatements(), ...sourceStatements()]
      .filter(({ statement }) => statement.startsWith('SELECT'))
      .map(({ where, statement }) => ({ where, statement: statement.replaceAll(`'${PLACEHOLDER}'`, "'x'").replaceAll(`(${PLACEHOLDER})`, '(0)') }))
      .filter(({ statement }) => !statement.includes(PLACEHOLDER));
    const ran: string[] = [];
    const lookAlikes: string[] = [];
    for (const { where, statement } of runnable) {
      await admin.query('BEGIN');
      try {
        await admin.query(statement);
        ran.push(statement);
      } catch (error) {
        if ((error as Error).message.includes(MARK)) lookAlikes.push(`${where}: ${(error as Error).message} — ${statement}`);
      } finally {
        await admin.query('ROLLBACK');
      }
    }
    expect(lookAlikes).toEqual([]);
    // They did run (not merely fail for another reason): the lock holders', the blocked pool's and the slot reader's queries.
    const all = ran.join('\n');
    for (const part of ['pg_catalog.pg_blocking_pids(0)', "application_name OPERATOR(pg_catalog.=) 'pg-actions'", "slot_name OPERATOR(pg_catalog.=) 'x'", "mode OPERATOR(pg_catalog.=) 'AccessExclusiveLock'"]) expect(all).toContain(part);
  } finally {
    await admin.end();
  }
}, 60_000);

test("listen's note quotes the channel as an SQL literal: a quote in the name cannot end it early", async () => {
  const { notes } = await sampleEvents('listen', { connection: db.config, config: { channel: "it's" } });
  expect(notes.join(' ')).toContain(`SELECT pg_catalog.pg_notify('it''s', '{"hello": "world"}');`);
}, 30_000);
