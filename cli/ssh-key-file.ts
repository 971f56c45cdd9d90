/**
 * SSH private keys read from files, by the command only: it runs on the machine that holds them
 * (~/.ssh/id_ed25519), whereas the library, inside a flow builder, never reads a file a
 * connection names. A key file comes from --ssh-key-file or from sshTunnel.privateKeyFile of
 * --connection @file.json (schemas/connection-file.schema.json). It is read once, bounded, and
 * checked (and decrypted) before any connection; each failure is an INVALID_INPUT naming where the
 * path came from. Neither the key nor its passphrase is ever echoed.
 */
import { lstatSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { sshKeyProblem } from '../connection/ssh-config.js';
import connectionSchema from '../schemas/connection.schema.json' with { type: 'json' };
import { readAtMost } from './bounded-read.js';
import { usageError } from './failures.js';
import { rememberSecret } from './redact.js';

export interface SshKeyFile {
  /** The path as the user wrote it. */
  written: string;
  /** Where it was given, for messages: `--ssh-key-file`, `connection.sshTunnel.privateKeyFile (--connection @prod.json)`. */
  origin: string;
  /** The folder a relative path is read from: the connection file's, or the current one. */
  base: string;
}

/** Far above any real key (an RSA 16384-bit key is 12 KiB): a bigger file is not a key. */
const MAX_KEY_BYTES = 1024 * 1024;
const PRIVATE_KEY = new RegExp(connectionSchema.properties.sshTunnel.properties.privateKey.pattern);
const PUBLIC_KEY = /^(ssh-|ecdsa-sha2-|sk-)\S+ AAAA|-----BEGIN (SSH2 |RSA )?PUBLIC KEY-----|---- BEGIN SSH2 PUBLIC KEY ----/m;
const REASONS: Record<string, string> = {
  ENOENT: 'does not exist',
  EACCES: 'cannot be read by this user (permission denied)',
  EISDIR: 'is a folder, not a key file',
  ENOTDIR: 'is not a path to a file (a part of it is not a folder)',
};

/**
 * What a message may say of the value given: the path itself only when something is there (a real
 * path on disk is not a secret). A value that names nothing may be a passphrase or a key's line put
 * in this field by mistake, and no look of the text tells those from a mistyped path (REVIEW5 R104,
 * REVIEW6 R113): only the nearest folder on the path that exists is shown then.
 */
function shownValue(file: SshKeyFile, path: string): { shown: string; exists: boolean } {
  if (existsOnDisk(path)) return { shown: path === file.written ? path : `${file.written} (${path})`, exists: true };
  let folder = dirname(path);
  while (!existsOnDisk(folder) && dirname(folder) !== folder) folder = dirname(folder);
  return { shown: `the path given (not shown: nothing is there, and it may be a secret put in the wrong field; the nearest existing folder on it is ${folder})`, exists: false };
}

function existsOnDisk(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function isSpecialFile(path: string): boolean {
  try {
    const stat = statSync(path);
    return !stat.isFile() && !stat.isDirectory();
  } catch {
    return false; // not there or not reachable: the read says which
  }
}
const WHICH_KEY = 'Give the path of your SSH private key file, e.g. ~/.ssh/id_ed25519 (in a connection file a relative path is relative to that file\'s folder).';

/** The absolute path: `~` and `~/…` from the home directory, a relative path from `base`. */
export function keyFilePath(file: SshKeyFile): string {
  const written = file.written;
  if (written === '~' || written.startsWith('~/')) return join(homedir(), written.slice(1));
  return isAbsolute(written) ? written : resolve(file.base, written);
}

/** The key text of the file (remembered as a secret), or a usage error naming the field. */
export function readSshKeyFile(file: SshKeyFile): string {
  if (PRIVATE_KEY.test(file.written) || file.written.includes('\n')) {
    // Key text where the path goes: say so without printing it.
    throw usageError(`${file.origin} holds the text of a key, not the path of a key file`, [
      'Put the key text in sshTunnel.privateKey, or the path of the key file (e.g. ~/.ssh/id_ed25519) in sshTunnel.privateKeyFile / --ssh-key-file.',
    ]);
  }
  const path = keyFilePath(file);
  const { shown, exists } = shownValue(file, path);
  // A FIFO, socket or device would block the read with signals unanswered (REVIEW5 R105).
  if (isSpecialFile(path)) throw usageError(`${file.origin}: ${shown} is not a regular file (a FIFO, socket or device)`, [WHICH_KEY]);
  let text: string | undefined;
  try {
    text = readAtMost(path, MAX_KEY_BYTES);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    const fix = code === 'EACCES' ? `Let the user running pg-actions read it (as its owner: chmod 600 ${exists ? path : '<key file>'}).` : WHICH_KEY;
    throw usageError(`${file.origin}: ${shown} ${REASONS[code] ?? 'cannot be read'} (${code})`, [fix]);
  }
  if (text !== undefined && PRIVATE_KEY.test(text)) {
    rememberSecret(text);
    return text;
  }
  if (text !== undefined && PUBLIC_KEY.test(text)) {
    throw usageError(`${file.origin}: ${shown} is a public key; the private key is needed to log in`, [
      `Give the private key file: the same path without .pub (${path.replace(/\.pub$/, '')}), whose public half is in the SSH server's authorized_keys.`,
    ]);
  }
  throw usageError(`${file.origin}: ${shown} is not a private key file (OpenSSH, PEM RSA/EC/Ed25519 or PuTTY .ppk)`, [WHICH_KEY]);
}

/** A key read from a file that cannot be used as it is (garbled, encrypted without passphrase, wrong passphrase). */
export function checkSshKeyFromFile(privateKey: string, passphrase: string | undefined, names: { key: string; passphrase: string }): void {
  const problem = sshKeyProblem(privateKey, passphrase, names);
  if (problem === undefined) return;
  throw usageError(problem, [
    passphrase === undefined
      ? `Give the key's passphrase in a variable (--ssh-passphrase-env VAR), or as sshTunnel.passphrase of the connection file.`
      : /does not decrypt/.test(problem)
        ? 'Check the passphrase: `ssh-keygen -y -f <key file>` asks for it and prints the public key when it is right.'
        : WHICH_KEY,
  ]);
}
