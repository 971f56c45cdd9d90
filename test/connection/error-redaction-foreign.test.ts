/**
 * connection/errors/map.ts, the redaction of the attached cause: it walks Errors, arrays and plain objects, and hands
 * objects of any other class (a socket, a client, a host's own object: things with private fields, internal slots or
 * accessors with effects) back as they are: not read, not copied, even when the error around them holds a secret and
 * is copied. No server needed.
 */
import { toPgActionsError, type FailureContext } from '../../connection/errors/map.js';
import { watchSecret } from '../harness/secrets.js';

const secret = `foreign-${Date.now().toString(36)}-secret`;
watchSecret(secret);
const context: FailureContext = { phase: 'statement', host: 'db.example', port: 5432, user: 'u', database: 'd', connectTimeoutMs: 1000, secrets: [secret] };

class Resource {
  reads = 0;
  readonly #handle = 42;
  constructor() {
    // An own accessor (as some libraries define them on instances): reading it has an effect.
    Object.defineProperty(this, 'state', { enumerable: true, get: () => (this.reads++, 'open') });
  }
  handle(): number {
    return this.#handle;
  }
}

test('an object of another class inside a redacted cause is kept as it is: its accessors are not run, its methods still work', () => {
  const resource = new Resource();
  const raw = Object.assign(new Error(`invalid input syntax for type integer: "${secret}"`), { code: '22P02', resource });
  const cause = toPgActionsError(raw, context).cause as Error & { resource: Resource };
  expect(cause).not.toBe(raw); // the error itself is a redacted copy
  expect(cause.message).not.toContain(secret);
  expect(cause.resource).toBe(resource);
  expect(resource.reads).toBe(0);
  expect(cause.resource.handle()).toBe(42);
});
