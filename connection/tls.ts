/**
 * The six libpq SSL modes as attempts for node-postgres. libpq tries at most two ways for one
 * connection: `allow` plaintext then TLS, `prefer` TLS then plaintext; the others try one.
 */
import type { ConnectionOptions } from 'node:tls';
import type { ResolvedConfig } from './config.js';

/** Exactly what pg's `ssl` option takes: false for plaintext, TLS options otherwise. */
export type SslSetting = false | ConnectionOptions;

export interface SslPlan {
  first: SslSetting;
  /** The second attempt, and when libpq would make it. */
  fallback?: { setting: SslSetting; when: 'server-refuses-tls' | 'server-rejects-plaintext' };
}

export function sslPlan(config: Pick<ResolvedConfig, 'sslMode' | 'sslCa' | 'sslCert' | 'sslKey'>): SslPlan {
  const clientCert = config.sslCert && config.sslKey ? { cert: config.sslCert, key: config.sslKey } : {};
  const encryptOnly: ConnectionOptions = { rejectUnauthorized: false, ...clientCert };
  // Chain verified, host name not: libpq's verify-ca (and require when a root CA is given).
  const verifyChain: ConnectionOptions = { rejectUnauthorized: true, ca: config.sslCa, checkServerIdentity: () => undefined, ...clientCert };
  const verifyFull: ConnectionOptions = { rejectUnauthorized: true, ca: config.sslCa, ...clientCert };
  switch (config.sslMode) {
    case 'disable':
      return { first: false };
    case 'allow':
      return { first: false, fallback: { setting: encryptOnly, when: 'server-rejects-plaintext' } };
    case 'prefer':
      return { first: encryptOnly, fallback: { setting: false, when: 'server-refuses-tls' } };
    case 'require':
      return { first: config.sslCa ? verifyChain : encryptOnly };
    case 'verify-ca':
      return { first: verifyChain };
    case 'verify-full':
      return { first: verifyFull };
  }
}
