import Handlebars from 'handlebars';
import { displayPath } from './context.js';
import { TemplateProblemSignal } from './template-error.js';

/** A parsed expression: a path, a literal, or the `default` helper. Nothing else is evaluated. */
export type Expr =
  | { readonly kind: 'path'; readonly segments: readonly string[]; readonly display: string }
  | { readonly kind: 'literal'; readonly value: unknown }
  | { readonly kind: 'default'; readonly value: Expr; readonly fallback: Expr };

/** One `{{ … }}` span: a comment renders nothing; `~` asks to trim the text around it. */
export type CompiledSpan =
  | { readonly kind: 'comment'; readonly trimBefore: boolean; readonly trimAfter: boolean }
  | { readonly kind: 'expression'; readonly expr: Expr; readonly trimBefore: boolean; readonly trimAfter: boolean };

const ONLY_SIMPLE = 'use {{path}} or {{default path "fallback"}}';

/**
 * Parses one `{{ … }}` span with Handlebars' own parser (so `[segment]` literals, string
 * literals, sub-expressions and `~` behave as in Handlebars) and keeps only what pg-actions
 * evaluates itself. `offset` places problems in the surrounding text.
 */
export function compileSpan(source: string, offset: number): CompiledSpan {
  if (/^\{\{\{?~?\s*([#^/>*]|else\b)/.test(source)) {
    throw new TemplateProblemSignal(`${source}: block helpers and partials are not supported; ${ONLY_SIMPLE}`, offset);
  }
  let program: hbs.AST.Program;
  try {
    program = Handlebars.parse(source);
  } catch (error) {
    const detail = error instanceof Error ? (error.message.split('\n').pop() ?? '') : String(error);
    throw new TemplateProblemSignal(`template syntax error in ${source}: ${detail}`, offset);
  }
  const statement = program.body[0];
  if (program.body.length !== 1 || !statement) throw new TemplateProblemSignal(`${source}: ${ONLY_SIMPLE}`, offset);
  if (statement.type === 'CommentStatement') {
    const { strip } = statement as hbs.AST.CommentStatement;
    return { kind: 'comment', trimBefore: strip.open, trimAfter: strip.close };
  }
  if (statement.type !== 'MustacheStatement') throw new TemplateProblemSignal(`${source}: ${ONLY_SIMPLE}`, offset);
  const mustache = statement as hbs.AST.MustacheStatement;
  const fail = (problem: string): never => {
    throw new TemplateProblemSignal(`${source}: ${problem}`, offset);
  };
  const expr = compileCall(mustache.path, mustache.params, mustache.hash, fail);
  return { kind: 'expression', expr, trimBefore: mustache.strip.open, trimAfter: mustache.strip.close };
}

function compileCall(
  head: hbs.AST.PathExpression | hbs.AST.Literal,
  params: readonly hbs.AST.Expression[],
  hash: hbs.AST.Hash | undefined,
  fail: (problem: string) => never,
): Expr {
  if (hash && hash.pairs.length > 0) fail(`named arguments (name=value) are not supported; ${ONLY_SIMPLE}`);
  if (params.length === 0) return compileOperand(head, fail);
  const name = head.type === 'PathExpression' ? (head as hbs.AST.PathExpression).original : String(head.type);
  if (name !== 'default') fail(`"${name}" is not a known helper; ${ONLY_SIMPLE}`);
  const [value, fallback] = params;
  if (params.length !== 2 || !value || !fallback) fail('default takes two arguments: {{default path "fallback"}}');
  return { kind: 'default', value: compileOperand(value as hbs.AST.Expression, fail), fallback: compileOperand(fallback as hbs.AST.Expression, fail) };
}

function compileOperand(node: hbs.AST.Expression, fail: (problem: string) => never): Expr {
  switch (node.type) {
    case 'PathExpression': {
      const path = node as hbs.AST.PathExpression;
      if (path.data) fail(`@-variables such as ${path.original} are not available; paths start with trigger, steps or now`);
      if (path.depth > 0) fail(`parent paths (../) are not supported; paths start with trigger, steps or now`);
      if (path.parts.length === 0) fail(`"${path.original}" is not a path; paths start with trigger, steps or now`);
      return { kind: 'path', segments: path.parts, display: displayPath(path.parts) };
    }
    case 'SubExpression': {
      const call = node as hbs.AST.SubExpression;
      return compileCall(call.path, call.params, call.hash, fail);
    }
    case 'StringLiteral':
    case 'NumberLiteral':
    case 'BooleanLiteral':
      return { kind: 'literal', value: (node as hbs.AST.StringLiteral).value };
    case 'NullLiteral':
      return { kind: 'literal', value: null };
    case 'UndefinedLiteral':
      return { kind: 'literal', value: undefined };
    default:
      return fail(`${node.type} is not supported; ${ONLY_SIMPLE}`);
  }
}
