import type { Expr } from './expression.js';
import { decodeStringConstant } from './sql-literals.js';
import type { TemplateSpan } from './sql-template-spans.js';
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

export type QuotedKind = 'string' | 'escape-string' | 'dollar' | 'identifier' | 'prefixed';

export interface QuotedToken {
  /** [start, end) in the SQL written, prefix (E, U&) and continuation lines included. */
  readonly start: number;
  readonly end: number;
  readonly kind: QuotedKind;
}

/** '{{x}}' binds x itself (typed); 'Hello {{x}}' binds the whole rendered string. */
export function slotForQuoted(sql: string, token: QuotedToken, spans: readonly TemplateSpan[], typeBefore: string | undefined): Slot {
  const first = spans[0] as TemplateSpan;
  const shown = sql.slice(first.start, first.end);
  const raw = sql.slice(token.start, token.end);
  if (token.kind === 'identifier') throw new TemplateProblemSignal(`${shown} is inside a double-quoted identifier: ${NAME_POSITION_FIX}`, first.start);
  if (token.kind === 'dollar') {
    const tag = /^\$[^$]*\$/.exec(raw)?.[0] ?? '$$';
    throw new TemplateProblemSignal(`${shown} is inside a dollar-quoted string (${tag} … ${tag}): ${DOLLAR_FIX}`, first.start);
  }
  if (typeBefore) {
    throw new TemplateProblemSignal(`${typeBefore} '…' takes only fixed text, not a bound value: write a cast instead, e.g. ${raw}::${typeBefore.toLowerCase()}`, first.start);
  }
  if (token.kind === 'prefixed') {
    throw new TemplateProblemSignal(`templates are not supported inside ${raw.slice(0, raw.indexOf("'"))}'…' literals: ${PREFIXED_FIX}`, first.start);
  }
  for (const span of spans) if (span.compiled instanceof TemplateProblemSignal) throw span.compiled;

  // The text between templates, decoded by PostgreSQL's own scanner (escapes, '' and continuations).
  const texts = decodeStringConstant(raw, spans.map((span) => [span.start - token.start, span.end - token.start]), token.start);
  const parts: (string | Expr)[] = [];
  let pending = texts[0] as string;
  spans.forEach((span, i) => {
    const compiled = span.compiled as Exclude<TemplateSpan['compiled'], TemplateProblemSignal>;
    // {{~x}} and {{x~}} trim the literal's text next to them, as Handlebars does.
    if (compiled.trimBefore) pending = pending.trimEnd();
    if (compiled.kind === 'expression') {
      if (pending !== '') parts.push(pending);
      parts.push(compiled.expr);
      pending = '';
    }
    pending += compiled.trimAfter ? (texts[i + 1] as string).trimStart() : (texts[i + 1] as string);
  });
  if (pending !== '') parts.push(pending);
  const [only] = parts;
  return parts.length === 1 && only !== undefined && typeof only !== 'string' ? { kind: 'typed', expr: only } : { kind: 'text', parts };
}
