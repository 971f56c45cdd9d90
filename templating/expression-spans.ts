import { TemplateProblemSignal } from './template-error.js';

/**
 * Finds `{{ … }}` in text. Only a `{{` followed by something that can start a Handlebars
 * expression opens one (a name, `@`, `[`, `(`, `.`, `!`, `#`, `/`, `^`, `>`, `&`, `*`,
 * after an optional `{`, `~` and spaces). So text like the 2-D array literal `'{{1,2},{3,4}}'`
 * or `'{{}}'` stays text instead of becoming a syntax error.
 */
const CAN_START_EXPRESSION = /[\p{L}_$@[(.!#/^>&*]/u;

export function opensExpression(text: string, index: number): boolean {
  if (text.charCodeAt(index) !== 123 || text.charCodeAt(index + 1) !== 123) return false;
  let i = index + 2;
  if (text[i] === '{') i++;
  if (text[i] === '~') i++;
  while (i < text.length && WHITESPACE.test(text[i] as string)) i++;
  const next = text[i];
  return next !== undefined && CAN_START_EXPRESSION.test(next);
}

/** Index of the next `{{` that opens an expression at or after `from`, or -1. */
export function findNextExpression(text: string, from: number): number {
  let index = text.indexOf('{{', from);
  while (index !== -1 && !opensExpression(text, index)) index = text.indexOf('{{', index + 1);
  return index;
}

/**
 * End (exclusive) of the expression opened at `start`. Quotes and `[segment]` literals inside
 * are skipped, so `{{default trigger.x "}}"}}` ends where Handlebars would end it, and a
 * quote inside a mustache never ends the SQL literal around it.
 */
export function findExpressionEnd(text: string, start: number): number {
  let i = start + 2;
  const triple = text[i] === '{';
  const afterTilde = text[i] === '~' ? i + 1 : i;
  if (text.startsWith('!--', afterTilde)) return endOfComment(text, start, /--~?\}\}/g, afterTilde);
  if (text[afterTilde] === '!') return endOfComment(text, start, /\}\}/g, afterTilde);

  while (i < text.length) {
    const c = text[i];
    if (c === '"' || c === "'" || c === '[') {
      i = skipQuoted(text, i, c === '[' ? ']' : c, start);
    } else if (c === '}' && text[i + 1] === '}') {
      return triple && text[i + 2] === '}' ? i + 3 : i + 2;
    } else {
      i++;
    }
  }
  throw unclosed(start);
}

/** Handlebars strings and segment literals: a backslash escapes the closing character. */
function skipQuoted(text: string, open: number, close: string, start: number): number {
  for (let i = open + 1; i < text.length; i++) {
    if (text[i] === '\\' && text[i + 1] === close) i++;
    else if (text[i] === close) return i + 1;
  }
  throw unclosed(start);
}

function endOfComment(text: string, start: number, closing: RegExp, from: number): number {
  closing.lastIndex = from;
  const match = closing.exec(text);
  if (!match) throw unclosed(start);
  return match.index + match[0].length;
}

function unclosed(start: number): TemplateProblemSignal {
  return new TemplateProblemSignal('"{{" is not closed with "}}"', start);
}

/** Handlebars' lexer skips JavaScript whitespace, no-break space included. */
const WHITESPACE = /\s/;

/** True when a string contains a template expression. */
export function hasTemplate(value: string): boolean {
  return value.includes('{{') && findNextExpression(value, 0) !== -1;
}
