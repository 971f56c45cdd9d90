/**
 * Differential, against PostgreSQL's own scanner: generated SQL mixing every quoting, comment
 * and line-ending form with templates. The oracle is the text PostgreSQL would read if each
 * template were pasted as an inert word (its marker value, e.g. `zqa`). What a step sends must
 * scan to the same tokens, with a bound parameter exactly where a marker (or a literal holding
 * one) was, and each bound value must be what PostgreSQL decodes that literal to.
 * DIFF_RUNS (default 3000) raises it; a 100,000-case run is reported in the issue.
 */
import fc from 'fast-check';
import { bindSqlTemplates } from '../templating/index.js';
import { scanPg, type PgToken } from '../templating/pg-parser.js';
import { decodeStringConstant } from '../templating/sql-literals.js';

const RUNS = Number(process.env.DIFF_RUNS ?? 3000);
// zqn is a number: a bare use is sent as $k::pg_catalog.int8, which must not glue to what follows.
const context = { trigger: { a: 'zqa', b: 'zqb', c: 'zqc', n: 5 } };
const MARKER = /zq[abcn]/;

const valueTemplate = fc.constantFrom('{{trigger.a}}', '{{trigger.b}}', '{{ trigger.c }}', '{{\u00a0trigger.a}}', '{{trigger.n}}');
const template = fc.oneof(valueTemplate, fc.constantFrom('{{!c}}', '{{!-- x\n--}}'));
const lineEnd = fc.constantFrom('\n', '\r', '\r\n');
const inPlain = fc.oneof(fc.constantFrom('a', ' ', "''", '\\', '{', '}', '"', '$', '--', '/*'), valueTemplate);
const inEscape = fc.oneof(fc.constantFrom('a', ' ', "''", '\\\\', "\\'", '\\n', '\\303\\251', '\\x41', '\\u00e9', '{', '}', '$'), valueTemplate);
const piece = fc.oneof(
  fc.constantFrom('SELECT', 'x', 'FROM', 't', 'WHERE', '=', '-', '+', '*', '/', '(', ')', ',', '1', '1.5', '$1', '::text', '[1]', 'E', 'N', 'U&', ';'),
  template,
  fc.tuple(fc.constantFrom('-- c ', '--', '-- {{trigger.a}} ', '-- {{!-- x\n--}} ', '-- {{default trigger.a "\n"}}'), lineEnd).map(([c, end]) => c + end),
  fc.constantFrom('/* a */', '/* a /* b */ c */', '/* {{trigger.b}} */', '/*/ x */', '/* {{default trigger.b "*/"}} */'),
  fc.array(inPlain, { maxLength: 5 }).map((parts) => `'${parts.join('')}'`),
  fc.array(inEscape, { maxLength: 5 }).map((parts) => `E'${parts.join('')}'`),
  fc.tuple(lineEnd, fc.constantFrom("'more'", "'{{trigger.c}}'", "'\\n'")).map(([end, s]) => end + s), // a continuation line
  fc.constantFrom('$$ a $$', "$q$ it's -- $q$", '"id"', '"a""b"'),
);
const sql = fc.array(fc.tuple(piece, fc.constantFrom('', ' ', '\n')), { minLength: 1, maxLength: 12 }).map((parts) => parts.map(([p, sep]) => p + sep).join(''));

/** The oracle: templates pasted as their marker values (Handlebars comments as a form feed). */
function pasted(text: string): string {
  // A Handlebars comment renders nothing; \f is whitespace to PostgreSQL in code and marks the spot inside a literal.
  return text.replace(/\{\{!--[\s\S]*?--\}\}|\{\{![^}]*\}\}/g, '\f')
    .replace(/\{\{default trigger\.(\w) "[^"]*"\}\}/g, 'zq$1')
    .replace(/\{\{\{[\s\u00a0]*trigger\.(\w)\s*\}\}\}/g, 'zq$1') // {{{x}}}: Handlebars' unescaped form
    .replace(/\{\{[\s\u00a0]*trigger\.(\w)\s*\}\}/g, 'zq$1');
}

const isComment = (t: PgToken) => t.name === 'SQL_COMMENT' || t.name === 'C_COMMENT';

describe('SQL sent vs PostgreSQL reading the pasted text', () => {
  test(`${RUNS} generated statements: same tokens, a parameter where each template was, values as PostgreSQL decodes them`, () => {
    let compared = 0;
    fc.assert(
      fc.property(sql, (text) => {
        let sent: { text: string; values: unknown[] };
        let oracle: PgToken[];
        try {
          sent = bindSqlTemplates(text, 1, context, 'q');
        } catch {
          return; // refused (a template where a name goes, in a $$ body, unreadable SQL…): nothing is sent
        }
        const reference = pasted(text);
        try {
          oracle = scanPg(reference);
        } catch {
          return;
        }
        const ours = scanPg(sent.text);
        // N'…' holding a template is bound whole: the N goes with the literal.
        oracle = oracle.filter((t, i) => {
          const next = oracle[i + 1];
          return !(next && next.start === t.end && /^[nN]$/.test(reference.slice(t.start, t.end)) && next.name === 'SCONST' && MARKER.test(reference.slice(next.start, next.end)));
        });
        const markerInCode = oracle.some((t) => t.name !== 'SCONST' && !isComment(t) && MARKER.test(reference.slice(t.start, t.end)) && !/^zq[abcn]$/.test(reference.slice(t.start, t.end)));
        if (markerInCode) return; // pasting would glue a marker to a neighbour: PostgreSQL reads another word there; we bind
        let j = 0;
        for (const [i, expected] of oracle.entries()) {
          const got = ours[j++];
          if (got === undefined) throw new Error(`sent ${JSON.stringify(sent.text)} has fewer tokens than ${JSON.stringify(reference)}`);
          const was = reference.slice(expected.start, expected.end);
          const now = sent.text.slice(got.start, got.end);
          if (isComment(expected)) {
            expect(isComment(got)).toBe(true);
            continue;
          }
          const holdsMarker = expected.name === 'SCONST' ? MARKER.test(was) || was.includes('\f') : /^zq[abcn]$/.test(was);
          if (!holdsMarker) {
            expect([got.name, now]).toEqual([expected.name, was]);
            continue;
          }
          // A typed value before a subscript is parenthesised: ($k::pg_catalog.int8)[1].
          const parenthesised = now === '(' && was === 'zqn';
          const param = parenthesised ? ours[j++]! : got;
          expect(param.name).toBe('PARAM');
          const value = sent.values[Number(sent.text.slice(param.start + 1, param.end)) - 2];
          // '{{trigger.n}}' alone binds the number itself; in text it reads as 5.
          if (expected.name === 'SCONST') expect(String(value)).toBe(decodeStringConstant(was, [], 0)[0]!.replaceAll('zqn', '5').replaceAll('\f', ''));
          else if (was === 'zqn') {
            expect(value).toBe(5);
            const next = oracle.slice(i + 1).find((t) => !isComment(t));
            if (next && reference.slice(next.start, next.end) === '::') continue; // cast in the SQL: left to it
            // the cast added for a number: "::" and "pg_catalog.int8", nothing glued to them
            const cast = parenthesised ? ['::', 'pg_catalog', '.', 'int8', ')'] : ['::', 'pg_catalog', '.', 'int8'];
            expect(ours.slice(j, j + cast.length).map((t) => sent.text.slice(t.start, t.end))).toEqual(cast);
            j += cast.length;
          } else expect(value).toBe(was);
        }
        expect(j).toBe(ours.length);
        compared++;
      }),
      { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 20261129) },
    );
    if (process.env.DIFF_RUNS) console.log(`${compared} of ${RUNS} generated statements compared with PostgreSQL's reading`);
    expect(compared).toBeGreaterThan(RUNS / 10);
  });
});
