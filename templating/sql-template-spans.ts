import { compileSpan, type CompiledSpan } from './expression.js';
import { findExpressionEnd, findNextExpression } from './expression-spans.js';
import { TemplateProblemSignal } from './template-error.js';

/**
 * A `{{ … }}` in SQL text. Templates are read first, as Handlebars reads them, before any SQL
 * quoting: the SQL is then scanned with each template replaced by a stand-in (see sql-plan.ts),
 * so a quote, comment marker or newline inside a template never moves a SQL token boundary.
 */
export interface TemplateSpan {
  readonly start: number;
  readonly end: number;
  /** The parsed template, or the problem with it (reported only if the span is not inside a SQL comment). */
  readonly compiled: CompiledSpan | TemplateProblemSignal;
}

export function findTemplateSpans(sql: string): TemplateSpan[] {
  const spans: TemplateSpan[] = [];
  for (let at = findNextExpression(sql, 0); at !== -1; ) {
    let end: number;
    try {
      end = findExpressionEnd(sql, at);
    } catch (error) {
      if (!(error instanceof TemplateProblemSignal)) throw error;
      // An unclosed {{ is reported where it is code or a string; inside a SQL comment it is text.
      spans.push({ start: at, end: at + 2, compiled: error });
      at = findNextExpression(sql, at + 2);
      continue;
    }
    const source = sql.slice(at, end);
    if (isArrayLiteral(source)) {
      at = findNextExpression(sql, at + 1);
      continue;
    }
    let compiled: CompiledSpan | TemplateProblemSignal;
    try {
      compiled = compileSpan(source, at);
    } catch (error) {
      if (!(error instanceof TemplateProblemSignal)) throw error;
      compiled = error;
    }
    spans.push({ start: at, end, compiled });
    at = findNextExpression(sql, end);
  }
  return spans;
}

/**
 * `{{a,b},{c,d}}` is a 2-D array literal, not a template: a Handlebars expression never holds
 * a comma or a brace outside its quoted strings and [segments].
 */
function isArrayLiteral(source: string): boolean {
  if (/^\{\{~?!/.test(source)) return false; // a Handlebars comment may hold anything
  const inner = source.startsWith('{{{') ? source.slice(3, -3) : source.slice(2, -2);
  let quote = '';
  for (const c of inner) {
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[') quote = ']';
    else if (c === ',' || c === '{' || c === '}') return true;
  }
  return false;
}
