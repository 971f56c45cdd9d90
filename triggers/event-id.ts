/** Deterministic event ids: a hash of what identifies the change, so a redelivery has the same id. */
import { createHash } from 'node:crypto';

export function eventId(...parts: readonly unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 22);
}
