/**
 * The SSH tunnel's failures as PgActionsErrors. ssh2 tells them apart by `level` (client-socket,
 * client-timeout, client-authentication, protocol) and, for a refused forward, by the channel
 * open failure's reason code (RFC 4254 §5.1). Messages name the SSH host, never a secret.
 */
import { PgActionsError } from './error.js';

export interface SshEndpoint {
  host: string;
  port: number;
  user: string;
}

/** RFC 4254 SSH_OPEN_* reason codes. */
const ADMINISTRATIVELY_PROHIBITED = 1;
const CONNECT_FAILED = 2;

const UNREACHABLE_SOCKET_CODES: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused',
  EHOSTUNREACH: 'no route to that host',
  ENETUNREACH: 'the network is unreachable',
  EADDRNOTAVAIL: 'the address is not available',
  ENOTFOUND: 'the host name could not be found',
  EAI_AGAIN: 'the host name could not be resolved',
  ETIMEDOUT: 'the connection timed out',
  ECONNRESET: 'it closed the connection',
};

/** Why the SSH connection could not be set up (before any forwarding). */
export function sshConnectError(error: unknown, ssh: SshEndpoint, hostKey: { expected?: string; presented?: string }, timeoutMs: number): PgActionsError {
  const { level, code, message = '' } = (error ?? {}) as { level?: string; code?: string; message?: string };
  const where = `the SSH host ${ssh.host}:${ssh.port}`;
  if (hostKey.expected && hostKey.presented && hostKey.presented !== `SHA256:${hostKey.expected}`) {
    return new PgActionsError('SSH_HOST_KEY_MISMATCH', {
      message: `${capital(where)} presented host key ${hostKey.presented}, not the expected SHA256:${hostKey.expected}; the connection was refused.`,
      cause: error,
    });
  }
  if (level === 'client-authentication') {
    return new PgActionsError('SSH_AUTH_FAILED', { message: `${capital(where)} rejected user "${ssh.user}" with the password or key given.`, cause: error });
  }
  const reason = code && UNREACHABLE_SOCKET_CODES[code];
  const why = reason
    ? `Could not reach ${where}: ${reason}.`
    : level === 'client-timeout' || /timed? ?out/i.test(message)
      ? `${capital(where)} did not complete the SSH handshake within ${timeoutMs} ms.`
      : `${capital(where)} did not complete the SSH handshake (${message || 'no answer'}); is it an SSH server?`;
  return new PgActionsError('SSH_HOST_UNREACHABLE', { message: why, cause: error });
}

/** Why the SSH server did not open a forwarded connection to the database. */
export function sshForwardError(error: unknown, ssh: SshEndpoint, target: { host: string; port: number }): PgActionsError {
  const { reason, message = '' } = (error ?? {}) as { reason?: number; message?: string };
  const said = message.replace(/^\(SSH\) Channel open failure:\s*/, '') || 'no reason given';
  const where = `${target.host}:${target.port}`;
  if (reason === CONNECT_FAILED) {
    return new PgActionsError('CONNECTION_REFUSED', {
      message: `The SSH host ${ssh.host}:${ssh.port} could not connect to ${where} (it said: ${said}).`,
      fixes: [
        'Check host and port: they are reached from the SSH host, so give the address the SSH host sees (a private IP or name, or 127.0.0.1 for a database on the SSH host itself).',
        'Check that the database server is running and listens on that interface (listen_addresses in postgresql.conf).',
        'Check firewall rules between the SSH host and the database.',
      ],
      cause: error,
    });
  }
  const prohibited = reason === ADMINISTRATIVELY_PROHIBITED ? ' (administratively prohibited)' : '';
  return new PgActionsError('SSH_FORWARDING_REFUSED', {
    message: `The SSH host ${ssh.host}:${ssh.port} refused to forward a connection to ${where}${prohibited}; it said: ${said}.`,
    cause: error,
  });
}

/** The tunnel was closed (the pool ended, or the SSH connection dropped) while a connection was being made. */
export function sshClosedError(ssh: SshEndpoint): PgActionsError {
  return new PgActionsError('CONNECTION_LOST', {
    message: `The SSH connection to ${ssh.host}:${ssh.port} closed while connecting through it.`,
  });
}

function capital(text: string): string {
  return text[0]!.toUpperCase() + text.slice(1);
}
