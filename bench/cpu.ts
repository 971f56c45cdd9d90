/**
 * CPU time spent on a side, client and server together, for ratios that a busy machine does not
 * swamp: wall time on 2 cores shared with other work measures mostly waiting for a core, CPU time
 * measures the work. Node's own from process.cpuUsage(); the server's from /proc/<pid>/schedstat
 * (nanoseconds on a CPU) of the postmaster and every process it forked, plus any extra process
 * (PgBouncer). Linux only; elsewhere `cpuMeter` returns undefined and the rows say so.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CpuMeter {
  /**
   * Microseconds of CPU so far: [this process, the server (and extras)]. At the start of a
   * measured span Node's own time is read after scanning /proc, at its end before: the scan is
   * not counted.
   */
  read(at: 'start' | 'end'): [number, number];
}

function onCpuNs(pid: string): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return 0; // ended meanwhile
  }
}

/** Processes forked by `parent` (backends, background workers). */
function childrenOf(parent: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] === parent) found.push(pid);
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

export function cpuMeter(dataDir: string, extraPids: readonly number[] = []): CpuMeter | undefined {
  if (process.platform !== 'linux') return undefined;
  let postmaster: string;
  try {
    postmaster = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]!.trim();
    readFileSync(`/proc/${postmaster}/schedstat`, 'utf8');
  } catch {
    return undefined;
  }
  // The server's time is a running sum of each process's growth since it was last seen, not a sum
  // of the live processes' totals: a backend that ends (PgBouncer replaces its server connections)
  // then loses only its last few µs, instead of taking its whole past with it (negative figures).
  const seen = new Map<string, number>();
  let serverNs = 0;
  return {
    read(at) {
      const own = () => {
        const usage = process.cpuUsage();
        return usage.user + usage.system;
      };
      const before = at === 'end' ? own() : 0;
      const now = new Map<string, number>();
      for (const pid of [postmaster, ...childrenOf(postmaster), ...extraPids.map(String)]) now.set(pid, onCpuNs(pid));
      seen.forEach((_, pid) => now.has(pid) || seen.delete(pid));
      for (const [pid, ns] of now) {
        if (ns === 0) continue; // ended while being read: keep its last reading
        serverNs += ns - (seen.get(pid) ?? 0);
        seen.set(pid, ns);
      }
      return [at === 'end' ? before : own(), serverNs / 1000];
    },
  };
}
