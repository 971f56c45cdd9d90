import { lookupPath, type Lookup, type TemplateContext } from './context.js';
import type { Expr } from './expression.js';
import { templateError } from './template-error.js';
import { toText } from './text-form.js';

const ROOTS = new Set(['trigger', 'steps', 'now']);

/**
 * The value of an expression, with its type intact. A missing path is an error naming the
 * path and the field: an empty string sent to the database would hide the typo.
 */
export function evaluate(expr: Expr, context: TemplateContext, fieldPath: string): unknown {
  switch (expr.kind) {
    case 'literal':
      return expr.value;
    case 'default': {
      const found = tryEvaluate(expr.value, context, fieldPath);
      return found.found && found.value !== null ? found.value : evaluate(expr.fallback, context, fieldPath);
    }
    case 'path': {
      const found = lookupPath(context, expr.segments);
      if (found.found) return found.value;
      const root = expr.segments[0] ?? '';
      const hint = ROOTS.has(root) ? '' : ' (a path starts with trigger, steps or now)';
      throw templateError(fieldPath, `${expr.display} is not in the trigger data or earlier steps${hint}`);
    }
  }
}

/** Like evaluate, but a missing path is reported instead of thrown (for `default`). */
function tryEvaluate(expr: Expr, context: TemplateContext, fieldPath: string): Lookup {
  if (expr.kind === 'path') return lookupPath(context, expr.segments);
  const value = evaluate(expr, context, fieldPath);
  return value === undefined ? { found: false } : { found: true, value };
}

/** A lone expression keeps its type; `undefined` (only from a literal) is sent as null. */
export function evaluateTyped(expr: Expr, context: TemplateContext, fieldPath: string): unknown {
  const value = evaluate(expr, context, fieldPath);
  return value === undefined ? null : value;
}

/** Text mixing literals and expressions: always a string. */
export function evaluateText(parts: readonly (string | Expr)[], context: TemplateContext, fieldPath: string): string {
  let out = '';
  for (const part of parts) out += typeof part === 'string' ? part : toText(evaluate(part, context, fieldPath));
  return out;
}
