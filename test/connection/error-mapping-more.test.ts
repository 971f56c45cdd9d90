/**
 * connection/errors/map.ts, the paths error-mapping.test.ts does not reach without a server of
 * its own: a server that takes TCP only over TLS (SSL_REQUIRED), PgBouncer's own messages, and
 * the rules that look at more than the SQLSTATE (the step's deadline, the query, a named
 * statement's 08P01). From cheap real peers: a real PgBouncer (a process, no server of its own),
 * the suite's server, and, for the TLS-only server, a loopback peer that answers the way such a
 * PostgreSQL does (it answers `S` to an SSLRequest and refuses a plaintext login with 28000).
 */
import { createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { closeAll, execute } from '../../connection/index.js';
import { ERROR_CATALOGUE } from '../../connection/errors/catalogue.js';
import { toPgActionsError, type FailureContext } from '../../connection/errors/map.js';
import { createTestPki } from '../harness/certs.js';
import { createTestDatabase, serverLogin } from '../harness/db.js';
import { failure } from '../harness/failures.js';
import { describeWithPgBouncer, startPgBouncer, type PgBouncer } from '../harness/pgbouncer.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('error_mapping_more');
const PLACEHOLDER_FIX = 'Give one parameter for each placeholder $1…$n used in the query.';

afterAll(async () => {
  await closeAll();
}, 30_000);

/** A real server error (node-postgres' DatabaseError: code, severity, fields) from the suite's server. */
async function serverError(run: (client: pg.Client) => Promise<unknown>, config: pg.ClientConfig = db.config as pg.ClientConfig): Promise<Error & { code: string }> {
  const client = new pg.Client(config);
  client.on('error', () => {});
  try {
    await client.connect();
    await run(client);
  } catch (error) {
    return error as Error & { code: string };
  } finally {
    await client.end().catch(() => {});
  }
  throw new Error('expected a server error');
}

const context = (extra: Partial<FailureContext> = {}): FailureContext => ({
  phase: 'statement', host: 'db.example', port: 5432, user: 'ann', database: 'shop', connectTimeoutMs: 1000, secrets: [], ...extra,
});

// ---------------------------------------------------------------------------------------------------

const SSL_REQUEST_CODE = 80877103;

/** The ErrorResponse a PostgreSQL server sends when pg_hba.conf has no line for the attempt. */
function hbaRefusal(user: string, database: string): Buffer {
  const fields: [string, string][] = [
    ['S', 'FATAL'], ['V', 'FATAL'], ['C', '28000'],
    ['M', `no pg_hba.conf entry for host "127.0.0.1", user "${user}", database "${database}", no encryption`],
    ['F', 'auth.c'], ['L', '543'], ['R', 'ClientAuthentication'],
  ];
  const body = Buffer.concat([...fields.map(([type, value]) => Buffer.from(`${type}${value}\0`)), Buffer.from([0])]);
  const header = Buffer.alloc(5);
  header.write('E');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/**
 * A server with no `host` line in pg_hba.conf: an SSLRequest gets `tls` ('S' for a server that
 * takes TLS, 'N' otherwise), a plaintext startup message the 28000 refusal, then the close.
 */
async function startHbaRefusingServer(tls: 'S' | 'N'): Promise<{ port: number; sslRequests: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let sslRequests = 0;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 8 && buffered.length >= buffered.readInt32BE(0)) {
        const length = buffered.readInt32BE(0);
        const packet = buffered.subarray(0, length);
        buffered = buffered.subarray(length);
        if (length === 8 && packet.readInt32BE(4) === SSL_REQUEST_CODE) {
          sslRequests++;
          socket.write(tls);
          continue;
        }
        // StartupMessage: protocol version, then name/value pairs
        const pairs = packet.subarray(8).toString('utf8').split('\0');
        const param = (name: string) => pairs[pairs.indexOf(name) + 1] ?? '';
        socket.end(hbaRefusal(param('user'), param('database')));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get sslRequests() {
      return sslRequests;
    },
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

describe('SSL_REQUIRED: a plaintext login refused with 28000 by a server that takes TLS', () => {
  test('sslMode disable against it → SSL_REQUIRED naming the user, database and mode (the probe asked for TLS once)', async () => {
    const peer = await startHbaRefusingServer('S');
    try {
      const error = await failure(execute({ host: '127.0.0.1', port: peer.port, user: 'ann', password: 'not-used', database: 'shop', sslMode: 'disable', connectTimeoutMs: 5000 }, { text: 'SELECT 1' }));
      expect([error.code, error.sqlstate, error.message]).toEqual([
        'SSL_REQUIRED', '28000', `127.0.0.1:${peer.port} only accepts SSL connections for user "ann" and database "shop", and SSL Mode is "disable".`,
      ]);
      expect(peer.sslRequests).toBe(1);
    } finally {
      await peer.close();
    }
  });

  test('the same refusal from a server without TLS (it answers N) stays AUTHENTICATION_FAILED with the server\'s words', async () => {
    const peer = await startHbaRefusingServer('N');
    try {
      const error = await failure(execute({ host: '127.0.0.1', port: peer.port, user: 'ann', password: 'not-used', database: 'shop', sslMode: 'disable', connectTimeoutMs: 5000 }, { text: 'SELECT 1' }));
      expect([error.code, error.sqlstate, error.message]).toEqual([
        'AUTHENTICATION_FAILED', '28000', 'No pg_hba.conf entry for host "127.0.0.1", user "ann", database "shop", no encryption',
      ]);
      expect(peer.sslRequests).toBe(1);
    } finally {
      await peer.close();
    }
  });

  test('only a 28000 becomes SSL_REQUIRED: a wrong password (28P01) or a syntax error on a server that takes TLS keep their codes', async () => {
    const login = serverLogin();
    const wrongPassword = await serverError(async () => undefined, { host: login.host, port: login.port, user: login.user, password: `${login.password}-wrong`, database: db.name });
    expect(wrongPassword.code).toBe('28P01');
    const refused = toPgActionsError(wrongPassword, context({ phase: 'connect', serverRequiresTls: true }));
    expect([refused.code, refused.message]).toEqual(['AUTHENTICATION_FAILED', `Password authentication failed for user "${login.user}"`]);
    const syntax = await serverError((client) => client.query('SELEC 1'));
    const mapped = toPgActionsError(syntax, context({ query: 'SELEC 1', serverRequiresTls: true }));
    expect([mapped.code, mapped.message]).toEqual(['SYNTAX_ERROR', 'Syntax error at or near "SELEC" (line 1, column 1).']);
  });
});

describe('rules that look at more than the SQLSTATE', () => {
  test("a server error other than the cancel, after the step's deadline, keeps its own code and words (only 57014 gets the timeout's message)", async () => {
    const zero = await serverError((client) => client.query('SELECT 1 / 0'));
    const mapped = toPgActionsError(zero, context({ query: 'SELECT 1 / 0', timedOut: { afterMs: 300 } }));
    expect([mapped.code, mapped.sqlstate, mapped.message]).toEqual(['INVALID_VALUE', '22012', 'Division by zero']);
  });

  test('08P01 of a named prepared statement: the counts are read whatever the statement is called', async () => {
    const text = 'SELECT $1::int + $2::int AS sum';
    const mismatch = await serverError((client) => client.query({ name: 'two_values', text, values: [1] }));
    expect(mismatch.message).toContain('prepared statement "two_values"');
    const mapped = toPgActionsError(mismatch, context({ query: text, parameters: [1] }));
    expect([mapped.code, mapped.message]).toEqual(['INVALID_INPUT', 'The query uses placeholders up to $2, but 1 value(s) were sent (parameters plus any {{ }} in the query).']);
  });
});

describeWithPgBouncer("PgBouncer's own messages, from a real PgBouncer", () => {
  const bouncers: PgBouncer[] = [];
  const start = async (options: Partial<Parameters<typeof startPgBouncer>[0]> = {}) => {
    const bouncer = await startPgBouncer({ server: serverLogin(), mode: 'transaction', ...options });
    bouncers.push(bouncer);
    return bouncer;
  };

  afterAll(async () => {
    await closeAll();
    await Promise.all(bouncers.map((bouncer) => bouncer.dispose()));
  }, 30_000);

  test('a user PgBouncer does not know → AUTHENTICATION_FAILED in the pooler\'s words, the 08P01 kept', async () => {
    const bouncer = await start();
    const error = await failure(execute(bouncer.config(db.name, { user: 'nobody_here' }), { text: 'SELECT 1' }));
    expect([error.code, error.sqlstate, error.message]).toEqual([
      'AUTHENTICATION_FAILED', '08P01', `The connection pooler at 127.0.0.1:${bouncer.port} said: SASL authentication failed.`,
    ]);
  });

  test('a database PgBouncer does not serve → DATABASE_NOT_FOUND naming the pooler, the 08P01 kept', async () => {
    const bouncer = await start({ databases: [db.name] });
    expect((await execute(bouncer.config(db.name), { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
    const error = await failure(execute(bouncer.config(`${db.name}_other`), { text: 'SELECT 1' }));
    expect([error.code, error.sqlstate, error.message]).toEqual([
      'DATABASE_NOT_FOUND', '08P01', `Database "${db.name}_other" is not served by the connection pooler at 127.0.0.1:${bouncer.port}.`,
    ]);
  });

  test('behind a `*` entry, a database the server does not have → DATABASE_NOT_FOUND (the server\'s refusal PgBouncer relays as 08P01), not CONNECTION_LOST; again at once, the same', async () => {
    // Before: CONNECTION_LOST, "The connection to … was lost. The server said: database "…" does not exist" (class 08).
    const bouncer = await start(); // server_login_retry 1
    const missing = `${db.name}_absent`;
    const expected = ['DATABASE_NOT_FOUND', '08P01', `Database "${missing}" does not exist on the server behind the connection pooler at 127.0.0.1:${bouncer.port}.`];
    const error = await failure(execute(bouncer.config(missing), { text: 'SELECT 1' }));
    expect([error.code, error.sqlstate, error.message]).toEqual(expected);
    expect(error.fixes).toEqual(ERROR_CATALOGUE.DATABASE_NOT_FOUND.fixes);
    // Within server_login_retry: PgBouncer 1.18 keeps a new pool's client until the retry and relays the refusal again;
    // 1.24+ answers at once with the cached error ("server login has been failing, cached error: database "…" does not exist …").
    const again = await failure(execute(bouncer.config(missing), { text: 'SELECT 1' }));
    expect([again.code, again.sqlstate, again.message]).toEqual(expected);
    // A database the server has, through the same pooler, still works.
    expect((await execute(bouncer.config(db.name), { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
  });

  test('a database dropped after PgBouncer served it: 1.18 answers "server login has been failing, try again later", which names no cause → POOLER_SERVER_LOGIN_FAILED, its fixes naming a missing database', async () => {
    const gone = await createTestDatabase('pooled_then_dropped');
    const bouncer = await start({ settings: { server_login_retry: '60', query_wait_timeout: '2' } });
    expect((await execute(bouncer.config(gone.name), { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
    await closeAll();
    await gone.drop();
    // A pool that once logged in: 1.18 keeps the next client waiting (query_wait_timeout) and, once its login has
    // failed, refuses the ones after without the server's words until server_login_retry has passed.
    const fresh = async () => {
      try {
        return await failure(execute(bouncer.config(gone.name, { connectTimeoutMs: 8000 }), { text: 'SELECT 1' }));
      } finally {
        await closeAll();
      }
    };
    let error = await fresh();
    if (error.code === 'POOLER_QUERY_WAIT_TIMEOUT') error = await fresh();
    const said = String((error.cause as Error).message);
    if (/cached error/.test(said)) {
      // PgBouncer 1.24+ quotes the server.
      expect([error.code, error.message]).toEqual(['DATABASE_NOT_FOUND', `Database "${gone.name}" does not exist on the server behind the connection pooler at 127.0.0.1:${bouncer.port}.`]);
    } else {
      expect([error.code, error.sqlstate, said]).toEqual(['POOLER_SERVER_LOGIN_FAILED', '08P01', 'server login has been failing, try again later (server_login_retry)']);
      expect(error.fixes.join(' ')).toContain('a name the server does not have fails its login too');
      // The 1.24+ wording (PgBouncer PR #1152) on this real error object: the cause it quotes decides.
      const cause = error.cause as Error;
      const quoted = (text: string) => toPgActionsError(Object.assign(Object.create(Object.getPrototypeOf(cause) as object) as Error, cause, { message: text }), context({ phase: 'connect', database: gone.name }));
      expect(quoted(`server login has been failing, cached error: database "${gone.name}" does not exist (server_login_retry)`).code).toBe('DATABASE_NOT_FOUND');
      expect(quoted('server login has been failing, cached error: password authentication failed for user "ann" (server_login_retry)').code).toBe('POOLER_SERVER_LOGIN_FAILED');
    }
  }, 60_000);

  test("a statement PgBouncer cut at its query_timeout (08P01, a text pooler.ts does not list) is not a placeholder count: the connection was lost, in the pooler's words", async () => {
    // Before: INVALID_INPUT, "The number of parameters given does not match the $1, $2… placeholders"
    // (every 08P01 during a statement was read as the server's Bind check).
    const bouncer = await start({ settings: { query_timeout: '1' } });
    const error = await failure(execute(bouncer.config(db.name, { pooler: 'transaction' }), { text: 'SELECT pg_sleep(5)' }));
    expect([error.code, error.sqlstate, error.message]).toEqual([
      'CONNECTION_LOST', '08P01', `The connection to 127.0.0.1:${bouncer.port} was lost. The server said: Query timeout`,
    ]);
    expect(error.problems).toBeUndefined();
    expect(error.fixes).not.toContain(PLACEHOLDER_FIX);
  });

  test('PgBouncer requiring TLS (client_tls_sslmode require) and SSL Mode "disable" → SSL_REQUIRED, its fixes setting an SSL Mode; not a placeholder count', async () => {
    // Before: CONNECTION_LOST, "The connection to … was lost. The server said: SSL required" (class 08).
    const pki = createTestPki();
    const bouncer = await start({ tls: { certPem: pki.serverCertPem, keyPem: pki.serverKeyPem }, settings: { client_tls_sslmode: 'require' } });
    const error = await failure(execute(bouncer.config(db.name), { text: 'SELECT 1' }));
    expect([error.code, error.sqlstate, error.message]).toEqual([
      'SSL_REQUIRED', '08P01', `The connection pooler at 127.0.0.1:${bouncer.port} only accepts SSL connections, and SSL Mode is "disable".`,
    ]);
    expect(error.fixes).toEqual(ERROR_CATALOGUE.SSL_REQUIRED.fixes);
    expect(error.fixes[0]).toMatch(/SSL Mode to "require"/);
    expect(error.problems).toBeUndefined();
    expect(error.fixes).not.toContain(PLACEHOLDER_FIX);
    // The fix works: SSL Mode "require" through the same pooler; "allow" makes libpq's TLS attempt on the refusal.
    expect((await execute(bouncer.config(db.name, { sslMode: 'require' }), { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
    expect((await execute(bouncer.config(db.name, { sslMode: 'allow' }), { text: 'SELECT 2 AS two' })).rows).toEqual([{ two: 2 }]);
  });
});
