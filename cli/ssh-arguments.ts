/**
 * --ssh-* flags: an SSH tunnel (the connection's sshTunnel) for every command that takes
 * --connection. No secret is ever an argument value, which `ps` and shell history would show:
 * the password and the key's passphrase come from environment variables that the flags name, the
 * private key from a file (ssh-key-file.ts). Flags are merged over an sshTunnel that @file.json
 * already holds.
 */
import type { ConnectionConfig } from '../index.js';
import { usageError } from './failures.js';
import { rememberSecret } from './redact.js';
import { readSshKeyFile } from './ssh-key-file.js';

type SshTunnel = NonNullable<ConnectionConfig['sshTunnel']>;

export const SSH_OPTIONS = {
  'ssh-host': { type: 'string' },
  'ssh-port': { type: 'string' },
  'ssh-user': { type: 'string' },
  'ssh-key-file': { type: 'string' },
  'ssh-passphrase-env': { type: 'string' },
  'ssh-password-env': { type: 'string' },
  'ssh-host-key': { type: 'string' },
} as const;

type SshFlag = keyof typeof SSH_OPTIONS;
export type SshValues = { [K in SshFlag]?: string | boolean };

export const SSH_USAGE = `SSH tunnel (databases behind a bastion; host and port of --connection as the SSH server sees them):
  --ssh-host <host>           the SSH server to go through
  --ssh-port <n>              its port (default 22)
  --ssh-user <name>           the SSH user
  --ssh-key-file <path>       a private key file (OpenSSH or PEM) to log in with
  --ssh-passphrase-env <VAR>  the environment variable holding that key's passphrase
  --ssh-password-env <VAR>    the environment variable holding the SSH password
  --ssh-host-key <SHA256:…>   the server's host key fingerprint (ssh-keygen -l); refused when it differs
  Secrets are never flag values (they would show in ps): name the variable that holds them.
  In --connection @file.json the tunnel is "sshTunnel": {"host", "port", "user", "privateKeyFile":
  "~/.ssh/id_ed25519" (relative to the file's folder), "passphrase", "hostKeyFingerprint"}.`;

const flagNames = Object.keys(SSH_OPTIONS) as SshFlag[];

/** The flags given, by name (empty when none). */
export function sshFlagsGiven(values: SshValues): string[] {
  return flagNames.filter((flag) => values[flag] !== undefined).map((flag) => `--${flag}`);
}

/** The connection with the tunnel the flags describe (unchanged when no --ssh-* flag is given). */
export function withSshTunnel(command: string, connection: ConnectionConfig, values: SshValues, env: NodeJS.ProcessEnv = process.env): ConnectionConfig {
  const given = sshFlagsGiven(values);
  if (given.length === 0) return connection;
  const text = (flag: SshFlag) => (typeof values[flag] === 'string' ? (values[flag] as string) : undefined);
  const tunnel: Partial<SshTunnel> = { ...connection.sshTunnel };
  const host = text('ssh-host');
  if (host !== undefined) tunnel.host = host;
  if (!tunnel.host) throw usageError(`${command}: ${given[0]} needs --ssh-host (the SSH server to go through)`);
  const user = text('ssh-user');
  if (user !== undefined) tunnel.user = user;
  if (!tunnel.user) throw usageError(`${command}: --ssh-host needs --ssh-user`);
  const port = text('ssh-port');
  if (port !== undefined) {
    if (!/^\d{1,5}$/.test(port)) throw usageError(`${command}: --ssh-port must be a port number, not ${JSON.stringify(port)}`);
    tunnel.port = Number(port);
  }
  const fingerprint = text('ssh-host-key');
  if (fingerprint !== undefined) tunnel.hostKeyFingerprint = fingerprint;
  const keyFile = text('ssh-key-file');
  if (keyFile !== undefined) tunnel.privateKey = readSshKeyFile({ written: keyFile, origin: `${command} --ssh-key-file`, base: process.cwd() });
  const password = fromEnv(command, 'ssh-password-env', text('ssh-password-env'), env);
  if (password !== undefined) tunnel.password = password;
  const passphrase = fromEnv(command, 'ssh-passphrase-env', text('ssh-passphrase-env'), env);
  if (passphrase !== undefined) tunnel.passphrase = passphrase;
  if (tunnel.password === undefined && tunnel.privateKey === undefined) {
    throw usageError(`${command}: the SSH tunnel needs a password (--ssh-password-env <VAR>) or a private key (--ssh-key-file <path>)`);
  }
  return { ...connection, sshTunnel: tunnel as SshTunnel };
}

function fromEnv(command: string, flag: SshFlag, name: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (name === undefined) return undefined;
  const value = env[name];
  if (value === undefined || value === '') {
    // The name is not echoed: someone who typed the secret itself in its place would see it printed.
    throw usageError(`${command}: --${flag} names an environment variable that is not set (or is empty)`, [
      `--${flag} takes the name of a variable holding the secret, never the secret itself: e.g. read -rs SSH_SECRET && export SSH_SECRET, then --${flag} SSH_SECRET.`,
    ]);
  }
  rememberSecret(value);
  return value;
}
