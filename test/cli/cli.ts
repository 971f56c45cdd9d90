/**
 * Runs the real `pg-actions` binary (node bin/pg-actions.js) as a subprocess, the way a user or a
 * script does, and remembers everything it printed so each test file can check that no password
 * ever reached stdout or stderr. (Not a test file: jest only collects *.test.ts.)
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { serverUrl, type TestDatabase } from '../harness/db.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/pg-actions.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const printed: string[] = [];

/** Runs `pg-actions …args`; never rejects: the exit code is part of the result. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env: cliEnv(options.env), timeout: options.timeoutMs ?? 20_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        printed.push(stdout, stderr);
        if (error && typeof error.code !== 'number') return reject(error);
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
      },
    );
  });
}

/**
 * Runs `pg-actions …args` with stderr on a pseudo-terminal (util-linux script(1)), as a person at
 * a terminal sees it; stdout goes to a file. Returns what the terminal showed.
 */
export function runCliOnTerminal(args: string[], stdoutFile: string): Promise<{ code: number; terminal: string }> {
  const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, BIN, ...args].map(quote).join(' ') + ` > ${quote(stdoutFile)}`;
  return new Promise((resolve, reject) => {
    execFile('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: cliEnv(), timeout: 30_000 }, (error, terminal) => {
      printed.push(terminal);
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as number) : 0, terminal });
    });
  });
}

/** Starts `pg-actions …args` without waiting for it (for `serve`). */
export function startCli(args: string[]): { child: ChildProcess; output: () => { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cliEnv() });
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

export function expectNoPasswordPrinted(): void {
  const password = serverPassword();
  const all = everythingPrinted();
  expect(all.length).toBeGreaterThan(0);
  if (password) {
    expect(all).not.toContain(password);
    expect(all).not.toContain(encodeURIComponent(password));
  }
}
