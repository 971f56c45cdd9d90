/**
 * Passwords must never reach a terminal or a log. The library already keeps them out of its
 * errors; the CLI also echoes text it did not write (argument parser messages, URLs it was given),
 * so everything it prints to stderr passes through here first.
 */

const secrets = new Set<string>();

/** Shorter values would blank out ordinary words of a message; the library redacts them itself. */
const MIN_SECRET_LENGTH = 3;

/** Remembers a value (a password, a client key) that must be masked wherever it shows up. */
export function rememberSecret(value: string | undefined): void {
  if (value && value.length >= MIN_SECRET_LENGTH) {
    secrets.add(value);
    secrets.add(encodeURIComponent(value));
    // As it appears inside JSON output (--json): quotes, backslashes and a key's newlines escaped (REVIEW5 R104).
    secrets.add(JSON.stringify(value).slice(1, -1));
  }
}

/** Masks the password of a URL (scheme://user:password@host) and of password=… pairs. */
export function redactUrl(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/]*):[^\s@/]*@/gi, '$1:***@')
    .replace(/(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'"]+)/gi, '$1***');
}

/** redactUrl, plus every remembered secret wherever it appears. */
export function redact(text: string): string {
  let result = redactUrl(text);
  for (const secret of secrets) result = result.split(secret).join('***');
  return result;
}
