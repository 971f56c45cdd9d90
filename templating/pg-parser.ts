/**
 * PostgreSQL's own scanner and parser (libpg-query: the server's scan.l and gram.y compiled to
 * WebAssembly), so SQL is split exactly where the server splits it: comments ended by a lone
 * \r, E'…' strings continued on the next line, dollar quotes, nested block comments.
 * The module is loaded once, when this file is first imported (about 100 ms).
 */
import { loadModule, parseSync, scanSync, type ParseResult } from 'libpg-query';
import { BoundedCache } from './bounded-cache.js';

await loadModule();

/** One token, with [start, end) in UTF-16 offsets of the text scanned (the library counts bytes). */
export interface PgToken {
  readonly start: number;
  readonly end: number;
  /** The scanner's token name: IDENT, SCONST, PARAM, SQL_COMMENT, C_COMMENT, TYPECAST, ASCII_40, … */
  readonly name: string;
  /** True for SQL keywords (reserved or not). */
  readonly keyword: boolean;
}

/** Why PostgreSQL could not read the text, and where (UTF-16 offset), as the server would report it. */
export class PgSyntaxError extends Error {
  constructor(message: string, readonly offset: number | undefined) {
    super(message);
  }
}

export function scanPg(text: string): PgToken[] {
  refuseNul(text);
  let raw: { tokens?: { start: number; end: number; tokenName: string; keywordKind: number }[] };
  try {
    raw = scanSync(text) as typeof raw;
  } catch {
    // The scanner's own error text is not passed on by the library's scan; the parser reports it.
    throw syntaxErrorOf(text);
  }
  const toChar = charOffsets(text);
  return (raw.tokens ?? []).map((t) => ({ start: toChar(t.start), end: toChar(t.end), name: t.tokenName, keyword: t.keywordKind > 0 }));
}

const trees = new BoundedCache<ParseResult | PgSyntaxError>(500);

/** The raw parse tree (no catalog lookups), cached by text; a PgSyntaxError when it does not parse. */
export function parsePg(text: string): ParseResult | PgSyntaxError {
  return trees.getOrCompute(text, (sql) => {
    try {
      refuseNul(sql);
      return parseSync(sql);
    } catch (error) {
      return error instanceof PgSyntaxError ? error : syntaxErrorFrom(sql, error);
    }
  });
}

function syntaxErrorOf(text: string): PgSyntaxError {
  try {
    parseSync(text);
  } catch (error) {
    return syntaxErrorFrom(text, error);
  }
  return new PgSyntaxError('PostgreSQL could not scan this SQL', undefined);
}

function syntaxErrorFrom(text: string, error: unknown): PgSyntaxError {
  const details = (error as { sqlDetails?: { message?: string; cursorPosition?: number } }).sqlDetails;
  const message = details?.message ?? (error instanceof Error ? error.message : String(error));
  // The library's cursorPosition is 0-based and counts bytes.
  const position = details?.cursorPosition;
  return new PgSyntaxError(message, position === undefined ? undefined : charOffsets(text)(position));
}

/** The library hands the text over as a C string: a NUL would silently cut it short. */
function refuseNul(text: string): void {
  const at = text.indexOf('\0');
  if (at !== -1) throw new PgSyntaxError('the SQL contains a NUL character (\\0), which PostgreSQL does not accept', at);
}

/** Maps UTF-8 byte offsets (as the WASM side sees the text) to UTF-16 offsets. */
function charOffsets(text: string): (byte: number) => number {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return (byte) => byte;
  const byByte: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const pair = code >= 0xd800 && code <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    // A lone surrogate is sent as U+FFFD (3 bytes).
    const bytes = code < 0x80 ? 1 : code < 0x800 ? 2 : pair ? 4 : 3;
    for (let b = 0; b < bytes; b++) byByte.push(i);
    if (pair) i++;
  }
  return (byte) => (byte >= byByte.length ? text.length : (byByte[byte] as number));
}
