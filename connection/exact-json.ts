/**
 * json/jsonb text → JavaScript, without losing numbers. JSON.parse turns 12345678901234567890
 * into 12345678901234567000 and 1e400 into Infinity (then null). Here a number a double holds
 * exactly (its shortest decimal form names the same value) stays a number; any other number is
 * kept as a string of its exact digits as PostgreSQL sent them. Text without a long or
 * exponent number (nearly all of it) takes JSON.parse's fast path.
 */
import { setField } from './row-field.js';

/**
 * 16 significant digits or more (the decimal point may fall between any two: 9007199254740.993,
 * REVIEW4 R34), or an exponent (after a digit: "name" keeps the fast path). A decimal of at most
 * 15 significant digits comes back from a double unchanged, so JSON.parse is exact below that.
 */
const MAYBE_INEXACT = /\d(?:\.?\d){15}|\d[eE]/;

export function parseExactJson(text: string): unknown {
  if (!MAYBE_INEXACT.test(text)) return JSON.parse(text);
  // Valid JSON for sure (PostgreSQL checked it): only numbers need care.
  return parseKeepingNumbers({ text, at: 0 });
}

interface Reader {
  text: string;
  at: number;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

function skipSpace(r: Reader): void {
  while (r.at < r.text.length && ' \t\n\r'.includes(r.text[r.at]!)) r.at++;
}

type Container = unknown[] | Record<string, unknown>;

/**
 * Iterative, with an explicit stack of open containers: PostgreSQL accepts jsonb nested thousands of
 * levels deep, more than Node's call stack holds, and this runs inside the socket's data handler
 * where a RangeError would end the host process.
 */
function parseKeepingNumbers(r: Reader): unknown {
  const open: Container[] = [];
  // The key the next value goes under, per open container; undefined for an array.
  const keys: (string | undefined)[] = [];
  for (;;) {
    skipSpace(r);
    const c = r.text[r.at];
    let done: unknown;
    if (c === '{' || c === '[') {
      r.at++;
      skipSpace(r);
      const container: Container = c === '{' ? {} : [];
      if (r.text[r.at] === (c === '{' ? '}' : ']')) {
        r.at++;
        done = container;
      } else {
        open.push(container);
        keys.push(c === '{' ? key(r) : undefined);
        continue;
      }
    } else {
      done = scalar(r, c);
    }
    // Put the finished value into its container; each container it completes is in turn finished.
    for (;;) {
      const container = open[open.length - 1];
      if (container === undefined) return done;
      const name = keys[keys.length - 1];
      if (name === undefined) (container as unknown[]).push(done);
      else setField(container as Record<string, unknown>, name, done);
      skipSpace(r);
      if (r.text[r.at++] === ',') {
        if (name !== undefined) keys[keys.length - 1] = key(r);
        break;
      }
      open.pop();
      keys.pop();
      done = container;
    }
  }
}

/** An object member's key and its colon. */
function key(r: Reader): string {
  skipSpace(r);
  const name = string(r) as string;
  skipSpace(r);
  r.at++; // :
  return name;
}

function scalar(r: Reader, c: string | undefined): unknown {
  if (c === '"') return string(r);
  if (c === 't') return (r.at += 4), true;
  if (c === 'f') return (r.at += 5), false;
  if (c === 'n') return (r.at += 4), null;
  return exactNumber(token(r, NUMBER));
}

/**
 * A string token, scanned by hand: a regex alternation per character keeps a backtrack entry per
 * character, and a string of ~8 M characters (a base64 attachment) overflowed it (REVIEW4 R27).
 * The closing quote is the first one not escaped, i.e. preceded by an even run of backslashes.
 */
function string(r: Reader): unknown {
  const { text } = r;
  const start = r.at;
  let end = start;
  for (;;) {
    end = text.indexOf('"', end + 1);
    if (end < 0) throw new SyntaxError(`Unterminated JSON string at position ${start}`);
    let backslashes = 0;
    while (text.charCodeAt(end - 1 - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 0) break;
  }
  r.at = end + 1;
  return JSON.parse(text.slice(start, r.at));
}

function token(r: Reader, pattern: RegExp): string {
  pattern.lastIndex = r.at;
  const match = pattern.exec(r.text);
  if (!match) throw new SyntaxError(`Unexpected JSON at position ${r.at}`);
  r.at += match[0].length;
  return match[0];
}

/** The number when a double holds it exactly, else its text. */
export function exactNumber(text: string): number | string {
  const number = Number(text);
  return Number.isFinite(number) && decimal(String(number)) === decimal(text) ? number : text;
}

/** A canonical decimal form: sign, significant digits, exponent of the first digit. */
function decimal(text: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text)!;
  const [, sign, whole, fraction = '', exponent = '0'] = match;
  const digits = (whole! + fraction).replace(/^0+/, '');
  if (digits === '') return '0';
  const leadingZeros = (whole! + fraction).length - digits.length;
  const point = whole!.length + Number(exponent) - leadingZeros;
  return `${sign}${digits.replace(/0+$/, '')}e${point}`;
}
