/**
 * Checks the pasted TLS material before any connection attempt, so a bad paste is an
 * INVALID_INPUT naming the field rather than an obscure handshake failure. Key text never
 * appears in a message.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';

interface TlsMaterial {
  sslCa?: string;
  sslCert?: string;
  sslKey?: string;
}

export function pemProblems(config: TlsMaterial, root: string): string[] {
  const problems: string[] = [];
  if (config.sslCa !== undefined) {
    const blocks = config.sslCa.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    const bad = blocks.findIndex((block) => !certificate(block));
    if (blocks.length === 0) problems.push(`${root}.sslCa holds no complete PEM certificate`);
    else if (bad >= 0) problems.push(`${root}.sslCa: certificate ${bad + 1} of ${blocks.length} is not a readable PEM certificate`);
  }
  const cert = config.sslCert === undefined ? undefined : certificate(config.sslCert);
  if (config.sslCert !== undefined && !cert) problems.push(`${root}.sslCert is not a readable PEM certificate`);
  let key: KeyObject | undefined;
  if (config.sslKey !== undefined) {
    try {
      key = createPrivateKey(config.sslKey);
    } catch (error) {
      const encrypted = /passphrase/i.test((error as Error).message) || /ENCRYPTED/.test(config.sslKey);
      problems.push(encrypted
        ? `${root}.sslKey is encrypted with a passphrase; give the key unencrypted (openssl pkey -in key.pem -out plain.pem)`
        : `${root}.sslKey is not a readable PEM private key`);
    }
  }
  if (cert && key && !cert.checkPrivateKey(key)) problems.push(`${root}.sslKey does not belong to ${root}.sslCert`);
  return problems;
}

function certificate(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}
