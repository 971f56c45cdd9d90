/**
 * json/jsonb text → JavaScript, without losing numbers. JSON.parse turns 12345678901234567890
 * into 12345678901234567000 and 1e400 into Infinity (then null). Here a number a double holds
 * exactly (its shortest decimal form names the same value) stays a number; any other number is
 * kept as a string of its exact digits as PostgreSQL sent them. Text without a long or
 * exponent number (nearly all of it) takes JSON.parse's fast path.
 */
const MAYBE_INEXACT = /\d{16}|[eE]/;

export function parseExactJson(text: string): unknown {
  if (!MAYBE_INEXACT.test(text)) return JSON.parse(text);
  // Valid JSON for sure (PostgreSQL checked it): only numbers need care.
  const reader = { text, at: 0 };
  return value(reader);
}

interface Reader {
  text: string;
  at: number;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\]|\\.)*"/y;

function skipSpace(r: Reader): void {
  while (r.at < r.text.length && ' \t\n\r'.includes(r.text[r.at]!)) r.at++;
}

function value(r: Reader): unknown {
  skipSpace(r);
  const c = r.text[r.at];
  if (c === '{') {
    r.at++;
    const object: Record<string, unknown> = {};
    skipSpace(r);
    if (r.text[r.at] === '}') return r.at++, object;
    for (;;) {
      skipSpace(r);
      const key = token(r, STRING) as string;
      skipSpace(r);
      r.at++; // :
      // defineProperty: a key named "__proto__" is a plain property, as with JSON.parse.
      Object.defineProperty(object, JSON.parse(key) as string, { value: value(r), enumerable: true, writable: true, configurable: true });
      skipSpace(r);
      if (r.text[r.at++] === '}') return object;
    }
  }
  if (c === '[') {
    r.at++;
    const array: unknown[] = [];
    skipSpace(r);
    if (r.text[r.at] === ']') return r.at++, array;
    for (;;) {
      array.push(value(r));
      skipSpace(r);
      if (r.text[r.at++] === ']') return array;
    }
  }
  if (c === '"') return JSON.parse(token(r, STRING));
  if (c === 't') return (r.at += 4), true;
  if (c === 'f') return (r.at += 5), false;
  if (c === 'n') return (r.at += 4), null;
  return exactNumber(token(r, NUMBER));
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
