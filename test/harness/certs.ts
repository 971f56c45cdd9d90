/**
 * A throw-away PKI for TLS tests, made with the openssl CLI in a temporary directory:
 *  - a test CA, and a server certificate it signed for localhost / 127.0.0.1;
 *  - a second, unrelated CA (for "wrong CA" tests);
 *  - a server certificate signed by the test CA whose only name is db.example.invalid
 *    (for host-name mismatch tests);
 *  - a client certificate for the role "postgres" signed by the test CA, and one signed by the
 *    unrelated CA (for certificate authentication, pg_hba.conf method `cert`).
 * Keys are P-256 EC keys, so the whole thing takes a few tens of milliseconds. Cached per process.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  /** The CA that signed both server certificates. */
  readonly caPem: string;
  /** An unrelated CA: signed nothing the servers present. */
  readonly otherCaPem: string;
  /** SAN DNS:localhost, IP:127.0.0.1; signed by caPem. */
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
  /** SAN DNS:db.example.invalid only; signed by caPem. */
  readonly mismatchCertPem: string;
  readonly mismatchKeyPem: string;
  /** CN=postgres, extendedKeyUsage clientAuth; signed by caPem. */
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
  /** CN=postgres, signed by otherCaPem: a server trusting caPem rejects it. */
  readonly untrustedClientCertPem: string;
  readonly untrustedClientKeyPem: string;
}

/** The host name in the mismatching certificate. */
export const MISMATCH_HOST = 'db.example.invalid';

let cached: TestPki | undefined;

export function createTestPki(): TestPki {
  cached ??= generate();
  return cached;
}

function generate(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'pg-actions-pki-'));
  try {
    const path = (name: string) => join(dir, name);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    // A config of our own, so the result does not depend on the system openssl.cnf.
    writeFileSync(
      path('openssl.cnf'),
      [
        '[req]',
        'distinguished_name = dn',
        'prompt = no',
        '[dn]',
        'CN = unused',
        '[ca_ext]',
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, keyCertSign, cRLSign',
        'subjectKeyIdentifier = hash',
        '[server_ext]',
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature, keyEncipherment',
        'extendedKeyUsage = serverAuth',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
        'subjectAltName = DNS:localhost, IP:127.0.0.1',
        '[mismatch_ext]',
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature, keyEncipherment',
        'extendedKeyUsage = serverAuth',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
        `subjectAltName = DNS:${MISMATCH_HOST}`,
        '[client_ext]',
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature',
        'extendedKeyUsage = clientAuth',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
        '',
      ].join('\n'),
    );
    const keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    const makeCa = (name: string, cn: string) =>
      openssl('req', '-config', path('openssl.cnf'), '-x509', ...keyArgs, '-keyout', path(`${name}.key`), '-out', path(`${name}.pem`),
        '-days', '3', '-subj', `/CN=${cn}`, '-extensions', 'ca_ext');
    const makeLeaf = (name: string, cn: string, extensions: string, ca = 'ca') => {
      openssl('req', '-config', path('openssl.cnf'), '-new', ...keyArgs, '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`),
        '-subj', `/CN=${cn}`);
      openssl('x509', '-req', '-in', path(`${name}.csr`), '-CA', path(`${ca}.pem`), '-CAkey', path(`${ca}.key`), '-set_serial',
        '0x' + String(Date.now()) + String(Math.floor(Math.random() * 1e6)), '-days', '3', '-extfile', path('openssl.cnf'),
        '-extensions', extensions, '-out', path(`${name}.pem`));
    };
    makeCa('ca', 'pg-actions test CA');
    makeCa('other-ca', 'pg-actions unrelated CA');
    makeLeaf('server', 'localhost', 'server_ext');
    makeLeaf('mismatch', MISMATCH_HOST, 'mismatch_ext');
    makeLeaf('client', 'postgres', 'client_ext');
    makeLeaf('untrusted-client', 'postgres', 'client_ext', 'other-ca');
    const read = (name: string) => readFileSync(path(name), 'utf8');
    return {
      caPem: read('ca.pem'),
      otherCaPem: read('other-ca.pem'),
      serverCertPem: read('server.pem'),
      serverKeyPem: read('server.key'),
      mismatchCertPem: read('mismatch.pem'),
      mismatchKeyPem: read('mismatch.key'),
      clientCertPem: read('client.pem'),
      clientKeyPem: read('client.key'),
      untrustedClientCertPem: read('untrusted-client.pem'),
      untrustedClientKeyPem: read('untrusted-client.key'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
