/**
 * The six libpq SSL modes against real servers: one without TLS, one with TLS that also takes
 * plaintext, one that takes TCP connections only over TLS (hostssl), and one whose certificate
 * names another host. Every successful connection is checked through pg_stat_ssl, so "it
 * connected" is never mistaken for "it is encrypted" (or the reverse).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { closeAll, execute, PgActionsError } from '../connection/index.js';
import type { ConnectionConfig } from '../schemas/types.gen.js';
import { createTestPki, type TestPki } from './harness/certs.js';
import { testConnectionChecked as testConnection } from './harness/failures.js';
import { expectNoSecretIn } from './harness/secrets.js';
import { disposeStartedServers, startClientCertServer, startHostsslOnlyServer, startMismatchTlsServer, startServer, startTlsServer, type TestServer } from './harness/servers.js';

type SslMode = NonNullable<ConnectionConfig['sslMode']>;
type ServerName = 'plain' | 'tls' | 'hostsslOnly' | 'mismatch';
/** 'plaintext' / 'tls': connects, and pg_stat_ssl shows that; otherwise the PgActionsError code. */
type Outcome = 'plaintext' | 'tls' | 'SSL_REQUIRED' | 'SSL_NOT_SUPPORTED' | 'SSL_CERTIFICATE_INVALID';
type CaChoice = 'none' | 'right' | 'wrong';

const SSL_QUERY = 'SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()';

let pki: TestPki;
const servers = {} as Record<ServerName, TestServer>;
/** Authenticates by client certificate only (pg_hba.conf `cert`). */
let certServer: TestServer;

beforeAll(async () => {
  pki = createTestPki();
  const [plain, tls, hostsslOnly, mismatch] = await Promise.all([
    startServer(),
    startTlsServer(),
    startHostsslOnlyServer(),
    startMismatchTlsServer(),
  ]);
  certServer = await startClientCertServer();
  Object.assign(servers, { plain, tls, hostsslOnly, mismatch });
}, 60_000);

afterAll(async () => {
  await closeAll();
  await disposeStartedServers();
}, 30_000);

function config(server: ServerName, sslMode: SslMode, options: { ca?: CaChoice; host?: string } = {}): ConnectionConfig {
  const s = servers[server];
  const ca = options.ca ?? 'none';
  return {
    host: options.host ?? s.host,
    port: s.port,
    database: 'postgres',
    user: s.user,
    password: s.password,
    sslMode,
    connectTimeoutMs: 5_000,
    ...(ca === 'right' ? { sslCa: pki.caPem } : ca === 'wrong' ? { sslCa: pki.otherCaPem } : {}),
  };
}

interface SslRow {
  ssl: boolean;
  version: string | null;
  cipher: string | null;
}

/** What the server says about this very session. */
async function sessionSsl(cfg: ConnectionConfig): Promise<SslRow> {
  const result = await execute(cfg, { text: SSL_QUERY });
  expect(result.rowCount).toBe(1);
  return result.rows[0] as unknown as SslRow;
}

async function failureOf(cfg: ConnectionConfig): Promise<PgActionsError> {
  let caught: unknown;
  try {
    const row = await sessionSsl(cfg);
    caught = new Error(`expected the connection to fail, but it connected (pg_stat_ssl.ssl = ${String(row.ssl)})`);
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof PgActionsError)) throw caught;
  expectNoSecretIn(caught);
  return caught;
}

async function expectOutcome(cfg: ConnectionConfig, outcome: Outcome): Promise<void> {
  if (outcome === 'plaintext') {
    expect(await sessionSsl(cfg)).toEqual({ ssl: false, version: null, cipher: null });
  } else if (outcome === 'tls') {
    const row = await sessionSsl(cfg);
    expect(row.ssl).toBe(true);
    expect(row.version).toMatch(/^TLSv1\.[23]$/);
    expect(typeof row.cipher).toBe('string');
  } else {
    const error = await failureOf(cfg);
    expect({ code: error.code, message: error.message }).toEqual({ code: outcome, message: expect.any(String) });
  }
}

// libpq's answers. verify-ca / verify-full get the right CA here, so only "is there TLS" matters.
const matrix: Record<Exclude<ServerName, 'mismatch'>, Record<SslMode, Outcome>> = {
  plain: {
    disable: 'plaintext',
    allow: 'plaintext',
    prefer: 'plaintext',
    require: 'SSL_NOT_SUPPORTED',
    'verify-ca': 'SSL_NOT_SUPPORTED',
    'verify-full': 'SSL_NOT_SUPPORTED',
  },
  tls: {
    disable: 'plaintext',
    allow: 'plaintext',
    prefer: 'tls',
    require: 'tls',
    'verify-ca': 'tls',
    'verify-full': 'tls',
  },
  hostsslOnly: {
    disable: 'SSL_REQUIRED',
    allow: 'tls',
    prefer: 'tls',
    require: 'tls',
    'verify-ca': 'tls',
    'verify-full': 'tls',
  },
};

const matrixCases = Object.entries(matrix).flatMap(([server, modes]) =>
  Object.entries(modes).map(([mode, outcome]) => ({ server: server as ServerName, mode: mode as SslMode, outcome })),
);

describe('sslMode against a server without TLS, with TLS, and with hostssl only', () => {
  test.each(matrixCases)('$mode on the $server server → $outcome', async ({ server, mode, outcome }) => {
    const ca: CaChoice = mode.startsWith('verify') ? 'right' : 'none';
    await expectOutcome(config(server, mode, { ca }), outcome);
  });
});

interface VerificationCase {
  mode: SslMode;
  server: ServerName;
  ca: CaChoice;
  host?: string;
  outcome: Outcome;
}

const verificationCases: VerificationCase[] = [
  // require: encryption only, unless a root CA is given (then libpq verifies the chain, not the name).
  { mode: 'require', server: 'mismatch', ca: 'none', outcome: 'tls' },
  { mode: 'require', server: 'mismatch', ca: 'right', outcome: 'tls' },
  { mode: 'require', server: 'tls', ca: 'right', outcome: 'tls' },
  { mode: 'require', server: 'tls', ca: 'wrong', outcome: 'SSL_CERTIFICATE_INVALID' },
  // verify-ca: the chain, never the host name.
  { mode: 'verify-ca', server: 'mismatch', ca: 'right', outcome: 'tls' },
  { mode: 'verify-ca', server: 'tls', ca: 'wrong', outcome: 'SSL_CERTIFICATE_INVALID' },
  { mode: 'verify-ca', server: 'tls', ca: 'none', outcome: 'SSL_CERTIFICATE_INVALID' },
  // verify-full: the chain and the host name (IP SAN for 127.0.0.1, DNS SAN for localhost).
  { mode: 'verify-full', server: 'tls', ca: 'right', host: '127.0.0.1', outcome: 'tls' },
  { mode: 'verify-full', server: 'tls', ca: 'right', host: 'localhost', outcome: 'tls' },
  { mode: 'verify-full', server: 'mismatch', ca: 'right', host: '127.0.0.1', outcome: 'SSL_CERTIFICATE_INVALID' },
  { mode: 'verify-full', server: 'mismatch', ca: 'right', host: 'localhost', outcome: 'SSL_CERTIFICATE_INVALID' },
  { mode: 'verify-full', server: 'tls', ca: 'wrong', outcome: 'SSL_CERTIFICATE_INVALID' },
  { mode: 'verify-full', server: 'tls', ca: 'none', outcome: 'SSL_CERTIFICATE_INVALID' },
  // The same failures on the hostssl-only server: no plaintext fallback hides them.
  { mode: 'verify-full', server: 'hostsslOnly', ca: 'wrong', outcome: 'SSL_CERTIFICATE_INVALID' },
];

describe('certificate verification', () => {
  test.each(verificationCases.map((c) => ({ ...c, host: c.host ?? '127.0.0.1' })))(
    '$mode on the $server server as $host, CA $ca → $outcome',
    async ({ mode, server, ca, host, outcome }) => {
      await expectOutcome(config(server, mode, { ca, host }), outcome);
    },
  );
});

describe('testConnection reports the TLS state', () => {
  test('a TLS session: enabled, with protocol and cipher, and no TLS warning', async () => {
    const cfg = config('tls', 'verify-full', { ca: 'right' });
    const result = await testConnection(cfg);
    if (!result.ok) throw result.error;
    const row = await sessionSsl(cfg);
    expect(result.ssl).toEqual({ enabled: true, protocol: row.version, cipher: row.cipher });
    expect(result.ssl.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(result.user).toBe(servers.tls.user);
    expect(result.database).toBe('postgres');
    expect(result.serverVersion).toMatch(/^\d+/);
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(result.warnings.filter((w) => /ssl|tls|encrypt/i.test(w))).toEqual([]);
  });

  test.each<{ server: ServerName; mode: SslMode }>([
    { server: 'tls', mode: 'disable' },
    { server: 'plain', mode: 'prefer' },
  ])('a plaintext session ($mode on the $server server): disabled, and a warning says so', async ({ server, mode }) => {
    const result = await testConnection(config(server, mode));
    if (!result.ok) throw result.error;
    expect(result.ssl).toEqual({ enabled: false, protocol: null, cipher: null });
    expect(result.warnings.some((w) => /ssl|tls|encrypt/i.test(w))).toBe(true);
  });

  test('a refused plaintext session is reported, not thrown', async () => {
    const result = await testConnection(config('hostsslOnly', 'disable'));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toBeInstanceOf(PgActionsError);
    expect(result.error.code).toBe('SSL_REQUIRED');
  });

  test('a certificate failure is reported with its code', async () => {
    const result = await testConnection(config('mismatch', 'verify-full', { ca: 'right' }));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('SSL_CERTIFICATE_INVALID');
  });
});

describe('sslmode in a connection string', () => {
  test('postgres://…?sslmode=require on the TLS server → TLS', async () => {
    await expectOutcome({ connectionString: `${servers.tls.url}?sslmode=require` }, 'tls');
  });

  test('postgres://…?sslmode=disable on the TLS server → plaintext (the default, prefer, would be TLS)', async () => {
    await expectOutcome({ connectionString: `${servers.tls.url}?sslmode=disable` }, 'plaintext');
  });

  test('postgres://…?sslmode=require on the server without TLS → SSL_NOT_SUPPORTED', async () => {
    await expectOutcome({ connectionString: `${servers.plain.url}?sslmode=require` }, 'SSL_NOT_SUPPORTED');
  });

  test('keyword/value form: sslmode=disable on the hostssl-only server → SSL_REQUIRED', async () => {
    const s = servers.hostsslOnly;
    const connectionString = `host=${s.host} port=${s.port} dbname=postgres user=${s.user} password='${s.password}' sslmode=disable`;
    await expectOutcome({ connectionString }, 'SSL_REQUIRED');
  });

  test('an explicit sslMode field overrides the string', async () => {
    await expectOutcome({ connectionString: `${servers.tls.url}?sslmode=disable`, sslMode: 'require' }, 'tls');
  });
});

describe('the default sslMode is prefer', () => {
  test('no sslMode on the TLS server → TLS; on the server without TLS → plaintext', async () => {
    const { sslMode: _tls, ...onTls } = config('tls', 'prefer');
    const { sslMode: _plain, ...onPlain } = config('plain', 'prefer');
    await expectOutcome({ ...onTls, applicationName: 'default-mode' }, 'tls');
    await expectOutcome({ ...onPlain, applicationName: 'default-mode' }, 'plaintext');
  });
});

describe('client certificates (pg_hba.conf method cert: no password at all)', () => {
  function certConfig(sslCert?: string, sslKey?: string): ConnectionConfig {
    return {
      host: certServer.host, port: certServer.port, database: 'postgres', user: certServer.user,
      sslMode: 'verify-full', sslCa: pki.caPem, connectTimeoutMs: 5_000,
      ...(sslCert ? { sslCert, sslKey } : {}),
    };
  }

  test('the certificate signed by the trusted CA logs in, and the server saw it', async () => {
    const cfg = certConfig(pki.clientCertPem, pki.clientKeyPem);
    const { rows } = await execute(cfg, { text: 'SELECT ssl, client_dn, current_user AS role FROM pg_stat_ssl WHERE pid = pg_backend_pid()' });
    expect(rows).toEqual([{ ssl: true, client_dn: '/CN=postgres', role: certServer.user }]);
    const diagnosis = await testConnection(cfg);
    expect(diagnosis.ok).toBe(true);
  });

  test('no client certificate → AUTHENTICATION_FAILED, and the fixes mention the certificate', async () => {
    const error = await failureOf(certConfig());
    expect(error.code).toBe('AUTHENTICATION_FAILED');
    expect(error.sqlstate).toBe('28000');
    expect(error.message).toMatch(/certificate/i);
    expect(error.fixes.join(' ')).toMatch(/sslCert/);
  });

  test('a certificate from a CA the server does not trust → SSL_CLIENT_CERTIFICATE_REJECTED', async () => {
    const error = await failureOf(certConfig(pki.untrustedClientCertPem, pki.untrustedClientKeyPem));
    expect(error.code).toBe('SSL_CLIENT_CERTIFICATE_REJECTED');
    expect(error.title).toBe('Client certificate rejected');
    expect(error.message).toBe(`${certServer.host}:${certServer.port} rejected the client certificate (TLS alert: unknown ca).`);
  });
});
