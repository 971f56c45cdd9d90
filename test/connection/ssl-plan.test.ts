/**
 * connection/tls.ts (the libpq SSL modes as connection attempts) and the pool's second attempt
 * (pools.ts), cheaply enough to run per mutant: the suite's server (no TLS: it answers 'N') and
 * TLS-ending proxies in front of it, presenting the test CA's localhost certificate, a
 * certificate for another host name, or asking for a client certificate. The proxy counts the
 * connections that did not ask for TLS, so "encrypted" and "plaintext" are observed, not assumed.
 * The mode matrix against real TLS servers (pg_stat_ssl, hostssl-only, `allow`'s second attempt)
 * is in test/ssl.test.ts.
 */
import { connect as connectTcp, createServer, type Socket } from 'node:net';
import { closeAll, execute, type ConnectionConfig, type ErrorCode } from '../../connection/index.js';
import { createTestPki, type TestPki } from '../harness/certs.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failure } from '../harness/failures.js';
import { startWireProxy, type WireProxy } from '../harness/proxy.js';

type SslMode = NonNullable<ConnectionConfig['sslMode']>;

const db = useTestDatabase('ssl_plan');
let pki: TestPki;
let good: WireProxy; // certificate for localhost / 127.0.0.1, signed by the test CA
let otherName: WireProxy; // certificate for db.example.invalid only, signed by the test CA
let certAuth: WireProxy; // good certificate, and requires a client certificate signed by the test CA

beforeAll(async () => {
  pki = createTestPki();
  const target = { host: db.config.host as string, port: db.config.port as number };
  [good, otherName, certAuth] = await Promise.all([
    startWireProxy(target, { tls: { certPem: pki.serverCertPem, keyPem: pki.serverKeyPem } }),
    startWireProxy(target, { tls: { certPem: pki.mismatchCertPem, keyPem: pki.mismatchKeyPem } }),
    startWireProxy(target, { tls: { certPem: pki.serverCertPem, keyPem: pki.serverKeyPem, clientCaPem: pki.caPem } }),
  ]);
  const [{ ssl }] = (await db.sql('SHOW ssl')) as [{ ssl: string }];
  if (ssl !== 'off') throw new Error('these tests need a server without TLS (the suite\'s embedded one)');
}, 60_000);

afterAll(async () => {
  await Promise.all([good, otherName, certAuth].map((proxy) => proxy?.close()));
}, 60_000);

type Ca = 'none' | 'right' | 'wrong';
function via(proxy: WireProxy | 'server', sslMode: SslMode, ca: Ca = 'none', clientCert = false): ConnectionConfig {
  return {
    ...db.config,
    ...(proxy === 'server' ? {} : { host: 'localhost', port: proxy.port }),
    sslMode,
    connectTimeoutMs: 5000,
    ...(ca === 'right' ? { sslCa: pki.caPem } : ca === 'wrong' ? { sslCa: pki.otherCaPem } : {}),
    ...(clientCert ? { sslCert: pki.clientCertPem, sslKey: pki.clientKeyPem } : {}),
  };
}

/** 'tls' or 'plaintext' as the proxy saw it, or the error code. */
async function outcome(proxy: WireProxy | 'server', config: ConnectionConfig): Promise<'tls' | 'plaintext' | 'connected' | ErrorCode> {
  const before = proxy === 'server' ? 0 : proxy.plaintextConnections;
  try {
    const { rows } = await execute(config, { text: 'SELECT 1 AS one' });
    expect(rows).toEqual([{ one: 1 }]);
  } catch (error) {
    return (await failure(Promise.reject(error))).code;
  } finally {
    await closeAll();
  }
  if (proxy === 'server') return 'connected';
  return proxy.plaintextConnections > before ? 'plaintext' : 'tls';
}

test('disable and allow start in plaintext; prefer and every stricter mode use TLS when the server offers it', async () => {
  const seen: Record<string, string> = {};
  for (const mode of ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const) {
    seen[mode] = await outcome(good, via(good, mode, mode.startsWith('verify') ? 'right' : 'none'));
  }
  expect(seen).toEqual({ disable: 'plaintext', allow: 'plaintext', prefer: 'tls', require: 'tls', 'verify-ca': 'tls', 'verify-full': 'tls' });
});

test('a server without TLS: disable, allow and prefer (its second attempt) connect; require and the verify modes refuse', async () => {
  const seen: Record<string, string> = {};
  for (const mode of ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const) {
    seen[mode] = await outcome('server', via('server', mode, mode.startsWith('verify') ? 'right' : 'none'));
  }
  expect(seen).toEqual({ disable: 'connected', allow: 'connected', prefer: 'connected', require: 'SSL_NOT_SUPPORTED', 'verify-ca': 'SSL_NOT_SUPPORTED', 'verify-full': 'SSL_NOT_SUPPORTED' });
});

test('what each mode verifies: require checks nothing (the chain only when a CA is given), verify-ca the chain, verify-full the chain and the host name', async () => {
  const cases = {
    'require, no CA, another host name': await outcome(otherName, via(otherName, 'require')),
    'require, no CA': await outcome(good, via(good, 'require')),
    'require, a CA that did not sign it': await outcome(good, via(good, 'require', 'wrong')),
    'require, the right CA, another host name': await outcome(otherName, via(otherName, 'require', 'right')),
    'prefer, a CA that did not sign it': await outcome(good, via(good, 'prefer', 'wrong')),
    'verify-ca, the right CA, another host name': await outcome(otherName, via(otherName, 'verify-ca', 'right')),
    'verify-ca, a CA that did not sign it': await outcome(good, via(good, 'verify-ca', 'wrong')),
    'verify-ca, no CA (only the system\'s)': await outcome(good, via(good, 'verify-ca')),
    'verify-full, the right CA, another host name': await outcome(otherName, via(otherName, 'verify-full', 'right')),
    'verify-full, a CA that did not sign it': await outcome(good, via(good, 'verify-full', 'wrong')),
  };
  expect(cases).toEqual({
    'require, no CA, another host name': 'tls',
    'require, no CA': 'tls',
    'require, a CA that did not sign it': 'SSL_CERTIFICATE_INVALID',
    'require, the right CA, another host name': 'tls',
    'prefer, a CA that did not sign it': 'tls',
    'verify-ca, the right CA, another host name': 'tls',
    'verify-ca, a CA that did not sign it': 'SSL_CERTIFICATE_INVALID',
    'verify-ca, no CA (only the system\'s)': 'SSL_CERTIFICATE_INVALID',
    'verify-full, the right CA, another host name': 'SSL_CERTIFICATE_INVALID',
    'verify-full, a CA that did not sign it': 'SSL_CERTIFICATE_INVALID',
  });
});

test('a client certificate is presented in every TLS mode (prefer and require included); without one the server refuses', async () => {
  const seen: Record<string, string> = {};
  for (const mode of ['prefer', 'require', 'verify-ca', 'verify-full'] as const) {
    seen[`${mode} with`] = await outcome(certAuth, via(certAuth, mode, 'right', true));
  }
  seen['allow with'] = await outcome(certAuth, via(certAuth, 'allow', 'right', true));
  seen['require without'] = await outcome(certAuth, via(certAuth, 'require', 'right'));
  expect(seen).toEqual({
    'prefer with': 'tls', 'require with': 'tls', 'verify-ca with': 'tls', 'verify-full with': 'tls',
    'allow with': 'plaintext', // allow starts in plaintext, which this server takes
    'require without': 'SSL_CLIENT_CERTIFICATE_REJECTED',
  });
});

test('disable makes no second attempt: a login the server refuses in plaintext is reported as refused, not retried over TLS', async () => {
  // allow would now try TLS (libpq's second attempt), and this server answers that it has none.
  const refused = { ...via('server', 'disable'), user: 'ssl_plan_no_such_role' };
  expect(await outcome('server', refused)).toBe('AUTHENTICATION_FAILED');
  expect(await outcome('server', { ...refused, sslMode: 'allow' })).toBe('SSL_NOT_SUPPORTED');
});

// The pool's second attempt (pools.ts checkout): when it is made, how often, and on what budget.

test('prefer goes plaintext only when the server has no TLS: a failed handshake (a client certificate demanded) is reported, nothing is sent in clear', async () => {
  const before = certAuth.plaintextConnections;
  expect(await outcome(certAuth, via(certAuth, 'prefer'))).toBe('SSL_CLIENT_CERTIFICATE_REJECTED');
  expect(certAuth.plaintextConnections).toBe(before);
});

test('allow tries TLS only when the login is refused (SQLSTATE class 28): a database that does not exist is reported as it is', async () => {
  // A TLS attempt here would meet the server's "no SSL" and hide the real cause.
  expect(await outcome('server', { ...via('server', 'allow'), database: 'ssl_plan_no_such_database' })).toBe('DATABASE_NOT_FOUND');
});

test('allow retries over TLS once: on a pool already switched to TLS, a login refused there too is not retried again', async () => {
  const refused = { ...via(good, 'allow'), user: 'ssl_plan_no_such_role' };
  const seen = () => ({ plaintext: good.plaintextConnections, tls: good.tlsConnections });
  try {
    const start = seen();
    expect((await failure(execute(refused, { text: 'SELECT 1' }))).code).toBe('AUTHENTICATION_FAILED');
    const first = seen();
    expect(first).toEqual({ plaintext: start.plaintext + 1, tls: start.tls + 1 });
    // The same configuration, so the same pool, now on TLS: one attempt, refused, reported.
    expect((await failure(execute(refused, { text: 'SELECT 1' }))).code).toBe('AUTHENTICATION_FAILED');
    expect(seen()).toEqual({ plaintext: first.plaintext, tls: first.tls + 1 });
  } finally {
    await closeAll();
  }
});

test('steps that start together make one second attempt between them: those still waiting on the first pool move to the new one', async () => {
  // allow: every step's plaintext login is refused; the first refusal switches the pool to TLS,
  // the others are moved to it and meet the server's "no SSL" like the first.
  const refused = { ...via('server', 'allow'), user: 'ssl_plan_no_such_role' };
  try {
    const codes = await Promise.all([1, 2, 3, 4].map(async () => (await failure(execute(refused, { text: 'SELECT 1' }))).code));
    expect(codes).toEqual(['SSL_NOT_SUPPORTED', 'SSL_NOT_SUPPORTED', 'SSL_NOT_SUPPORTED', 'SSL_NOT_SUPPORTED']);
  } finally {
    await closeAll();
  }
});

test('the second attempt gets what is left of the step\'s time, not a fresh budget', async () => {
  // allow: the plaintext login reaches the server REFUSED_AFTER_MS late and is refused; the TLS
  // attempt that follows is never answered, so only the step's deadline ends it.
  const REFUSED_AFTER_MS = 3000;
  const STEP_MS = 4000;
  const slow = await startSlowLogin(REFUSED_AFTER_MS);
  const config = { ...via('server', 'allow'), host: '127.0.0.1', port: slow.port, user: 'ssl_plan_no_such_role', connectTimeoutMs: 60_000 };
  try {
    const started = performance.now();
    const error = await failure(execute(config, { text: 'SELECT 1', timeoutMs: STEP_MS }));
    const elapsed = performance.now() - started;
    expect(slow.sslRequests).toBe(1); // the second attempt was made
    expect(error.code).toBe('CONNECTION_TIMEOUT');
    expect(elapsed).toBeGreaterThanOrEqual(STEP_MS - 100);
    // A fresh budget for the second attempt would end it at REFUSED_AFTER_MS + STEP_MS (7 s) or later.
    expect(elapsed).toBeLessThan(REFUSED_AFTER_MS + STEP_MS);
  } finally {
    await slow.close();
    await closeAll();
  }
}, 60_000);

/** A loopback relay to the suite's server: plaintext connections pass `delayMs` late, an SSLRequest is never answered. */
async function startSlowLogin(delayMs: number): Promise<{ port: number; readonly sslRequests: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  };
  let sslRequests = 0;
  const server = createServer((client) => {
    track(client);
    client.once('data', (first) => {
      if (first.length === 8 && first.readInt32BE(4) === 80877103) return void sslRequests++;
      client.pause();
      setTimeout(() => {
        const upstream = connectTcp(db.config.port as number, db.config.host as string);
        track(upstream);
        upstream.on('close', () => client.destroy());
        client.on('close', () => upstream.destroy());
        upstream.write(first);
        client.pipe(upstream);
        upstream.pipe(client);
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get sslRequests() {
      return sslRequests;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
