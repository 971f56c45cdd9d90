/**
 * JavaScript values → PostgreSQL text parameters, always bound ($n), never pasted into SQL.
 * Dates travel as ISO 8601 in UTC (unambiguous whatever the process's time zone), arrays as
 * array literals, plain objects as JSON, Buffers as binary bytea.
 */
import { PgActionsError } from './errors/index.js';

export function toParameter(value: unknown): string | Buffer | null {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
      if (!(value as string & { isWellFormed(): boolean }).isWellFormed()) throw loneSurrogate();
      return value;
    case 'number':
    case 'bigint':
    case 'boolean':
      return String(value);
    case 'object':
      if (value instanceof Date) return isoDate(value);
      if (Buffer.isBuffer(value)) return value;
      if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      if (Array.isArray(value)) return arrayLiteral(value);
      return JSON.stringify(value);
    default:
      throw new TypeError(`a ${typeof value} cannot be sent to PostgreSQL`);
  }
}

function byteaHex(view: ArrayBufferView): string {
  return '\\x' + Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('hex');
}

/** PostgreSQL would store U+FFFD in place of a lone surrogate: changed data, so refuse it. */
function loneSurrogate(): PgActionsError {
  return new PgActionsError('INVALID_VALUE', {
    message: 'A text value contains a lone UTF-16 surrogate (half of an emoji or other character), which is not valid Unicode; it was not sent.',
    fixes: ['Fix the text where it was produced (a string cut in the middle of a character), or remove the stray \\uD800–\\uDFFF character.'],
  });
}

function isoDate(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new TypeError('an invalid Date cannot be sent to PostgreSQL');
  return date.toISOString();
}

/** ['a', null, ['b"c']] → {"a",NULL,{"b\"c"}} */
function arrayLiteral(items: readonly unknown[]): string {
  const parts = items.map((item) => {
    if (item === null || item === undefined) return 'NULL';
    if (Array.isArray(item)) return arrayLiteral(item);
    const text =
      item instanceof Date ? isoDate(item)
      : ArrayBuffer.isView(item) ? byteaHex(item) // bytea[]: \x… hex, not the JSON of a Buffer
      : typeof item === 'object' ? JSON.stringify(item)
      : String(item);
    return '"' + text.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
  });
  return '{' + parts.join(',') + '}';
}
