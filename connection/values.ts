/**
 * JavaScript values → PostgreSQL text parameters, always bound ($n), never pasted into SQL.
 * Dates travel as ISO 8601 in UTC (unambiguous whatever the process's time zone), arrays as
 * array literals, plain objects as JSON, Buffers as binary bytea.
 */
export function toParameter(value: unknown): string | Buffer | null {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
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

function isoDate(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new TypeError('an invalid Date cannot be sent to PostgreSQL');
  return date.toISOString();
}

/** ['a', null, ['b"c']] → {"a",NULL,{"b\"c"}} */
function arrayLiteral(items: readonly unknown[]): string {
  const parts = items.map((item) => {
    if (item === null || item === undefined) return 'NULL';
    if (Array.isArray(item)) return arrayLiteral(item);
    const text = item instanceof Date ? isoDate(item) : typeof item === 'object' ? JSON.stringify(item) : String(item);
    return '"' + text.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
  });
  return '{' + parts.join(',') + '}';
}
