import { BoundedCache } from './bounded-cache.js';
import { compileSpan, type Expr } from './expression.js';
import { findExpressionEnd, opensExpression } from './expression-spans.js';
import { TemplateProblemSignal, type TemplateProblem } from './template-error.js';

/** A value string split into literal text and expressions, parsed once per distinct text. */
export interface ValueTemplate {
  readonly parts: readonly (string | Expr)[];
  /** Set when the text is exactly one expression (spaces around allowed): its type is kept. */
  readonly single?: Expr;
  readonly problem?: TemplateProblem;
}

const cache = new BoundedCache<ValueTemplate>(1000);

export function valueTemplateFor(text: string): ValueTemplate {
  return cache.getOrCompute(text, parseValueTemplate);
}

function parseValueTemplate(text: string): ValueTemplate {
  try {
    return splitValueTemplate(text);
  } catch (error) {
    if (error instanceof TemplateProblemSignal) return { parts: [], problem: error };
    throw error;
  }
}

/**
 * Handlebars text rules: `\{{x}}` is the literal text `{{x}}`, `\\{{x}}` is a backslash then
 * the expression, and `{{~x~}}` trims the whitespace next to it.
 */
function splitValueTemplate(text: string): ValueTemplate {
  const parts: (string | Expr)[] = [];
  let pending = '';
  let trimNext = false;
  let cursor = 0;
  for (let at = text.indexOf('{{'); at !== -1; at = text.indexOf('{{', cursor)) {
    if (!opensExpression(text, at)) {
      pending += text.slice(cursor, at + 1);
      cursor = at + 1;
      continue;
    }
    const escapes = text[at - 1] === '\\' ? (text[at - 2] === '\\' ? 2 : 1) : 0;
    if (escapes === 1) {
      pending += text.slice(cursor, at - 1) + '{{';
      cursor = at + 2;
      continue;
    }
    const end = findExpressionEnd(text, at);
    const span = compileSpan(text.slice(at, end), at);
    pending += text.slice(cursor, escapes === 2 ? at - 1 : at);
    if (trimNext) pending = pending.trimStart();
    if (span.trimBefore) pending = pending.trimEnd();
    if (span.kind === 'expression') {
      if (pending !== '') parts.push(pending);
      parts.push(span.expr);
      pending = '';
    }
    trimNext = span.trimAfter;
    cursor = end;
  }
  pending += text.slice(cursor);
  if (trimNext) pending = pending.trimStart();
  if (pending !== '') parts.push(pending);

  const expressions = parts.filter((part): part is Expr => typeof part !== 'string');
  const onlySpacesAround = parts.every((part) => typeof part !== 'string' || part.trim() === '');
  const single = expressions.length === 1 && onlySpacesAround ? expressions[0] : undefined;
  return single ? { parts, single } : { parts };
}
