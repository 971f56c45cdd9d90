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
  // A backend that ended between two readings loses its CPU time: the sides keep their sessions, so it is rare.
  return {
    read(at) {
      const own = () => {
        const usage = process.cpuUsage();
        return usage.user + usage.system;
      };
      const before = at === 'end' ? own() : 0;
      let serverNs = onCpuNs(postmaster);
      for (const pid of childrenOf(postmaster)) serverNs += onCpuNs(pid);
      for (const pid of extraPids) serverNs += onCpuNs(String(pid));
      return [at === 'end' ? before : own(), serverNs / 1000];
    },
  };
}
