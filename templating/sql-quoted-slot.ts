import { compileSpan, type Expr } from './expression.js';
import { decodeLiteralText } from './sql-literals.js';
import type { QuotedToken, Span } from './sql-tokens.js';
import { TemplateProblemSignal } from './template-error.js';

/*
 * What a quoted token holding templates turns into. Only plain, E'…' and N'…' string literals
 * can become a bound value; templates inside identifiers, dollar quotes, typed literals
 * (INTERVAL '…') and bit/hex/unicode literals are refused with the fix to make.
 */

/** A value to bind: a lone expression keeps its type; a mixed literal is a string. */
export type Slot = { readonly kind: 'typed'; readonly expr: Expr } | { readonly kind: 'text'; readonly parts: readonly (string | Expr)[] };

export const NAME_POSITION_FIX = 'a template becomes a bound value, and PostgreSQL cannot take a table or column name as a value. Use a fixed name, or Insert Row\'s table field.';
const DOLLAR_FIX = 'a value cannot be bound inside a dollar-quoted string such as a function body. Write the value as a parameter ($1) in a statement outside the body.';
const PREFIXED_FIX = 'use a parameter with a cast instead, e.g. $1::bit(8) or $1::bytea.';

/** '{{x}}' binds x itself (typed); 'Hello {{x}}' binds the whole rendered string. */
export function slotForQuoted(sql: string, token: QuotedToken, typeBefore: string | undefined): Slot {
  const first = token.templates[0] as Span;
  const shown = sql.slice(first.start, first.end);
  if (token.kind === 'identifier') throw new TemplateProblemSignal(`${shown} is inside a double-quoted identifier: ${NAME_POSITION_FIX}`, first.start);
  if (token.kind === 'dollar') throw new TemplateProblemSignal(`${shown} is inside a dollar-quoted string (${token.prefix} … ${token.prefix}): ${DOLLAR_FIX}`, first.start);
  if (typeBefore) {
    throw new TemplateProblemSignal(
      `${typeBefore} '…' takes only fixed text, not a bound value: write a cast instead, e.g. '${sql.slice(token.contentStart, token.contentEnd)}'::${typeBefore.toLowerCase()}`,
      first.start,
    );
  }
  if (!token.terminated) throw new TemplateProblemSignal('this quoted string is not closed', token.start);
  if (token.prefix !== '' && token.prefix !== 'E' && token.prefix !== 'N') {
    throw new TemplateProblemSignal(`templates are not supported inside ${token.prefix}'…' literals: ${PREFIXED_FIX}`, first.start);
  }

  const parts: (string | Expr)[] = [];
  let cursor = token.contentStart;
  for (const span of token.templates) {
    const text = decodeLiteralText(sql.slice(cursor, span.start), token.backslashEscapes);
    if (text !== '') parts.push(text);
    const compiled = compileSpan(sql.slice(span.start, span.end), span.start);
    if (compiled.kind === 'expression') parts.push(compiled.expr);
    cursor = span.end;
  }
  const tail = decodeLiteralText(sql.slice(cursor, token.contentEnd), token.backslashEscapes);
  if (tail !== '') parts.push(tail);
  const [only] = parts;
  return parts.length === 1 && only !== undefined && typeof only !== 'string' ? { kind: 'typed', expr: only } : { kind: 'text', parts };
}
