import type { TemplateContext } from './context.js';
import { evaluateText, evaluateTyped } from './evaluate.js';
import { sqlPlanFor } from './sql-plan.js';
import { problemToError, templateError } from './template-error.js';
import { sqlTypeOf } from './value-type.js';

/**
 * Turns `{{ }}` in SQL text into bound parameters numbered after the author's own
 * ($k+1, $k+2, …; the same expression in the same kind of place reuses its number). A value is
 * never pasted into the SQL: the returned text holds only the author's SQL, $n placeholders
 * and, for a bare {{ }} whose value has a type, a cast naming it ($n::pg_catalog.int8, see value-type.ts).
 */
export function bindSqlTemplates(
  sql: string,
  authorParameterCount: number,
  context: TemplateContext,
  fieldPath: string,
): { text: string; values: unknown[] } {
  if (!sql.includes('{{')) return { text: sql, values: [] }; // fast path: nothing to bind

  const plan = sqlPlanFor(sql);
  if (plan.problem) throw problemToError(fieldPath, sql, plan.problem);
  if (plan.holes.length === 0) return { text: plan.chunks.join(''), values: [] };
  if (plan.highestPlaceholder > authorParameterCount) {
    // Our numbers would collide with the author's $n and silently bind the wrong value.
    throw templateError(
      fieldPath,
      `the SQL uses $${plan.highestPlaceholder} but ${authorParameterCount} parameter(s) were given; template values are numbered after the given parameters, so add the missing parameters or renumber`,
    );
  }

  const values = plan.slots.map((slot) =>
    slot.kind === 'typed' ? evaluateTyped(slot.expr, context, fieldPath) : evaluateText(slot.parts, context, fieldPath),
  );
  const types = plan.slots.map((_, i) => (plan.holes.some((hole) => hole.slot === i && hole.typed) ? sqlTypeOf(values[i]) : undefined));
  let text = plan.chunks[0] ?? '';
  plan.holes.forEach((hole, i) => {
    const placeholder = `$${authorParameterCount + 1 + hole.slot}`;
    const type = hole.typed ? types[hole.slot] : undefined;
    const typed = type === undefined ? placeholder : hole.parenthesise ? `(${placeholder}::${type})` : `${placeholder}::${type}`;
    text += typed + (plan.chunks[i + 1] ?? '');
  });
  return { text, values };
}
