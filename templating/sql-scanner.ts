import { findExpressionEnd, opensExpression } from './expression-spans.js';
import type { QuotedToken, Span, SqlToken } from './sql-tokens.js';

const WORD_START = /[A-Za-z_\u0080-\uFFFF]/;
const WORD_PART = /[\w$\u0080-\uFFFF]/;
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uFFFF][\w\u0080-\uFFFF]*)?\$/y;

/**
 * Splits SQL into tokens the way PostgreSQL's lexer sees quoting: '…' with '' escapes,
 * E'…' with backslash escapes, "…" identifiers, $tag$…$tag$ strings, -- and nested /* *\/
 * comments, and $n placeholders. Expressions are recognised in code, strings and identifiers
 * (quotes inside them are skipped, so they cannot end the SQL literal around them).
 */
export function scanSql(sql: string): SqlToken[] {
  const tokens: SqlToken[] = [];
  let i = 0;
  while (i < sql.length) {
    const token = nextToken(sql, i);
    tokens.push(token);
    i = token.end;
  }
  return tokens;
}

function nextToken(sql: string, i: number): SqlToken {
  const c = sql[i] as string;
  const next = sql[i + 1];
  if (c === '{' && opensExpression(sql, i)) return { kind: 'template', start: i, end: findExpressionEnd(sql, i) };
  if (/\s/.test(c)) return { kind: 'space', start: i, end: scanWhile(sql, i, /\s/) };
  if (c === '-' && next === '-') return { kind: 'comment', start: i, end: endOfLine(sql, i) };
  if (c === '/' && next === '*') return { kind: 'comment', start: i, end: endOfBlockComment(sql, i) };
  if (c === "'") return scanQuoted(sql, i, i, "'", '', false);
  if (c === '"') return scanQuoted(sql, i, i, '"', '', false);
  if (c === '$') return scanDollar(sql, i);
  if (/[0-9]/.test(c)) return { kind: 'number', start: i, end: scanWhile(sql, i, /[\w.]/) };
  if (WORD_START.test(c)) return scanWord(sql, i);
  return { kind: 'punct', start: i, end: i + 1 };
}

function scanWord(sql: string, start: number): SqlToken {
  const end = scanWhile(sql, start, WORD_PART);
  const upper = sql.slice(start, end).toUpperCase();
  // String prefixes: E'…', N'…', B'…', X'…', U&'…' and U&"…".
  if (sql[end] === "'" && (upper === 'E' || upper === 'N' || upper === 'B' || upper === 'X')) {
    return scanQuoted(sql, start, end, "'", upper, upper === 'E');
  }
  if (upper === 'U' && sql[end] === '&' && (sql[end + 1] === "'" || sql[end + 1] === '"')) {
    return scanQuoted(sql, start, end + 1, sql[end + 1] as string, 'U&', false);
  }
  return { kind: 'word', start, end, upper };
}

function scanQuoted(sql: string, start: number, quote: number, q: string, prefix: string, backslashEscapes: boolean): QuotedToken {
  const templates: Span[] = [];
  let i = quote + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (c === '{' && opensExpression(sql, i)) {
      const end = findExpressionEnd(sql, i);
      templates.push({ start: i, end });
      i = end;
    } else if (backslashEscapes && c === '\\') {
      i += 2;
    } else if (c === q) {
      if (sql[i + 1] !== q) {
        const kind = q === '"' ? 'identifier' : 'string';
        return { kind, start, end: i + 1, contentStart: quote + 1, contentEnd: i, backslashEscapes, prefix, terminated: true, templates };
      }
      i += 2; // doubled quote: an escaped quote inside
    } else {
      i++;
    }
  }
  const kind = q === '"' ? 'identifier' : 'string';
  return { kind, start, end: sql.length, contentStart: quote + 1, contentEnd: sql.length, backslashEscapes, prefix, terminated: false, templates };
}

function scanDollar(sql: string, start: number): SqlToken {
  const placeholderEnd = scanWhile(sql, start + 1, /[0-9]/);
  if (placeholderEnd > start + 1) {
    return { kind: 'placeholder', start, end: placeholderEnd, index: Number(sql.slice(start + 1, placeholderEnd)) };
  }
  DOLLAR_TAG.lastIndex = start;
  const tag = DOLLAR_TAG.exec(sql)?.[0];
  if (!tag) return { kind: 'punct', start, end: start + 1 };
  const contentStart = start + tag.length;
  const close = sql.indexOf(tag, contentStart);
  const contentEnd = close === -1 ? sql.length : close;
  const templates: Span[] = [];
  for (let at = sql.indexOf('{{', contentStart); at !== -1 && at < contentEnd; at = sql.indexOf('{{', at + 1)) {
    if (!opensExpression(sql, at)) continue;
    const close = sql.indexOf('}}', at);
    templates.push({ start: at, end: close === -1 || close >= contentEnd ? at + 2 : close + 2 });
  }
  const end = close === -1 ? sql.length : close + tag.length;
  return { kind: 'dollar', start, end, contentStart, contentEnd, backslashEscapes: false, prefix: tag, terminated: close !== -1, templates };
}

function scanWhile(sql: string, i: number, pattern: RegExp): number {
  while (i < sql.length && pattern.test(sql[i] as string)) i++;
  return i;
}

function endOfLine(sql: string, i: number): number {
  const newline = sql.indexOf('\n', i);
  return newline === -1 ? sql.length : newline;
}

/** PostgreSQL block comments nest: /* a /* b *\/ c *\/ is one comment. */
function endOfBlockComment(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return sql.length;
}
