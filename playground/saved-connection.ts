/**
 * The connection the playground was started with stays on the server. The page refers to it as
 * "default" and only ever sees it without its secrets; a request may instead carry a connection
 * the user typed. A typed connection without a password reuses the saved one only when it names
 * the same host, port, user and database, with TLS at least as strict (same or stricter sslMode,
 * same CA, same SSH tunnel): the saved password never goes to another server, nor to the same one
 * over a channel an impostor could sit on. Otherwise the page asks for the password. The saved TLS
 * client key follows the same rule, and only together with the saved client certificate. The
 * saved SSH password and key go only to the same SSH server and user, with the same (or a newly
 * pinned) host key fingerprint.
 */
import connectionSchema from '../schemas/connection.schema.json' with { type: 'json' };
import type { ConnectionConfig } from '../index.js';
import { invalidInput } from './http-errors.js';

type SshTunnel = NonNullable<ConnectionConfig['sshTunnel']>;

/** What GET /api/connection answers: the saved connection minus its secrets. */
export interface PublicConnection extends Omit<ConnectionConfig, 'password' | 'sslKey' | 'sshTunnel'> {
  configured: boolean;
  hasPassword: boolean;
  hasSslKey: boolean;
  sshTunnel?: Omit<SshTunnel, 'password' | 'privateKey' | 'passphrase'> & { hasPassword: boolean; hasPrivateKey: boolean };
}

export class SavedConnection {
  constructor(private readonly saved: ConnectionConfig | undefined) {}

  describe(): PublicConnection {
    if (!this.saved) return { configured: false, hasPassword: false, hasSslKey: false };
    const { password, sslKey, connectionString, sshTunnel, ...rest } = this.saved;
    const view: PublicConnection = {
      configured: true,
      hasPassword: Boolean(password) || hasStringPassword(connectionString),
      hasSslKey: Boolean(sslKey),
      ...rest,
    };
    if (sshTunnel) {
      const { password: sshPassword, privateKey, passphrase: _, ...plain } = sshTunnel;
      view.sshTunnel = { ...plain, hasPassword: Boolean(sshPassword), hasPrivateKey: Boolean(privateKey) };
    }
    if (connectionString !== undefined) {
      const redacted = withoutPassword(connectionString);
      if (redacted !== undefined) view.connectionString = redacted;
    }
    return view;
  }

  /** "default" → the saved connection; an object → itself, with the saved password when it is safe. */
  resolve(reference: unknown): ConnectionConfig {
    if (reference === 'default') {
      if (!this.saved) throw invalidInput('connection "default" is not configured: fill in the connection form');
      return this.saved;
    }
    if (typeof reference !== 'object' || reference === null || Array.isArray(reference)) {
      throw invalidInput('connection must be "default" or a connection object');
    }
    const typed = { ...(reference as ConnectionConfig) };
    const sameTarget = this.saved !== undefined && mayReceiveSavedSecrets(typed, this.saved);
    if (!typed.password && this.saved?.password && sameTarget) typed.password = this.saved.password;
    else if (typed.password === '') delete typed.password;
    // The saved client key goes only with the saved client certificate, to the same server.
    if (!typed.sslKey && this.saved?.sslKey && sameTarget && typed.sslCert === this.saved.sslCert) typed.sslKey = this.saved.sslKey;
    else if (typed.sslKey === '') delete typed.sslKey;
    if (typed.sshTunnel) typed.sshTunnel = withSavedSshSecrets(typed.sshTunnel, this.saved?.sshTunnel);
    return typed;
  }

  /** Strings that must never reach a log line. */
  secrets(): string[] {
    const ssh = this.saved?.sshTunnel;
    return [this.saved?.password, this.saved?.sslKey, passwordIn(this.saved?.connectionString), ssh?.password, ssh?.privateKey, ssh?.passphrase]
      .filter((s): s is string => Boolean(s));
  }
}

/** Weakest first: libpq's sslMode order. */
const SSL_MODES: readonly string[] = connectionSchema.properties.sslMode.enum;
const DEFAULTS = {
  port: connectionSchema.properties.port.default,
  sslMode: connectionSchema.properties.sslMode.default,
  sshPort: connectionSchema.properties.sshTunnel.properties.port.default,
};

function mayReceiveSavedSecrets(typed: ConnectionConfig, saved: ConnectionConfig): boolean {
  // Only plain fields are compared: a connection string could hide a different target.
  if (typed.connectionString !== undefined || saved.connectionString !== undefined) return false;
  const sameTarget = typed.host === saved.host && (typed.port ?? DEFAULTS.port) === (saved.port ?? DEFAULTS.port) &&
    typed.user === saved.user && typed.database === saved.database;
  const strength = (config: ConnectionConfig) => SSL_MODES.indexOf(config.sslMode ?? DEFAULTS.sslMode);
  // The page trims what it sends; whitespace around PEM text means nothing.
  const sameCa = (typed.sslCa ?? '').trim() === (saved.sslCa ?? '').trim();
  return sameTarget && strength(typed) >= strength(saved) && sameCa && sameSshServer(typed.sshTunnel, saved.sshTunnel);
}

/**
 * The same SSH server and user, and a host key check at least as strict: the saved fingerprint
 * (with or without its SHA256: prefix), or any pinned one when none was saved.
 */
function sameSshServer(typed: SshTunnel | undefined, saved: SshTunnel | undefined): boolean {
  if (!typed || !saved) return typed === saved;
  const fingerprint = (value: string | undefined) => value?.replace(/^SHA256:/, '').replace(/=$/, '');
  const strictEnough = saved.hostKeyFingerprint === undefined || fingerprint(typed.hostKeyFingerprint) === fingerprint(saved.hostKeyFingerprint);
  return typed.host === saved.host && (typed.port ?? DEFAULTS.sshPort) === (saved.port ?? DEFAULTS.sshPort) && typed.user === saved.user && strictEnough;
}

/** The saved SSH password or key (with its passphrase) for a typed tunnel that gives none, when it is the same SSH server. */
function withSavedSshSecrets(typed: SshTunnel, saved: SshTunnel | undefined): SshTunnel {
  const tunnel = { ...typed };
  for (const field of ['password', 'privateKey', 'passphrase'] as const) if (tunnel[field] === '') delete tunnel[field];
  if (tunnel.password !== undefined || tunnel.privateKey !== undefined || !saved || !sameSshServer(tunnel, saved)) return tunnel;
  return { ...tunnel, password: saved.password, privateKey: saved.privateKey, passphrase: saved.passphrase };
}

function hasStringPassword(connectionString: string | undefined): boolean {
  return Boolean(passwordIn(connectionString));
}

/** The password a connection string holds: URI userinfo, ?password=, or password=… keyword. */
function passwordIn(connectionString: string | undefined): string | undefined {
  if (!connectionString) return undefined;
  const uri = parseUri(connectionString);
  if (uri) return decodeURIComponent(uri.password) || uri.searchParams.get('password') || undefined;
  return /(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/i.exec(connectionString)?.[1]?.replace(/^'|'$/g, '');
}

/** The connection string without any password; undefined when it cannot be read safely. */
function withoutPassword(connectionString: string): string | undefined {
  const uri = parseUri(connectionString);
  if (uri) {
    uri.password = '';
    uri.searchParams.delete('password');
    return uri.toString();
  }
  if (/^[a-z]+:\/\//i.test(connectionString.trim())) return undefined;
  return connectionString.replace(/(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/gi, '').trim();
}

function parseUri(text: string): URL | undefined {
  if (!/^postgres(ql)?:\/\//i.test(text.trim())) return undefined;
  try {
    return new URL(text.trim());
  } catch {
    return undefined;
  }
}
