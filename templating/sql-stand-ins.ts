import type { TemplateSpan } from './sql-template-spans.js';
import { TemplateProblemSignal } from './template-error.js';

/**
 * What PostgreSQL's scanner reads in place of a template: a value template is a parameter,
 * spaced off from its neighbours; a Handlebars comment is a space, so `1{{!c}}2` stays two
 * tokens and `-{{!c}}-` never becomes a `--` comment. Neither stand-in holds a quote, a
 * backslash, `*`, `/`, `-` or a newline, so inside a string or comment it is plain content.
 */
export const VALUE_STAND_IN = ' $0 ';
export const COMMENT_STAND_IN = ' ';

/** The SQL as the scanner reads it, and for each of its offsets the offset in the SQL written. */
export function standInText(sql: string, spans: readonly TemplateSpan[]): { text: string; original: number[]; standIns: number[] } {
  let text = '';
  const original: number[] = [];
  const standIns: number[] = [];
  let cursor = 0;
  const copy = (until: number) => {
    for (let i = cursor; i < until; i++) original.push(i);
    text += sql.slice(cursor, until);
  };
  for (const span of spans) {
    copy(span.start);
    const standIn = isComment(span) ? COMMENT_STAND_IN : VALUE_STAND_IN;
    standIns.push(text.length);
    for (let i = 0; i < standIn.length; i++) original.push(span.start);
    text += standIn;
    cursor = span.end;
  }
  copy(sql.length);
  original.push(sql.length);
  return { text, original, standIns };
}

/**
 * A template inside a SQL comment is not rendered; it is sent as written unless its text could
 * end the comment (a newline, or a block comment marker), where it is sent as a space.
 */
export function commentText(sql: string, start: number, end: number, inside: readonly TemplateSpan[], lineComment: boolean): string {
  let out = '';
  let cursor = start;
  for (const span of inside) {
    const source = sql.slice(span.start, span.end);
    const unsafe = lineComment ? /[\r\n]/.test(source) : source.includes('/*') || source.includes('*/');
    // Not a template Handlebars can read, yet it would decide where the comment ends: report it.
    if (unsafe && span.compiled instanceof TemplateProblemSignal) throw span.compiled;
    out += sql.slice(cursor, span.start) + (unsafe ? COMMENT_STAND_IN : source);
    cursor = span.end;
  }
  return out + sql.slice(cursor, end);
}

function isComment(span: TemplateSpan): boolean {
  return !(span.compiled instanceof TemplateProblemSignal) && span.compiled.kind === 'comment';
}
