/**
 * Runs the real `pg-actions` binary (node bin/pg-actions.js) as a subprocess, the way a user or a
 * script does, and remembers everything it printed so each test file can check that no password
 * ever reached stdout or stderr. (Not a test file: jest only collects *.test.ts.)
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverUrl, type TestDatabase } from '../harness/db.js';
import { cleanUpInOrder } from '../harness/clean-up.js';
import { expectNoSecretIn, watchSecret } from '../harness/secrets.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/pg-actions.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const printed: string[] = [];

/**
 * The passwords a run is given, so that what it prints can be checked for them: in a URL's
 * user-info, a keyword/value password=…, a JSON "password", or an @file.json holding one.
 */
function watchPasswordsIn(args: readonly string[], env: NodeJS.ProcessEnv = {}): void {
  watchSecret(env.PGPASSWORD);
  for (const arg of args) {
    const text = arg.startsWith('@') ? readIfFile(arg.slice(1)) : arg;
    for (const match of text.matchAll(/postgres(?:ql)?:\/\/[^:/@\s]*:([^@\s]*)@/gi)) watchSecret(decodeURIComponent(match[1]!));
    for (const match of text.matchAll(/\bpassword\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))/gi)) watchSecret(match[1] ?? match[2]);
    for (const match of text.matchAll(/"password"\s*:\s*"((?:[^"\\]|\\.)*)"/g)) watchSecret(JSON.parse(`"${match[1]!}"`) as string);
  }
}

function readIfFile(path: string): string {
  try {
    // Not /dev/zero, a FIFO or a huge file: the size-cap tests pass those on purpose.
    const stat = statSync(path);
    if (!stat.isFile() || stat.size > 1024 * 1024) return '';
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Runs `pg-actions …args`; never rejects: the exit code is part of the result. stdout and stderr are checked for secrets.
 * Killed after 60 s by default: tsx compiles the CLI on each run, 41-43 s for `--help` alone at load 38 on 2 cores.
 */
export async function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  watchPasswordsIn(args, options.env);
  const result = await new Promise<CliResult>((resolve, reject) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env: cliEnv(options.env), timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        printed.push(stdout, stderr);
        if (error && typeof error.code !== 'number') return reject(error);
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
      },
    );
  });
  expectNoSecretIn(undefined, result.stdout, result.stderr);
  return result;
}

/**
 * Runs `pg-actions …args` with stderr on a pseudo-terminal (util-linux script(1)), as a person at
 * a terminal sees it; stdout goes to a file. Returns what the terminal showed.
 */
export async function runCliOnTerminal(args: string[], stdoutFile: string): Promise<{ code: number; terminal: string }> {
  watchPasswordsIn(args);
  const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, BIN, ...args].map(quote).join(' ') + ` > ${quote(stdoutFile)}`;
  const result = await new Promise<{ code: number; terminal: string }>((resolve, reject) => {
    execFile('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: cliEnv(), timeout: 30_000 }, (error, terminal) => {
      printed.push(terminal);
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as number) : 0, terminal });
    });
  });
  expectNoSecretIn(undefined, result.terminal, readIfFile(stdoutFile));
  return result;
}

/** Starts `pg-actions …args` without waiting for it (for `serve`); expectNoPasswordPrinted checks what it printed. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; output: () => { stdout: string; stderr: string } } {
  watchPasswordsIn(args, env);
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cliEnv(env) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.on('close', () => printed.push(stdout, stderr));
  return { child, output: () => ({ stdout, stderr }) };
}

/** The child must not inherit the suite's PGPASSWORD (or any PG* variable) by accident. */
function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('PG')));
  return { ...env, ...extra };
}

/** postgres://user:password@host:port/<database> for a test database, with optional query parameters. */
/** The playground URL a started `serve` prints on stdout (polled until printed, or throws naming what it printed). */
export async function printedPlaygroundUrl(output: () => { stdout: string; stderr: string }, timeoutMs = 20_000): Promise<URL> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = /playground: (http:\/\/\S+)/.exec(output().stdout);
    if (match) return new URL(match[1]!);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`serve printed no URL: ${JSON.stringify(output())}`);
}

export function databaseUrl(db: TestDatabase, params: Record<string, string> = {}): string {
  const url = new URL(serverUrl());
  url.pathname = `/${db.name}`;
  url.search = '';
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return url.toString();
}

export function serverPassword(): string {
  return decodeURIComponent(new URL(serverUrl()).password);
}

/** Everything any CLI run printed so far, for the "no password anywhere" check. */
export function everythingPrinted(): string {
  return printed.join('\n');
}

/** stderr of a --json failure: exactly one JSON object { error: {…} } and nothing else. */
export function jsonError(stderr: string): Record<string, unknown> & { code: string; title: string; message: string; fixes: string[] } {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  const parsed = JSON.parse(lines[0]!) as { error: Record<string, unknown> & { code: string; title: string; message: string; fixes: string[] } };
  expect(Object.keys(parsed)).toEqual(['error']);
  return parsed.error;
}

/** Nothing any run printed (stdout, stderr, terminal) holds a password: the server's, or any a run was given. */
export function expectNoPasswordPrinted(): void {
  const all = everythingPrinted();
  expect(all.length).toBeGreaterThan(0);
  expectNoSecretIn(undefined, all);
}

/**
 * A temporary folder of this file (or describe) for the runs' files, as jest hooks: made in
 * beforeAll (before the file's own ones declared after the call); afterAll (30 s) runs
 * `beforeRemove` (what the runs used: sshd, a server), removes the folder, then checks that no
 * run printed a password (expectNoPasswordPrinted), each step even when the one before failed.
 * Returns a path in the folder: inFolder('keys', 'id_ed25519'); inFolder() is the folder.
 */
export function useCliFolder(prefix: string, options: { beforeRemove?: () => Promise<void> | void } = {}): (...parts: string[]) => string {
  let dir: string | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => cleanUpInOrder(() => options.beforeRemove?.(), () => dir && rmSync(dir, { recursive: true, force: true }), expectNoPasswordPrinted), 30_000);
  return (...parts) => {
    if (!dir) throw new Error(`useCliFolder('${prefix}'): the folder exists only from its beforeAll on`);
    return join(dir, ...parts);
  };
}
