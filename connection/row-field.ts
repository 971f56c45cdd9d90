/**
 * Sets one column of a row built as a plain object. A column named "__proto__" becomes an own
 * property, as in Query Rows (statement.ts) and JSON.parse: plain assignment would drop it and,
 * for a jsonb object, make that object the row's prototype.
 */
export function setField(row: Record<string, unknown>, name: string, value: unknown): void {
  if (name === '__proto__') Object.defineProperty(row, name, { value, enumerable: true, writable: true, configurable: true });
  else row[name] = value;
}
