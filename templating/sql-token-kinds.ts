import type { PgToken } from './pg-parser.js';
import type { QuotedKind } from './sql-quoted-slot.js';
import type { TemplateSpan } from './sql-template-spans.js';

/* Reading PostgreSQL's tokens around a template: what kind of quoting, what comes next. */

export const isCommentToken = (token: PgToken): boolean => token.name === 'SQL_COMMENT' || token.name === 'C_COMMENT';

/** `N` right before a string holding templates: National character syntax, N'…'. */
export function isNPrefix(text: string, token: PgToken, next: PgToken | undefined, spansIn: (token: PgToken) => TemplateSpan[]): boolean {
  return next !== undefined && next.start === token.end && /^[nN]$/.test(text.slice(token.start, token.end)) && text[next.start] === "'" && spansIn(next).length > 0;
}

/** Strings and quoted identifiers, by how the token starts. */
export function quotedKind(token: PgToken, raw: string): QuotedKind | undefined {
  const first = raw[0];
  if (first === "'") return 'string';
  if (first === '$' && token.name === 'SCONST') return 'dollar';
  if (/^[eE]'/.test(raw)) return 'escape-string';
  if (first === '"') return 'identifier';
  if (/^[uU]&"/.test(raw)) return 'identifier';
  if (/^([uU]&|[bBxX])'/.test(raw)) return 'prefixed';
  return undefined;
}

/** The next token that is not a comment, as text (undefined at the end). */
export function nextSignificant(text: string, tokens: readonly PgToken[], position: number): string | undefined {
  for (let i = position + 1; i < tokens.length; i++) {
    const token = tokens[i] as PgToken;
    if (isCommentToken(token)) continue;
    return text.slice(token.start, token.end);
  }
  return undefined;
}

/** `{{x}}::type` and `CAST({{x}} AS type)`: the author chose the type. */
export function isCast(text: string, tokens: readonly PgToken[], position: number, after: string | undefined): boolean {
  if (after === '::') return true;
  if (after?.toUpperCase() !== 'AS') return false;
  const before: string[] = [];
  for (let i = position - 1; i >= 0 && before.length < 2; i--) {
    const token = tokens[i] as PgToken;
    if (!isCommentToken(token)) before.push(text.slice(token.start, token.end).toUpperCase());
  }
  return before[0] === '(' && before[1] === 'CAST';
}
