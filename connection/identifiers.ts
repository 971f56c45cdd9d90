/**
 * The one place pg-actions writes identifiers into SQL. Every name is double-quoted with inner
 * quotes doubled, so no name can end the identifier early; NUL bytes cannot be sent at all.
 */
import { PgActionsError } from './errors/index.js';

const MAX_IDENTIFIER_BYTES = 63;

export function quoteIdentifier(name: string, field = 'identifier'): string {
  if (name.length === 0) throw new PgActionsError('INVALID_INPUT', { message: `${field} must not be empty`, problems: [`${field} must not be empty`] });
  if (name.includes('\0')) {
    throw new PgActionsError('INVALID_INPUT', { message: `${field} must not contain a NUL character`, problems: [`${field} must not contain a NUL character`] });
  }
  if (Buffer.byteLength(name) > MAX_IDENTIFIER_BYTES) {
    throw new PgActionsError('INVALID_INPUT', {
      message: `${field} is longer than PostgreSQL's 63-byte limit for names`,
      problems: [`${field} is longer than 63 bytes`],
    });
  }
  return '"' + name.replace(/"/g, '""') + '"';
}

/** "schema.table" or "table" (each part may be "quoted" to contain dots) → quoted, qualified name. */
export function quoteQualifiedName(name: string, field = 'table'): string {
  return splitQualifiedName(name, field).map((part) => quoteIdentifier(part, field)).join('.');
}

/** Splits on dots outside double quotes; a quoted part keeps its dots and un-doubles its quotes. */
export function splitQualifiedName(name: string, field = 'table'): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  let wasQuoted = false;
  for (let i = 0; i < name.length; i++) {
    const ch = name[i]!;
    if (quoted) {
      if (ch === '"' && name[i + 1] === '"') (current += '"'), i++;
      else if (ch === '"') quoted = false;
      else current += ch;
    } else if (ch === '"') (quoted = true), (wasQuoted = true);
    else if (ch === '.') parts.push(current), (current = ''), (wasQuoted = false);
    else current += ch;
  }
  if (quoted) throw new PgActionsError('INVALID_INPUT', { message: `${field} has an unclosed double quote`, problems: [`${field} has an unclosed double quote`] });
  parts.push(current);
  if (parts.length > 2 && !wasQuoted) {
    throw new PgActionsError('INVALID_INPUT', { message: `${field} must be "table" or "schema.table"`, problems: [`${field} must be "table" or "schema.table"`] });
  }
  return parts;
}
