/**
 * connection/errors/map.ts, message by message: what a host reads for each failure, from real
 * conditions that cost no server of their own — the suite's server, a TLS-ending proxy in front
 * of it presenting chosen certificates (and asking for a client certificate, as pg_hba.conf
 * `cert` does), and loopback peers that refuse or stay silent. errors.test.ts proves every code
 * exists; this file pins the exact text, fields and redaction, cheaply enough to run per mutant.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { closeAll, execute, testConnection, type ConnectionConfig, type PgActionsError } from '../../connection/index.js';
import { lineAndColumn, redact, toPgActionsError, type FailureContext } from '../../connection/errors/map.js';
import { runningStatement } from '../harness/activity.js';
import { createTestPki, MISMATCH_HOST, type TestPki } from '../harness/certs.js';
import { serverUrl } from '../harness/db.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failure, refusedPort, startSilentServer } from '../harness/failures.js';
import { startWireProxy, type WireProxy } from '../harness/proxy.js';
import { watchSecret } from '../harness/secrets.js';
import { TimeoutError } from '../../connection/deadline.js';

const db = useTestDatabase('error_mapping');
let pki: TestPki;
const proxies: WireProxy[] = [];
const suffix = randomBytes(4).toString('hex');
const role = `pga_map_${suffix}`;
const rolePassword = `Map-${randomBytes(6).toString('hex')}`;
watchSecret(rolePassword);

beforeAll(async () => {
  pki = createTestPki();
  await db.sql('CREATE TABLE people (id int PRIMARY KEY, email text CONSTRAINT people_email_key UNIQUE, age int CONSTRAINT adult CHECK (age >= 18))');
  await db.sql(`CREATE ROLE ${role} LOGIN PASSWORD '${rolePassword}'`);
}, 60_000);

afterAll(async () => {
  await Promise.all(proxies.map((proxy) => proxy.close()));
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  await admin.query(`DROP ROLE IF EXISTS ${role}`);
  await admin.end();
}, 60_000);

const server = () => ({ host: db.config.host as string, port: db.config.port as number });

async function tlsProxy(tls: { certPem: string; keyPem: string; clientCaPem?: string }): Promise<WireProxy> {
  const proxy = await startWireProxy(server(), { tls });
  proxies.push(proxy);
  return proxy;
}

/** A certificate for localhost signed by nobody but itself (made with the openssl CLI). */
function selfSigned(): { certPem: string; keyPem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pg-actions-self-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'),
      '-days', '3', '-subj', '/CN=localhost', '-addext', 'subjectAltName = DNS:localhost, IP:127.0.0.1'], { stdio: 'ignore' });
    return { certPem: readFileSync(join(dir, 'c.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'k.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const through = (proxy: WireProxy, extra: Partial<ConnectionConfig>): ConnectionConfig => ({ ...db.config, host: '127.0.0.1', port: proxy.port, connectTimeoutMs: 5000, ...extra });

describe('TLS failures, with the code Node gave', () => {
  test('a chain the given CA did not sign (leaf only) → SSL_CERTIFICATE_INVALID: could not be verified (UNABLE_TO_VERIFY_LEAF_SIGNATURE)', async () => {
    const proxy = await tlsProxy({ certPem: pki.serverCertPem, keyPem: pki.serverKeyPem });
    const error = await failure(execute(through(proxy, { sslMode: 'verify-ca', sslCa: pki.otherCaPem }), { text: 'SELECT 1' }));
    expect([error.code, error.message]).toEqual(['SSL_CERTIFICATE_INVALID', `The server certificate of 127.0.0.1:${proxy.port} could not be verified (UNABLE_TO_VERIFY_LEAF_SIGNATURE).`]);
  });

  test('the server sends its CA too, an untrusted one → SELF_SIGNED_CERT_IN_CHAIN; a self-signed leaf → DEPTH_ZERO_SELF_SIGNED_CERT', async () => {
    const chain = await tlsProxy({ certPem: pki.serverCertPem + pki.caPem, keyPem: pki.serverKeyPem });
    const chained = await failure(execute(through(chain, { sslMode: 'verify-full', sslCa: pki.otherCaPem }), { text: 'SELECT 1' }));
    expect([chained.code, chained.message]).toEqual(['SSL_CERTIFICATE_INVALID', `The server certificate of 127.0.0.1:${chain.port} could not be verified (SELF_SIGNED_CERT_IN_CHAIN).`]);
    const self = await tlsProxy(selfSigned());
    const alone = await failure(execute(through(self, { sslMode: 'verify-ca', sslCa: pki.caPem }), { text: 'SELECT 1' }));
    expect([alone.code, alone.message]).toEqual(['SSL_CERTIFICATE_INVALID', `The server certificate of 127.0.0.1:${self.port} could not be verified (DEPTH_ZERO_SELF_SIGNED_CERT).`]);
  });

  test('a certificate for another host → SSL_CERTIFICATE_INVALID naming the host and the reason', async () => {
    const proxy = await tlsProxy({ certPem: pki.mismatchCertPem, keyPem: pki.mismatchKeyPem });
    const error = await failure(execute(through(proxy, { host: 'localhost', sslMode: 'verify-full', sslCa: pki.caPem }), { text: 'SELECT 1' }));
    expect(error.code).toBe('SSL_CERTIFICATE_INVALID');
    expect(error.message).toBe(`The server certificate is not valid for the host name "localhost" (Host: localhost. is not in the cert's altnames: DNS:${MISMATCH_HOST}).`);
  });

  // (A certificate from an untrusted CA, TLS alert "unknown ca", needs OpenSSL verifying in the
  // server itself — Node's TLS accepts and checks afterwards —: errors.test.ts has it, from a real server.)
  test('no client certificate where the server requires one → SSL_CLIENT_CERTIFICATE_REJECTED with the TLS alert in words', async () => {
    const proxy = await tlsProxy({ certPem: pki.serverCertPem, keyPem: pki.serverKeyPem, clientCaPem: pki.caPem });
    const base = through(proxy, { sslMode: 'verify-full', sslCa: pki.caPem });
    const none = await failure(execute(base, { text: 'SELECT 1' }));
    expect([none.code, none.message]).toEqual(['SSL_CLIENT_CERTIFICATE_REJECTED', `127.0.0.1:${proxy.port} rejected the client certificate (TLS alert: certificate required).`]);
    // and the trusted one gets through to the server
    expect((await execute({ ...base, sslCert: pki.clientCertPem, sslKey: pki.clientKeyPem }, { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
  });

  test('sslMode require against the server, which answers N → SSL_NOT_SUPPORTED', async () => {
    const [{ ssl }] = (await db.sql('SHOW ssl')) as [{ ssl: string }];
    expect(ssl).toBe('off'); // the suite's embedded server; with a PG_TEST_URL server that has TLS, this case cannot be made here
    const error = await failure(execute({ ...db.config, sslMode: 'require' }, { text: 'SELECT 1' }));
    expect([error.code, error.message]).toEqual(['SSL_NOT_SUPPORTED', `${db.config.host}:${db.config.port} does not accept SSL connections, but SSL Mode requires it.`]);
  });
});

describe('reaching the server', () => {
  test('refused, silent and unknown hosts: the message says which, with the address and the time allowed', async () => {
    const port = await refusedPort();
    const refused = await failure(execute({ ...db.config, host: '127.0.0.1', port, sslMode: 'disable' }, { text: 'SELECT 1' }));
    expect([refused.code, refused.message]).toEqual(['CONNECTION_REFUSED', `Could not connect to 127.0.0.1:${port}: the connection was refused.`]);
    const silent = await startSilentServer();
    try {
      const timedOut = await failure(execute({ ...db.config, host: '127.0.0.1', port: silent.port, sslMode: 'disable', connectTimeoutMs: 300 }, { text: 'SELECT 1' }));
      expect([timedOut.code, timedOut.message]).toEqual(['CONNECTION_TIMEOUT', `127.0.0.1:${silent.port} did not complete the connection within 300 ms.`]);
    } finally {
      await silent.close();
    }
    const unknown = await failure(execute({ ...db.config, host: 'no-such-host.invalid', sslMode: 'disable' }, { text: 'SELECT 1' }));
    expect([unknown.code, unknown.message]).toEqual(['HOST_NOT_FOUND', 'The host "no-such-host.invalid" could not be found.']);
  });

  test('a database that does not exist, a wrong password: the server\'s SQLSTATE kept, the message rewritten, no secret', async () => {
    const missing = await failure(execute({ ...db.config, database: `nope_${suffix}` }, { text: 'SELECT 1' }));
    expect([missing.code, missing.sqlstate, missing.message]).toEqual(['DATABASE_NOT_FOUND', '3D000', `Database "nope_${suffix}" does not exist on ${db.config.host}:${db.config.port}.`]);
    const wrong = await failure(execute({ ...db.config, user: role, password: `${rolePassword}-wrong` }, { text: 'SELECT 1' }));
    expect([wrong.code, wrong.sqlstate]).toEqual(['AUTHENTICATION_FAILED', '28P01']);
    expect(wrong.message).toBe(`Password authentication failed for user "${role}"`);
  });
});

describe('statement errors', () => {
  test('SYNTAX_ERROR: line and column of the error in a multi-line query, counting characters, not bytes', async () => {
    const error = await failure(execute(db.config, { text: "SELECT 'été',\n  'ü' AS x,\n  FROM people" }));
    expect([error.code, error.sqlstate, error.position]).toEqual(['SYNTAX_ERROR', '42601', 29]);
    expect(error.location).toEqual({ line: 3, column: 3 });
    expect(error.message).toBe('Syntax error at or near "FROM" (line 3, column 3).');
  });

  test('lineAndColumn: positions on the first line, after a newline, and after astral characters', () => {
    expect(lineAndColumn('SELECT x', 1)).toEqual({ line: 1, column: 1 });
    expect(lineAndColumn('SELECT x', 8)).toEqual({ line: 1, column: 8 });
    expect(lineAndColumn('a\nbc\nd', 5)).toEqual({ line: 2, column: 3 });
    expect(lineAndColumn('a\nbc\nd', 6)).toEqual({ line: 3, column: 1 });
    expect(lineAndColumn('😀😀\n😀x', 5)).toEqual({ line: 2, column: 2 });
  });

  test('UNIQUE_VIOLATION names the key, the value and the constraint; the server fields are kept', async () => {
    await db.sql(`INSERT INTO people VALUES (1, 'ada@example.com', 36)`);
    const error = await failure(execute(db.config, { text: 'INSERT INTO people VALUES ($1, $2, $3)', values: [2, 'ada@example.com', 40] }));
    expect(error.code).toBe('UNIQUE_VIOLATION');
    expect(error.message).toBe('A row with email = ada@example.com already exists (constraint people_email_key).');
    expect({ sqlstate: error.sqlstate, detail: error.detail, schema: error.schema, table: error.table, constraint: error.constraint }).toEqual({
      sqlstate: '23505', detail: 'Key (email)=(ada@example.com) already exists.', schema: 'public', table: 'people', constraint: 'people_email_key',
    });
    expect(error.retryable).toBe(false);
  });

  test('CHECK_VIOLATION and NOT_NULL_VIOLATION keep the server\'s message and fields', async () => {
    const check = await failure(execute(db.config, { text: 'INSERT INTO people VALUES ($1, $2, $3)', values: [3, 'kid@example.com', 9] }));
    expect([check.code, check.sqlstate, check.constraint, check.table]).toEqual(['CHECK_VIOLATION', '23514', 'adult', 'people']);
    expect(check.message).toBe('New row for relation "people" violates check constraint "adult"');
    const notNull = await failure(execute(db.config, { text: 'INSERT INTO people (id) VALUES (NULL)' }));
    expect([notNull.code, notNull.sqlstate, notNull.column, notNull.table]).toEqual(['NOT_NULL_VIOLATION', '23502', 'id', 'people']);
  });

  test('class 22 without a code of its own (22012 division by zero) → INVALID_VALUE; an SQLSTATE nobody mapped → DATABASE_ERROR with it kept', async () => {
    const zero = await failure(execute(db.config, { text: 'SELECT 1 / (SELECT count(*)::int FROM people WHERE false) AS x' }));
    expect([zero.code, zero.sqlstate, zero.message]).toEqual(['INVALID_VALUE', '22012', 'Division by zero']);
    const other = await failure(execute(db.config, { text: 'SELECT * FROM pg_advisory_unlock_shared(NULL::bigint, 1)' }));
    expect(other.code).toBe('DATABASE_ERROR');
    expect(other.sqlstate).toMatch(/^[0-9A-Z]{5}$/);
  });

  test('08P01 (value count differs from the $n used) → INVALID_INPUT with the counts, the problem and the fix', async () => {
    const error = await failure(execute(db.config, { text: 'SELECT $1::int + $2::int AS sum', values: [1] }));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.sqlstate).toBe('08P01');
    expect(error.message).toBe('The query uses placeholders up to $2, but 1 value(s) were sent (parameters plus any {{ }} in the query).');
    expect(error.problems).toEqual(['input.parameters must have one value for each placeholder $1…$n in input.query']);
    expect(error.fixes).toEqual(['Give one parameter for each placeholder $1…$n used in the query.']);
  });
});

describe('deadlines, cancels and terminations', () => {
  test('QUERY_TIMEOUT: the step\'s own deadline, in its words; another session\'s pg_cancel_backend is DATABASE_ERROR 57014', async () => {
    const timedOut = await failure(execute(db.config, { text: 'SELECT pg_sleep(20)', timeoutMs: 300 }));
    expect([timedOut.code, timedOut.sqlstate, timedOut.message]).toEqual(['QUERY_TIMEOUT', '57014', 'The statement did not finish within 300 ms and was cancelled on the server.']);
    const config = { ...db.config, applicationName: 'map-cancelled' };
    const pending = failure(execute(config, { text: `SELECT pg_sleep(20), 'map-cancelled'` }));
    await runningStatement(db.sql, db.name, 'map-cancelled', `'map-cancelled'`);
    await db.sql(`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'map-cancelled'`, [db.name]);
    const cancelled = await pending;
    expect([cancelled.code, cancelled.sqlstate, cancelled.message]).toEqual(['DATABASE_ERROR', '57014', 'Canceling statement due to user request']);
  }, 60_000);

  test('57P01 (terminated by an administrator) → CONNECTION_LOST, with what the server said', async () => {
    const config = { ...db.config, applicationName: 'map-terminated' };
    const pending = failure(execute(config, { text: `SELECT pg_sleep(20), 'map-terminated'` }));
    await runningStatement(db.sql, db.name, 'map-terminated', `'map-terminated'`);
    await db.sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'map-terminated'`, [db.name]);
    const error = await pending;
    expect([error.code, error.sqlstate]).toEqual(['CONNECTION_LOST', '57P01']);
    expect(error.message).toBe(`The connection to ${db.config.host}:${db.config.port} was lost. The server said: Terminating connection due to administrator command`);
  }, 60_000);

  test('RESULT_TOO_LARGE states the cap in KB or MB', async () => {
    for (const [cap, said] of [[4096, '4 KB'], [1536, '1.5 KB'], [1048576, '1 MB'], [1572864, '1.5 MB']] as const) {
      const error = await failure(execute({ ...db.config, maxResultBytes: cap }, { text: `SELECT repeat('x', 1000) FROM generate_series(1, 3000)` }));
      expect([error.code, error.message]).toEqual(['RESULT_TOO_LARGE', `The result passed the ${said} cap; reading stopped and the query was aborted.`]);
    }
  }, 60_000);
});

describe('redaction', () => {
  test('a value equal to the password is redacted from the message, the detail and the attached cause, however deep', async () => {
    const config = { ...db.config, user: role, password: rolePassword };
    await db.sql(`GRANT INSERT, SELECT ON people TO ${role}`);
    await db.sql(`INSERT INTO people VALUES (10, $1, 30)`, [rolePassword]);
    const echoed = await failure(execute(config, { text: 'SELECT $1::int AS n', values: [rolePassword] }));
    expect(echoed.message).toBe('Invalid input syntax for type integer: "••••••"');
    expect(JSON.stringify(echoed.cause, Object.getOwnPropertyNames(echoed.cause))).not.toContain(rolePassword);
    expect((echoed.cause as Error).message).toBe('invalid input syntax for type integer: "••••••"');
    expect((echoed.cause as { code?: string }).code).toBe('22P02');
    const duplicate = await failure(execute(config, { text: 'INSERT INTO people VALUES ($1, $2, $3)', values: [11, rolePassword, 30] }));
    expect(duplicate.code).toBe('UNIQUE_VIOLATION');
    expect(duplicate.detail).toBe('Key (email)=(••••••) already exists.');
    expect(duplicate.message).toBe('A row with email = •••••• already exists (constraint people_email_key).');
  });

  test('a password of exactly 4 characters, the shortest redacted, is redacted from the attached cause too', async () => {
    const short = `q${randomBytes(2).toString('hex').slice(0, 3)}`; // not a number: the cast below fails and echoes it
    watchSecret(short);
    const shortRole = `${role}_4`;
    await db.sql(`CREATE ROLE ${shortRole} LOGIN PASSWORD '${short}'`);
    try {
      const echoed = await failure(execute({ ...db.config, user: shortRole, password: short }, { text: 'SELECT $1::int AS n', values: [short] }));
      expect(echoed.message).toBe('Invalid input syntax for type integer: "••••••"');
      expect((echoed.cause as Error).message).toBe('invalid input syntax for type integer: "••••••"');
    } finally {
      await closeAll();
      await db.sql(`DROP ROLE ${shortRole}`);
    }
  });

  test('a message that begins with the password is redacted before it is capitalised', async () => {
    const lower = `zz${suffix}secret`;
    const config = { ...db.config, password: lower };
    watchSecret(lower);
    const error = await failure(execute({ ...config, user: `${lower}`, database: db.name }, { text: 'SELECT 1' }));
    expect(error.message).not.toContain(lower);
    expect(error.message).not.toContain(lower[0]!.toUpperCase() + lower.slice(1));
  });

  test('redact: every occurrence of every secret of 4 characters or more; shorter ones are left (they would redact noise)', () => {
    expect(redact('abcd x abcd', ['abcd'])).toBe('•••••• x ••••••');
    expect(redact('abc x abc', ['abc'])).toBe('abc x abc');
    expect(redact('one two', ['one2', 'two!'])).toBe('one two');
    expect(redact('p4ss and k3y!', ['p4ss', 'k3y!'])).toBe('•••••• and ••••••');
  });

  test('testConnection redacts too: a wrong password echoed nowhere, the cause included', async () => {
    const result = await testConnection({ ...db.config, user: role, password: `${rolePassword}-wrong` });
    expect(result.ok).toBe(false);
    const error = (result as { error: PgActionsError }).error;
    expect(error.code).toBe('AUTHENTICATION_FAILED');
  });
});

describe('the attached cause (hosts print it: util.inspect shows [cause], loggers walk it)', () => {
  const secret = `cause-${suffix}-secret`;
  watchSecret(secret);
  const context: FailureContext = { phase: 'statement', host: 'db.example', port: 5432, user: 'u', database: 'd', connectTimeoutMs: 1000, secrets: [secret] };

  test('a cause holding no secret is attached as it is; so is every cause when the only secrets are too short to redact', () => {
    const clean = Object.assign(new Error('nothing to hide'), { code: 'EPIPE' });
    expect(toPgActionsError(clean, context).cause).toBe(clean);
    const aggregate = new AggregateError([new Error('first'), new Error('second')], 'both failed'); // arrays walked, nothing found
    expect(toPgActionsError(aggregate, context).cause).toBe(aggregate);
    const short = new Error('pw is abc');
    expect(toPgActionsError(short, { ...context, secrets: ['abc'] }).cause).toBe(short);
  });

  test('a cause holding the secret becomes a redacted copy of the same kind: nested causes, AggregateError.errors, plain objects, accessors; the original is untouched', () => {
    const inner = Object.assign(new Error(`inner ${secret}`), { code: 'ECONNRESET' });
    const aggregate = new AggregateError([new Error(`first ${secret}`), new Error('second')], `all failed: ${secret}`);
    const outer = Object.assign(new Error(`outer ${secret}`, { cause: inner }), { code: 'ECONNRESET', attempts: aggregate, extra: { note: `note ${secret}`, count: 2 } });
    Object.defineProperty(outer, 'described', { get: () => `getter ${secret}`, enumerable: false, configurable: true });
    const copy = toPgActionsError(outer, context).cause as Error & { code: string; attempts: AggregateError; extra: { note: string; count: number }; described: string; cause: Error };
    expect(copy).not.toBe(outer);
    expect(copy).toBeInstanceOf(Error);
    expect([copy.message, copy.code, copy.cause.message, (copy.cause as { code?: string }).code]).toEqual(['outer ••••••', 'ECONNRESET', 'inner ••••••', 'ECONNRESET']);
    expect(copy.attempts).toBeInstanceOf(AggregateError);
    expect([copy.attempts.message, ...copy.attempts.errors.map((e: Error) => e.message)]).toEqual(['all failed: ••••••', 'first ••••••', 'second']);
    expect(copy.attempts.errors[1]).toBe(aggregate.errors[1]); // nothing to redact there: the same object
    expect(copy.extra).toEqual({ note: 'note ••••••', count: 2 });
    expect(Object.getPrototypeOf(copy.extra)).toBe(Object.prototype);
    expect(copy.described).toBe('getter ••••••');
    // enumerability is kept: the message stays out of JSON and Object.keys
    expect(Object.getOwnPropertyDescriptor(copy, 'message')?.enumerable).toBe(false);
    expect(Object.keys(copy).sort()).toEqual(['attempts', 'code', 'extra']);
    // and the copy stays as changeable as an Error is (hosts annotate or rewrite causes: message, stack, code)
    expect(Object.getOwnPropertyDescriptor(copy, 'message')).toMatchObject({ writable: true, configurable: true });
    expect(Object.getOwnPropertyDescriptor(copy, 'code')).toMatchObject({ writable: true, configurable: true, enumerable: true });
    // the original is what it was
    expect([outer.message, inner.message, aggregate.errors[0].message]).toEqual([`outer ${secret}`, `inner ${secret}`, `first ${secret}`]);
  });

  test('nesting: a secret five objects deep is still redacted; a cycle ends the walk instead of looping', () => {
    const deep = { a: { b: { c: { d: { e: `deep ${secret}` } } } } };
    const copy = toPgActionsError(Object.assign(new Error('wrapper'), { deep }), context).cause as { deep: typeof deep };
    expect(copy.deep.a.b.c.d.e).toBe('deep ••••••');
    const cyclic: Record<string, unknown> = { text: `cyclic ${secret}` };
    cyclic.self = cyclic;
    const result = toPgActionsError(Object.assign(new Error('loop'), { cyclic }), context).cause as { cyclic: { text: string } };
    expect(result.cyclic.text).toBe('cyclic ••••••');
    const list: unknown[] = [`listed ${secret}`];
    list.push(list); // a cycle through an array (an AggregateError among its own errors)
    const listed = toPgActionsError(Object.assign(new Error('loop'), { list }), context).cause as { list: unknown[] };
    expect(listed.list[0]).toBe('listed ••••••');
  });

  test('a secret too short to redact beside a long one (a short password, a TLS key): the long one is still redacted from the cause', () => {
    const cause = Object.assign(new Error(`failed with ${secret}`), { code: 'EPROTO' });
    const copy = toPgActionsError(cause, { ...context, secrets: ['pw', secret] }).cause as Error;
    expect(copy.message).toBe('failed with ••••••');
  });

  test('a string thrown (not an Error) is redacted as the cause and the message', () => {
    const error = toPgActionsError(`thrown ${secret}`, context);
    expect([error.code, error.message, error.cause]).toEqual(['DATABASE_ERROR', 'thrown ••••••', 'thrown ••••••']);
  });
});

test('a socket error whose code has the shape of a SQLSTATE (EPIPE: five capitals) is not read as a server error: it has no severity', () => {
  const context: FailureContext = { phase: 'statement', host: 'db.example', port: 5432, user: 'u', database: 'd', connectTimeoutMs: 1000, secrets: [] };
  const broken = Object.assign(new Error('write EPIPE'), { code: 'EPIPE', errno: -32, syscall: 'write' });
  const mapped = toPgActionsError(broken, context);
  expect([mapped.code, mapped.message]).toEqual(['CONNECTION_LOST', 'The connection to db.example:5432 was lost.']);
  expect(mapped.sqlstate).toBeUndefined();
});

describe("errors without a code (node-postgres' own, the step's deadline): mapped by the library's fixed text and the phase", () => {
  const at = (phase: FailureContext['phase']): FailureContext => ({ phase, host: 'db.example', port: 5432, user: 'u', database: 'd', connectTimeoutMs: 1000, secrets: [] });
  const mapped = (error: unknown, phase: FailureContext['phase']) => {
    const result = toPgActionsError(error, at(phase));
    return [result.code, result.message];
  };

  test("the step's deadline (p-timeout's TimeoutError, whose text says 'timed out') while connecting → CONNECTION_TIMEOUT", () => {
    expect(mapped(new TimeoutError('Promise timed out after 50 milliseconds'), 'connect')).toEqual(['CONNECTION_TIMEOUT', 'db.example:5432 did not complete the connection within 1000 ms.']);
  });

  test('a timeout named in a statement-phase error is not a connection timeout; a connect-phase failure is one only when it is a timeout', () => {
    expect(mapped(new Error('Query read timeout'), 'statement')).toEqual(['DATABASE_ERROR', 'Query read timeout']);
    expect(mapped(new Error('Connection terminated unexpectedly'), 'connect')).toEqual(['CONNECTION_LOST', 'The connection to db.example:5432 was lost.']);
  });

  test("node-postgres' connection errors → CONNECTION_LOST, in either phase", () => {
    for (const text of ['Connection terminated unexpectedly', 'Connection terminated', 'Client has encountered a connection error and is not queryable', 'Client was closed and is not queryable']) {
      expect(mapped(new Error(text), 'statement')).toEqual(['CONNECTION_LOST', 'The connection to db.example:5432 was lost.']);
    }
  });

  test('an error with neither code nor text → DATABASE_ERROR "Unknown error"', () => {
    expect(mapped(new Error(''), 'statement')).toEqual(['DATABASE_ERROR', 'Unknown error']);
  });

  test("OpenSSL's HOSTNAME_MISMATCH (host checked by OpenSSL rather than Node) → SSL_CERTIFICATE_INVALID naming the host, like Node's ERR_TLS_CERT_ALTNAME_INVALID", () => {
    expect(mapped(Object.assign(new Error('Hostname mismatch'), { code: 'HOSTNAME_MISMATCH' }), 'connect')).toEqual(['SSL_CERTIFICATE_INVALID', 'The server certificate is not valid for the host name "db.example" (HOSTNAME_MISMATCH).']);
  });
});

test('only a syntax error gets the line and column: an undefined column (which has a position too) keeps the server\'s sentence', async () => {
  const error = await failure(execute(db.config, { text: 'SELECT\n  nosuch FROM people' }));
  expect([error.code, error.sqlstate, error.message]).toEqual(['UNDEFINED_COLUMN', '42703', 'Column "nosuch" does not exist']);
  expect((error as PgActionsError & { location?: unknown }).location).toBeUndefined();
});

test('08P01 with counts of two digits: both numbers whole', async () => {
  const error = await failure(execute(db.config, { text: `SELECT ${Array.from({ length: 12 }, (_, i) => `$${i + 1}::int`).join(' + ')} AS x`, values: Array.from({ length: 11 }, (_, i) => i) }));
  expect([error.code, error.message]).toEqual(['INVALID_INPUT', 'The query uses placeholders up to $12, but 11 value(s) were sent (parameters plus any {{ }} in the query).']);
});
