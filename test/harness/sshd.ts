/**
 * A real OpenSSH server (Debian's /usr/sbin/sshd) on a free loopback port, as the bastion of SSH
 * tunnel tests: its own sshd_config, a host key made by ssh-keygen in a temporary directory,
 * password and public-key logins for a test user. sshd checks passwords against the system's
 * account database, so the harness (as root) creates a no-shell system user once, gives it a
 * random password while the suite runs (one per run, from the global setup, so that test files
 * running at once agree on it), and the global teardown locks it again. Logs at DEBUG1 on stderr,
 * where sshd names every forwarded connection (server_request_direct_tcpip … target host port).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { ConnectionConfig } from '../../connection/index.js';
import { describeNeeding } from './not-run.js';
import { waitForPort } from './pgbouncer.js';
import { watchSecret } from './secrets.js';
import { freePort } from './servers.js';

export type SshTunnelConfig = NonNullable<ConnectionConfig['sshTunnel']>;

export interface Sshd {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** An Ed25519 key in authorized_keys, encrypted with `passphrase` (OpenSSH format). */
  readonly encryptedKey: string;
  readonly passphrase: string;
  /** An ECDSA key in authorized_keys, PEM, not encrypted. */
  readonly plainKey: string;
  /** The host key's fingerprint as `ssh-keygen -l` prints it (SHA256:…). */
  readonly fingerprint: string;
  /** sshTunnel for this server, logging in with the password unless `extra` says otherwise. */
  tunnel(extra?: Partial<SshTunnelConfig>): SshTunnelConfig;
  /** Process ids of the per-connection sshd children (one per SSH connection). */
  sessions(): number[];
  /** Kills every SSH connection's sshd child: the client sees its connection drop. */
  killSessions(): number;
  /** Forwarded connections sshd opened so far to `port` (counted from its log). */
  forwardsTo(port: number): number;
  log(): string;
  dispose(): Promise<void>;
}

/**
 * One test user per checkout: every run sets its own password, so two checkouts' runs at once
 * (developers side by side on one machine) would otherwise lock each other out.
 */
export const TEST_USER = `pgactions-ssh-${createHash('sha256').update(import.meta.url).digest('hex').slice(0, 8)}`;
const CANDIDATES = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'];

/** The sshd binary (PG_TEST_SSHD names one; `none` acts as if it were absent), or undefined. */
export function sshdBinary(): string | undefined {
  const chosen = process.env.PG_TEST_SSHD;
  if (chosen) return chosen === 'none' || !existsSync(chosen) ? undefined : chosen;
  return CANDIDATES.find((path) => existsSync(path));
}

/** Why sshd cannot run here (not installed, not root), or undefined when it can. */
export function sshdMissing(): string | undefined {
  if (!sshdBinary()) return 'the OpenSSH server (`sshd`) is not installed. Install it (Debian/Ubuntu: apt-get install openssh-server) to run them';
  if (userInfo().uid !== 0) return 'they start sshd with a test user and password, which needs root (sshd checks passwords against /etc/shadow). Run `npm test` as root (as .ci/run does) to run them';
  return undefined;
}

/** `describe` for SSH tunnel tests: skipped with a loud line when sshd cannot run here, failing when CI is set. */
export function describeWithSshd(name: string, body: () => void): void {
  const why = sshdMissing();
  describeNeeding('sshd', why && `SSH tunnel tests did not run: ${why}; with CI set they fail instead.`, name, body);
}

/** The run's password (the global setup sets it for every worker), or one for this process alone. */
const password = (process.env.PG_TEST_SSH_PASSWORD ??= randomBytes(18).toString('base64url'));

/** The test user exists and logs in with the run's password. */
async function unlockTestUser(): Promise<string> {
  if (spawnSync('id', [TEST_USER], { stdio: 'ignore' }).status !== 0) {
    spawnSync('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', TEST_USER], { stdio: 'pipe' });
  }
  // Another test file may hold the lock on /etc/shadow for a moment: try again.
  for (let attempt = 0; ; attempt++) {
    const result = spawnSync('chpasswd', { input: `${TEST_USER}:${password}\n`, stdio: ['pipe', 'pipe', 'pipe'] });
    if (result.status === 0) return password;
    if (attempt >= 20) throw new Error(`chpasswd failed: ${result.stderr.toString()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** After the suite (global teardown): the test user can no longer log in. */
export function lockSshTestUser(): void {
  if (userInfo().uid === 0 && spawnSync('id', [TEST_USER], { stdio: 'ignore' }).status === 0) spawnSync('usermod', ['--lock', TEST_USER], { stdio: 'ignore' });
}

function keygen(dir: string, name: string, args: string[]): { key: string; fingerprint: string } {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', ...args, '-C', `pg-actions-test-${name}`, '-f', path], { stdio: 'pipe' });
  const printed = execFileSync('ssh-keygen', ['-l', '-f', `${path}.pub`]).toString();
  return { key: readFileSync(path, 'utf8'), fingerprint: /(SHA256:\S+)/.exec(printed)![1]! };
}

/** Starts sshd; `settings` are added to its sshd_config (e.g. { AllowTcpForwarding: 'no' }). */
export async function startSshd(options: { settings?: Record<string, string> } = {}): Promise<Sshd> {
  const binary = sshdBinary();
  const why = sshdMissing();
  if (!binary || why) throw new Error(`sshd cannot run: ${why}`);
  // sshd as root wants its privilege separation directory (Debian's service creates it at boot).
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const userPassword = await unlockTestUser();
  const dir = mkdtempSync(join(tmpdir(), 'pg-actions-sshd-'));
  // sshd reads authorized_keys as the user logging in.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const hostKey = keygen(dir, 'host_ed25519_key', ['-t', 'ed25519', '-N', '']);
  const passphrase = `pass ${randomBytes(9).toString('base64url')}`;
  const encrypted = keygen(dir, 'user_ed25519', ['-t', 'ed25519', '-N', passphrase]);
  const plain = keygen(dir, 'user_ecdsa', ['-t', 'ecdsa', '-m', 'PEM', '-N', '']);
  writeFileSync(join(dir, 'authorized_keys'), ['user_ed25519', 'user_ecdsa'].map((name) => readFileSync(join(dir, `${name}.pub`), 'utf8')).join(''), { mode: 0o644 });
  const settings: Record<string, string> = {
    ListenAddress: '127.0.0.1',
    Port: String(port),
    HostKey: join(dir, 'host_ed25519_key'),
    PidFile: 'none',
    // authorized_keys lives in a temporary directory under /tmp (mode 1777), which StrictModes refuses.
    StrictModes: 'no',
    UsePAM: 'no',
    PasswordAuthentication: 'yes',
    KbdInteractiveAuthentication: 'no',
    PubkeyAuthentication: 'yes',
    AuthorizedKeysFile: join(dir, 'authorized_keys'),
    AllowUsers: TEST_USER,
    AllowTcpForwarding: 'yes',
    PermitTTY: 'no',
    X11Forwarding: 'no',
    AllowAgentForwarding: 'no',
    MaxStartups: '100',
    LogLevel: 'DEBUG1',
    ...options.settings,
  };
  const configPath = join(dir, 'sshd_config');
  writeFileSync(configPath, Object.entries(settings).map(([key, value]) => `${key} ${value}`).join('\n') + '\n');
  // -D: foreground, -e: log to stderr.
  const child: ChildProcess = spawn(binary, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPort(port, child);
  } catch (error) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`sshd did not start: ${(error as Error).message}\n${stderr}`);
  }
  for (const secret of [userPassword, passphrase, encrypted.key, plain.key]) watchSecret(secret);
  const childrenOf = (pid: number): number[] => {
    const path = `/proc/${pid}/task/${pid}/children`;
    return existsSync(path) ? readFileSync(path, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) : [];
  };
  const sessions = () => childrenOf(child.pid!);
  // Each connection is a privileged monitor and its unprivileged child: both hold the TCP connection.
  const killTree = (pid: number): void => {
    for (const grandchild of childrenOf(pid)) killTree(grandchild);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  return {
    host: '127.0.0.1',
    port,
    user: TEST_USER,
    password: userPassword,
    encryptedKey: encrypted.key,
    passphrase,
    plainKey: plain.key,
    fingerprint: hostKey.fingerprint,
    tunnel: (extra) => ({ host: '127.0.0.1', port, user: TEST_USER, password: userPassword, ...extra }),
    sessions,
    killSessions() {
      const pids = sessions();
      for (const pid of pids) killTree(pid);
      return pids.length;
    },
    forwardsTo: (target) => stderr.split('\n').filter((line) => new RegExp(`server_request_direct_tcpip: .*target \\S+ port ${target}\\b`).test(line)).length,
    log: () => stderr,
    async dispose() {
      for (const pid of sessions()) killTree(pid);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
