/**
 * The sshTunnel part of a connection: the schema's default port filled in, the fingerprint in
 * one form, and the private key read (and decrypted) before any connection attempt, so a bad
 * paste or a wrong passphrase is an INVALID_INPUT naming the field. Key text and passphrase
 * never appear in a message.
 */
import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';
import connectionSchema from '../schemas/connection.schema.json' with { type: 'json' };
import type { ConnectionConfig } from '../schemas/types.gen.js';

type GivenTunnel = NonNullable<ConnectionConfig['sshTunnel']>;

/** sshTunnel with its defaults; the fields in a fixed order (the pool key is built from it). */
export interface ResolvedSshTunnel {
  host: string;
  port: number;
  user: string;
  password?: string;
  privateKey?: string;
  passphrase?: string;
  /** Base64 of the SHA-256 of the host key, without the `SHA256:` prefix and padding. */
  hostKeyFingerprint?: string;
}

/** A decrypted key as ssh2 takes it (its own opaque object). */
export type ParsedSshKey = object;

const DEFAULT_PORT: number = connectionSchema.properties.sshTunnel.properties.port.default;

/** The keys read so far, by a hash of key text and passphrase: decrypting an OpenSSH key takes ~0.5 s. */
const parsedKeys = new Map<string, ParsedSshKey>();
const MAX_PARSED_KEYS = 50;

export function resolveSshTunnel(given: GivenTunnel, root: string): { tunnel: ResolvedSshTunnel; problems: string[] } {
  const field = `${root}.sshTunnel`;
  const problems: string[] = [];
  if (given.password === undefined && given.privateKey === undefined) problems.push(`${field} needs password or privateKey`);
  if (given.passphrase !== undefined && given.privateKey === undefined) problems.push(`${field}.passphrase is given without ${field}.privateKey`);
  const tunnel: ResolvedSshTunnel = {
    host: given.host,
    port: given.port ?? DEFAULT_PORT,
    user: given.user,
    password: given.password,
    privateKey: given.privateKey,
    passphrase: given.passphrase,
    hostKeyFingerprint: given.hostKeyFingerprint?.replace(/^SHA256:/, '').replace(/=$/, ''),
  };
  if (tunnel.privateKey !== undefined && !problems.length) {
    const problem = sshKeyProblem(tunnel.privateKey, tunnel.passphrase, { key: `${field}.privateKey`, passphrase: `${field}.passphrase` });
    if (problem) problems.push(problem);
  }
  return { tunnel, problems };
}

/** The decrypted private key of a resolved tunnel (read when it was resolved). */
export function sshKeyOf(tunnel: ResolvedSshTunnel): ParsedSshKey | undefined {
  if (tunnel.privateKey === undefined) return undefined;
  const key = parseKey(tunnel.privateKey, tunnel.passphrase);
  return key instanceof Error ? undefined : key;
}

/** What must never be printed: the SSH password, private key and passphrase. */
export function sshSecrets(config: { sshTunnel?: ResolvedSshTunnel }): (string | undefined)[] {
  const ssh = config.sshTunnel;
  return ssh ? [ssh.password, ssh.privateKey, ssh.passphrase] : [];
}

/** `SHA256:…` as `ssh-keygen -l` prints it, for a host key as the server sent it. */
export function fingerprintOf(hostKey: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(hostKey).digest('base64').replace(/=+$/, '');
}

/**
 * Why a private key cannot be used (undefined when it can), naming the fields as the caller calls
 * them: the CLI names the key file it read the key from. The decrypted key is kept, so a later
 * connection does not decrypt it again.
 */
export function sshKeyProblem(privateKey: string, passphrase: string | undefined, names: { key: string; passphrase: string }): string | undefined {
  const parsed = parseKey(privateKey, passphrase);
  if (!(parsed instanceof Error)) return undefined;
  // ssh2's messages name the condition, never the key material.
  const message = parsed.message;
  if (/no passphrase given|encrypted/i.test(message) && passphrase === undefined) return `${names.passphrase} is required: ${names.key} is encrypted`;
  if (/passphrase|decrypt|integrity/i.test(message) && passphrase !== undefined) return `${names.passphrase} does not decrypt ${names.key}`;
  return `${names.key} is not a private key pg-actions can read (OpenSSH, PEM RSA/EC/Ed25519 or PuTTY .ppk, the whole text)`;
}

function parseKey(privateKey: string, passphrase: string | undefined): ParsedSshKey | Error {
  const id = createHash('sha256').update(privateKey).update('\0').update(passphrase ?? '').digest('base64');
  const known = parsedKeys.get(id);
  if (known) return known;
  const parsed = ssh2.utils.parseKey(privateKey, passphrase);
  if (parsed instanceof Error) return parsed;
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key.getPrivatePEM() === null) return new Error('not a private key');
  if (parsedKeys.size >= MAX_PARSED_KEYS) parsedKeys.delete(parsedKeys.keys().next().value!);
  parsedKeys.set(id, key);
  return key;
}
