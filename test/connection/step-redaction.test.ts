/**
 * The secrets a failed step's error is scrubbed of come from the connection (execute.ts
 * `failureContext`): the password, and the TLS key when there is one. A server message that echoes
 * a value equal to the password ("invalid input syntax for type integer: …") shows it redacted, in
 * the message and in the attached cause. secrets.test.ts covers every secret on servers of its own;
 * this is the same path on the suite's server, with a role of its own.
 */
import { inspect } from 'node:util';
import { execute, PgActionsError, type ConnectionConfig } from '../../connection/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const PASSWORD = 'step-redaction-Pw-9137';
const db = useTestDatabase('step_redaction');
let role: string;

beforeAll(async () => {
  role = `${db.name}_login`;
  await db.sql(`CREATE ROLE ${role} LOGIN PASSWORD '${PASSWORD}'`);
}, 60_000);
afterAll(async () => {
  await db.sql(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
}, 60_000);

async function stepError(config: ConnectionConfig, values: unknown[]): Promise<PgActionsError> {
  try {
    await execute(config, { text: 'SELECT $1::int AS n', values });
  } catch (error) {
    if (error instanceof PgActionsError) return error;
    throw error;
  }
  throw new Error('expected the step to fail');
}

test("a server message echoing the connection's password shows it redacted, in the message and the cause", async () => {
  const config: ConnectionConfig = { ...db.config, user: role, password: PASSWORD, applicationName: 'step-redaction' };
  const error = await stepError(config, [PASSWORD]);
  expect(error.code).toBe('INVALID_VALUE');
  expect(error.message).toContain('••••••');
  expect(error.message).not.toContain(PASSWORD);
  expect(inspect(error.cause, { depth: 6 })).not.toContain(PASSWORD);
  // Another value is shown as it is: only the secret is hidden.
  const other = await stepError(config, ['not-a-number']);
  expect(other.message).toContain('not-a-number');
}, 60_000);
