/**
 * The passwords this test process knows (the suite's server, and every server a test starts),
 * and the check that a PgActionsError carries none of them: in its message, fixes, JSON, stack,
 * or what util.inspect (a logger) prints. The shared failure helpers run it on every error
 * they catch, so every failing case of the suite is checked, not only the secrets tests.
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

export function expectNoSecretIn(error: PgActionsError): void {
  watchSecret(suitePassword());
  const printed = [error.message, ...error.fixes, JSON.stringify(error), String(error.stack), inspect(error, { depth: 6 })].join('\n');
  const leaked = [...known].filter((secret) => printed.includes(secret) || printed.includes(encodeURIComponent(secret)));
  expect({ code: error.code, leakedSecrets: leaked.length }).toEqual({ code: error.code, leakedSecrets: 0 });
}
