/**
 * Templating: {{ }} in step inputs, rendered against the trigger data, earlier steps' outputs
 * and the step's start time. Values keep their types, and templates in SQL text always become
 * bound parameters, never pasted text.
 */
export type { TemplateContext } from './context.js';
export { renderValue } from './render-value.js';
export { bindSqlTemplates } from './bind-sql.js';
export { renderStatement } from './render-statement.js';
export { hasTemplate } from './expression-spans.js';
export { parsePg, PgSyntaxError } from './pg-parser.js';
