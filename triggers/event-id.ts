/** Deterministic event ids: a hash of what identifies the change, so a redelivery has the same id. */
import { createHash } from 'node:crypto';

export function eventId(...parts: readonly unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 22);
}

/**
 * "<prefix>:<the key's text as a JSON array of strings>" (`…:["42"]`, `…:["eu","42"]`): the id of a row
 * of a table-sync or polling trigger. Made from the key as PostgreSQL writes it (each column's text,
 * unparsed), not from the parsed values events carry: two keys are two texts, while parsing can make
 * two keys one value (a jsonb number beyond a double and the same digits as a string, REVIEW6 R121).
 * The same text as JSON.stringify(keyText), without its cost per row.
 */
export function keyTextId(prefix: string, keyText: readonly (string | null)[]): string {
  let id = `${prefix}:[${jsonString(keyText[0] ?? null)}`;
  for (let i = 1; i < keyText.length; i++) id += `,${jsonString(keyText[i] ?? null)}`;
  return `${id}]`;
}

/**
 * A string as JSON: quoted as it is unless it has a character JSON escapes (the keys' texts nearly
 * never do; JSON.stringify per row cost more than the rest of the id). Text decoded from UTF-8 has
 * no lone surrogate, the only other character JSON.stringify escapes.
 */
function jsonString(text: string | null): string {
  if (text === null) return 'null';
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x22 || code === 0x5c) return JSON.stringify(text);
  }
  return `"${text}"`;
}
