/** The statement of a query-based action: the author's SQL and parameters, templates bound. */
import type { Statement } from '../connection/index.js';
import { renderStatement, type TemplateContext } from '../templating/index.js';

interface QueryInput {
  query: string;
  parameters?: unknown[];
  timeoutMs?: number;
  maxResultBytes?: number;
}

export function queryStatement(input: QueryInput, context: TemplateContext, options: Partial<Statement> = {}): Statement {
  const { text, values } = renderStatement(input.query, input.parameters, context);
  return { ...options, text, values, timeoutMs: input.timeoutMs, maxResultBytes: input.maxResultBytes };
}
