import { bindSqlTemplates } from './bind-sql.js';
import type { TemplateContext } from './context.js';
import { renderValue } from './render-value.js';

/**
 * Exactly what a step sends: parameters rendered (paths "input.parameters[i]"), then the SQL's
 * own templates bound after them. Pure and deterministic, so a UI can show it as a preview.
 */
export function renderStatement(
  query: string,
  parameters: readonly unknown[] | undefined,
  context: TemplateContext,
): { text: string; values: unknown[] } {
  const given = parameters ?? [];
  const values = given.map((parameter, i) => renderValue(parameter, context, `input.parameters[${i}]`));
  const bound = bindSqlTemplates(query, given.length, context, 'input.query');
  if (bound.values.length > 0) values.push(...bound.values);
  return { text: bound.text, values };
}
