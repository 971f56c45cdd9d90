import { parsePg, PgSyntaxError } from './pg-parser.js';
import { TemplateProblemSignal } from './template-error.js';

/**
 * The text a SQL string constant stands for, read by PostgreSQL's own parser: '' and
 * backslash escapes (octal and hex escapes are UTF-8 bytes; a bad \u escape is refused as the
 * server refuses it) and E'…' continued on the next line. `holes` are [start, end) offsets of
 * templates in `literal`; the text around them is returned (holes.length + 1 strings).
 * Assumes standard_conforming_strings = on, which every step keeps (connection/pools.ts).
 */
export function decodeStringConstant(literal: string, holes: readonly (readonly [number, number])[], offset: number): string[] {
  for (let code = 0xe000; code < 0xf900; code++) {
    // A private-use character marks each hole; a backslash before it decodes to the character itself.
    const marker = String.fromCharCode(code);
    if (literal.includes(marker)) continue;
    let marked = '';
    let cursor = 0;
    for (const [start, end] of holes) {
      marked += literal.slice(cursor, start) + marker;
      cursor = end;
    }
    marked += literal.slice(cursor);
    const texts = constantValue(marked, offset).split(marker);
    if (texts.length === holes.length + 1) return texts;
  }
  throw new TemplateProblemSignal('this string literal cannot hold templates', offset);
}

const PREFIX = 'SELECT ';

function constantValue(literal: string, offset: number): string {
  const tree = parsePg(PREFIX + literal);
  if (tree instanceof PgSyntaxError) {
    const at = tree.offset === undefined ? offset : offset + Math.max(0, tree.offset - PREFIX.length);
    throw new TemplateProblemSignal(`PostgreSQL cannot read this string literal: ${tree.message}`, at);
  }
  const target = (tree.stmts?.[0]?.stmt as { SelectStmt?: { targetList?: { ResTarget?: { val?: unknown } }[] } })?.SelectStmt?.targetList?.[0]?.ResTarget?.val;
  return stringOf(target);
}

/** The A_Const string (N'…' arrives wrapped in a cast to bpchar). */
function stringOf(node: unknown): string {
  const value = node as { A_Const?: { sval?: { sval?: string } }; TypeCast?: { arg?: unknown } } | undefined;
  if (value?.A_Const) return value.A_Const.sval?.sval ?? '';
  if (value?.TypeCast) return stringOf(value.TypeCast.arg);
  throw new TemplateProblemSignal('not a string literal');
}
