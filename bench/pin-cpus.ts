/**
 * Puts Node on CPU 0 and the whole PostgreSQL server (postmaster, running processes, and every
 * backend forked later) on CPU 1. Unpinned, each connection's backend lands wherever the
 * scheduler puts it, and on a 2-core VM that placement alone moved a side by up to ±30% between
 * runs, more than the differences being measured. Linux with `taskset` only; elsewhere, or with
 * BENCH_PIN=0, it does nothing and says so.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

export function pinCpus(dataDir: string): string {
  if (process.env.BENCH_PIN === '0') return 'not pinned (BENCH_PIN=0)';
  if (process.platform !== 'linux' || availableParallelism() < 2) return 'not pinned (needs Linux and 2 CPUs)';
  try {
    const postmaster = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]!.trim();
    const children = execFileSync('pgrep', ['-P', postmaster], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
    for (const pid of [postmaster, ...children]) execFileSync('taskset', ['-a', '-p', '-c', '1', pid], { stdio: 'ignore' });
    execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
    return 'Node pinned to CPU 0, PostgreSQL to CPU 1';
  } catch (error) {
    return `not pinned (${(error as Error).message.split('\n')[0]})`;
  }
}
