/**
 * The passwords this test process knows (the suite's server, and every server a test starts),
 * and the check that a PgActionsError carries none of them: in its message, fixes, JSON, stack,
 * or what util.inspect (a logger) prints. The shared failure helpers run it on every error
 * they catch, so every failing case of the suite is checked, not only the secrets tests.
 * test/security/ adds the host environment's PGPASSWORD / PGPASSFILE / ~/.pgpass passwords, the
 * playground's saved password and access token, and checks the replies and child output there.
 */
import { inspect } from 'node:util';
import type { PgActionsError } from '../../connection/index.js';

const known = new Set<string>();

export function watchSecret(secret: string | undefined): void {
  if (secret && secret.length >= 4) known.add(secret);
}

function suitePassword(): string | undefined {
  const url = process.env.PG_TEST_URL;
  return url ? decodeURIComponent(new URL(url).password) || undefined : undefined;
}

/**
 * Fails when a known secret appears in the error (message, fixes, JSON, stack, inspect) or in
 * anything else printed beside it (a testConnection result, a CLI's stdout and stderr).
 */
export function expectNoSecretIn(error: PgActionsError | undefined, ...alsoPrinted: unknown[]): void {
  watchSecret(suitePassword());
  const rendered = (value: unknown) => (typeof value === 'string' ? value : `${JSON.stringify(value)}\n${inspect(value, { depth: 8 })}`);
  const printed = [
    ...(error ? [error.message, ...error.fixes, JSON.stringify(error), String(error.stack), inspect(error, { depth: 6 })] : []),
    ...alsoPrinted.map(rendered),
  ].join('\n');
  const leaked = [...known].filter((secret) => formsOf(secret).some((form) => printed.includes(form)));
  expect({ code: error?.code, leakedSecrets: leaked.length }).toEqual({ code: error?.code, leakedSecrets: 0 });
}

/**
 * How a secret shows when printed: as it is, URL-encoded, inside a JSON string (a key's newlines
 * as \n), and for a multi-line secret (a private key) each long line of its body on its own.
 */
function formsOf(secret: string): string[] {
  const lines = secret.includes('\n') ? secret.split(/\r?\n/).filter((line) => line.length >= 32 && !line.startsWith('-----')) : [];
  return [secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1), ...lines];
}
