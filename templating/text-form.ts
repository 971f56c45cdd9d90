/**
 * How a value reads inside text that mixes literals and expressions: strings as they are,
 * null as nothing, dates as ISO 8601, objects and arrays as JSON (never "[object Object]").
 */
export function toText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value, bigIntAsText) ?? '';
  return String(value);
}

// JSON.stringify throws on bigint; driver results (int8 in some setups) may carry them.
function bigIntAsText(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
