/**
 * The text a SQL string literal stands for, so that the literal parts of 'It''s {{x}}' end
 * up in the bound value exactly as PostgreSQL would have read them.
 * Assumes standard_conforming_strings = on (the default since PostgreSQL 9.1).
 */
export function decodeLiteralText(raw: string, backslashEscapes: boolean): string {
  if (!backslashEscapes) return raw.replaceAll("''", "'");
  return raw.replace(/''|\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|([\s\S]))/g, decodeEscape);
}

const SIMPLE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function decodeEscape(match: string, octal?: string, hex?: string, u4?: string, u8?: string, other?: string): string {
  if (match === "''") return "'";
  // Octal and hex escapes name bytes; as code points they are right for ASCII, the common case.
  if (octal !== undefined) return String.fromCharCode(parseInt(octal, 8));
  if (hex !== undefined) return String.fromCharCode(parseInt(hex, 16));
  const unicode = u4 ?? u8;
  if (unicode !== undefined) return String.fromCodePoint(parseInt(unicode, 16));
  return other === undefined ? match : (SIMPLE[other] ?? other);
}
