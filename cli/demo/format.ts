/**
 * Terminal display of a step's values: one line per field, multi-line SQL as an indented block,
 * long row lists and arrays shortened (the --json output keeps everything).
 */

const SHOWN_ROWS = 3;
const SHOWN_ITEMS = 12;

const LABEL_WIDTH = 18;

export function formatField(label: string, value: unknown, indent: string): string[] {
  const head = `${indent}${label.padEnd(Math.max(LABEL_WIDTH, label.length + 2))}`;
  if (typeof value === 'string' && value.includes('\n')) {
    return [`${indent}${label}`, ...value.split('\n').map((line) => `${indent}    ${line}`)];
  }
  // SQL text and messages read best as they are, without JSON quotes and escapes.
  if (typeof value === 'string') return [`${head}${value}`];
  if (isRowsOutput(value)) {
    const { rows, ...rest } = value;
    const lines = [`${head}${JSON.stringify(rest)}, rows:${rows.length ? '' : ' (none)'}`];
    lines.push(...rows.slice(0, SHOWN_ROWS).map((row) => `${indent}    ${JSON.stringify(row)}`));
    if (rows.length > SHOWN_ROWS) lines.push(`${indent}    … ${rows.length - SHOWN_ROWS} more rows`);
    return lines;
  }
  return [`${head}${JSON.stringify(shorten(value))}`];
}

function isRowsOutput(value: unknown): value is { rows: unknown[] } & Record<string, unknown> {
  return typeof value === 'object' && value !== null && Array.isArray((value as { rows?: unknown }).rows);
}

function shorten(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.slice(0, SHOWN_ITEMS).map(shorten);
    return value.length > SHOWN_ITEMS ? [...items, `… ${value.length - SHOWN_ITEMS} more`] : items;
  }
  if (typeof value === 'object' && value !== null && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, shorten(item)]));
  }
  return value;
}
