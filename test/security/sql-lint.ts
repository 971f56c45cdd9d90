/**
 * The schema-qualification lint of SQL texts (review R112, R134, R177): PostgreSQL's own parser
 * (libpg-query) reads a text and the walk names each unqualified function call, operator, type
 * name, and construct that looks `=` up by name (IN (…), IS [NOT] DISTINCT FROM, NULLIF, CASE x
 * WHEN, JOIN … USING, BETWEEN, LIKE). Used on what pg-actions sends (own-sql-qualified) and on what
 * it prints for people to run (printed-sql-qualified).
 */
import { parsePlPgSQLSync, parseSync } from 'libpg-query';
import '../../templating/pg-parser.js'; // loads libpg-query's module

/** Column types only, which PostgreSQL replaces (by pg_catalog.int2/int4/int8 and a sequence) before any lookup when written in one part. */
const SERIALS = ['smallserial', 'serial2', 'serial', 'serial4', 'bigserial', 'serial8'];

/**
 * Unqualified function calls, operators and type names, and constructs that look `=` up by name, in
 * one parse tree. A DO block's PL/pgSQL is read too (its DECLAREs' types as well); a function
 * pg-actions creates must pin its search_path (`SET search_path = pg_catalog, pg_temp`) for its body,
 * and its parameter and result types, resolved when it is created, are read like any other.
 */
export function unqualifiedIn(text: string): string[] {
  const found: string[] = [];
  const names = (list: unknown) => ((list ?? []) as { String?: { sval: string } }[]).map((n) => n.String?.sval ?? '?');
  const plpgsql = (body: string) => {
    const expressions: { query: string; parseMode?: number }[] = [];
    const declared: string[] = [];
    const collect = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(collect);
      if (!node || typeof node !== 'object') return;
      for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
        if (key === 'PLpgSQL_expr') expressions.push(value as { query: string; parseMode?: number });
        if (key === 'PLpgSQL_type' && !(value as { typname: string }).typname.includes('%')) declared.push((value as { typname: string }).typname);
        collect(value);
      }
    };
    collect(parsePlPgSQLSync(`CREATE FUNCTION pg_temp.lint() RETURNS void LANGUAGE plpgsql AS $lint$${body}$lint$`));
    for (const { query, parseMode } of expressions) found.push(...unqualifiedIn(parseMode ? `SELECT ${query}` : query));
    // Its DECLAREd variables' types, as written: read as a cast's type (`found` is the block's own boolean).
    for (const type of declared) found.push(...unqualifiedIn(`SELECT NULL::${type}`));
  };
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    // A TypeName (a cast, a column, a parameter, a return type…): the parser already writes the SQL
    // keyword types (int, bigint, boolean, real, varchar, interval…) as pg_catalog.*; any other
    // one-part name (text, oid, float8, "char", jsonb, regclass, name…) is looked up on the search_path.
    const typeName = node as { names?: unknown; typemod?: unknown; pct_type?: boolean };
    if (Array.isArray(typeName.names) && 'typemod' in typeName && !typeName.pct_type && names(typeName.names).length < 2) found.push(`type ${names(typeName.names).join('.')}`);
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if (key === 'FuncCall') {
        const name = names((value as { funcname: unknown }).funcname);
        if (name.length < 2) found.push(`function ${name.join('.')}()`);
      } else if (key === 'A_Expr') {
        const { kind, name } = value as { kind: string; name: unknown };
        const op = names(name);
        if (['AEXPR_OP', 'AEXPR_OP_ANY', 'AEXPR_OP_ALL'].includes(kind)) {
          if (op.length < 2) found.push(`operator ${op.join('.')}`);
        } else found.push(`${kind} (looks up ${op.join('.')})`);
      } else if (key === 'SubLink') {
        const { subLinkType, operName } = value as { subLinkType: string; operName?: unknown };
        if (['ANY_SUBLINK', 'ALL_SUBLINK', 'ROWCOMPARE_SUBLINK'].includes(subLinkType) && names(operName).length < 2) found.push(`${subLinkType} (IN/ANY/ALL with ${names(operName).join('.') || '='})`);
      } else if (key === 'CaseExpr' && (value as { arg?: unknown }).arg) found.push('CASE x WHEN (looks up =)');
      else if (key === 'JoinExpr' && (value as { usingClause?: unknown }).usingClause) found.push('JOIN … USING (looks up =)');
      else if (key === 'DoStmt') {
        const body = ((value as { args: { DefElem: { defname: string; arg: { String: { sval: string } } } }[] }).args ?? []).find((a) => a.DefElem.defname === 'as');
        if (body) plpgsql(body.DefElem.arg.String.sval);
        continue;
      } else if (key === 'ColumnDef' && SERIALS.includes(names((value as { typeName?: { names: unknown } }).typeName?.names).join('.'))) {
        walk({ ...(value as object), typeName: undefined }); // serial/bigserial: a column type only there, read as pg_catalog.int4/int8 without a lookup
        continue;
      } else if (key === 'CreateFunctionStmt') {
        const { options: list, parameters, returnType } = value as { options?: { DefElem: { defname: string; arg?: unknown } }[]; parameters?: unknown; returnType?: unknown };
        const options = (list ?? []).map((o) => o.DefElem);
        const pinned = options.some((o) => o.defname === 'set' && JSON.stringify(o.arg).includes('"search_path"') && JSON.stringify(o.arg).includes('"pg_catalog"'));
        if (!pinned) found.push('CREATE FUNCTION without SET search_path = pg_catalog, pg_temp');
        walk([parameters, returnType]); // resolved when the function is created, with the caller's search_path
        continue; // its body runs with the pinned search_path
      }
      walk(value);
    }
  };
  walk(parseSync(text));
  return found;
}


/**
 * Relations named in one part (`FROM pg_locks`): found along the search_path, where a look-alike
 * view public.pg_locks wins when the path lists pg_catalog after public. Names a WITH clause of the
 * text defines, and `placeholder` (what stood for a value filled in at run time), are left out.
 */
export function unqualifiedRelationsIn(text: string, placeholder = PLACEHOLDER): string[] {
  const found: string[] = [];
  const defined = new Set<string>([placeholder]);
  const walk = (node: unknown, visit: (key: string, value: Record<string, unknown>) => void): void => {
    if (Array.isArray(node)) return node.forEach((n) => walk(n, visit));
    if (!node || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if (value && typeof value === 'object' && !Array.isArray(value)) visit(key, value as Record<string, unknown>);
      walk(value, visit);
    }
  };
  const tree = parseSync(text);
  walk(tree, (key, value) => key === 'CommonTableExpr' && defined.add(String(value.ctename)));
  walk(tree, (key, value) => {
    // Only the catalogs' names: a user's table in a fix is the user's (pg-actions prints those qualified).
    if (key === 'RangeVar' && !value.schemaname && !defined.has(String(value.relname)) && /^pg_/.test(String(value.relname))) found.push(`relation ${String(value.relname)}`);
  });
  return found;
}

/** What a `<role>`, `<pid>` or `${…}` of a printed text is replaced by before it is parsed. */
export const PLACEHOLDER = 'pgactions_placeholder';

/** The words a statement starts with (upper case, as pg-actions prints SQL). */
const STATEMENT_START = /\b(SELECT|WITH|ALTER|GRANT|REVOKE|DROP|CREATE|UPDATE|DELETE|INSERT|ANALYZE|VACUUM|REINDEX|COMMENT|SET|RESET|LOCK|TRUNCATE|CALL|DO|SHOW|REFRESH|CLUSTER|NOTIFY|LISTEN|TABLE|EXPLAIN|COPY|REASSIGN|SECURITY)\b/g;

/** One statement or none: libpg-query's reading of `piece`. */
function oneStatement(piece: string): boolean {
  try {
    return ((parseSync(piece) as { stmts?: unknown[] }).stmts?.length ?? 0) === 1;
  } catch {
    return false;
  }
}

/**
 * The SQL statements in a text printed for people (an error's fix, a note, a doc line): from each
 * word that starts a statement, the shortest stretch up to a `;` that PostgreSQL's parser reads as
 * one statement, else the longest one (a statement not ended by `;`, prose after it left out).
 * `<…>` placeholders (`<pid>`, `<the activating role>`) are read as a name.
 */
export function printedStatements(text: string): string[] {
  const filled = text.replace(/<[A-Za-z][A-Za-z0-9 _.,'-]*>/g, PLACEHOLDER);
  const found: string[] = [];
  let from = 0;
  for (const start of filled.matchAll(STATEMENT_START)) {
    const at = start.index!;
    if (at < from) continue;
    const limit = Math.min(filled.length, at + 1000);
    let best: string | undefined;
    for (let end = filled.indexOf(';', at); end >= 0 && end < limit && best === undefined; end = filled.indexOf(';', end + 1)) {
      if (oneStatement(filled.slice(at, end + 1))) best = filled.slice(at, end + 1);
    }
    for (let end = limit; best === undefined && end > at + start[0].length; end--) {
      if (end < filled.length && /[\w$]/.test(filled[end]!)) continue; // not inside a word
      const piece = filled.slice(at, end);
      if (/[)\w'"\]]$/.test(piece) && oneStatement(piece)) best = piece;
    }
    if (best === undefined) continue;
    found.push(best);
    from = at + best.length;
  }
  return found;
}
