/**
 * One-row sides compared with a baseline: the sides take turns in blocks of BLOCK calls (rotating
 * which goes first), and each block's mean is divided by the baseline block of the same round;
 * the wall ratio is the median of those per-round ratios. Call-by-call medians proved bimodal on
 * a 2-core VM (which core the backend lands on); block means within a round cancel that and slow
 * drift alike. With a CPU meter, the CPU ratio is each side's CPU time (client + server, summed
 * over all rounds) over the baseline's: on a machine busy with other work, wall time mostly
 * measures waiting for a core, CPU time the work itself.
 */
import type { CpuMeter } from './cpu.js';

const BLOCK = 100;

/** Per switch: how many calls hold it, and its value before the first of them. */
const holders = new WeakMap<{ enabled: boolean }, { count: number; was: boolean }>();

/**
 * `work` run with a switch (sessionGuard, earlyAnswer) set to `value`, put back when the last call
 * holding it ends. Counted, not saved per call: concurrent calls (busy.ts's 8 flows) each saved the
 * value another had just set and put that back, which left the guard off and the early answer on
 * for every later section of the bench.
 */
export const switched = (flag: { enabled: boolean }, value: boolean) => (work: (id: number) => Promise<unknown>) => async (id: number) => {
  const held = holders.get(flag) ?? { count: 0, was: flag.enabled };
  if (held.count++ === 0) held.was = flag.enabled;
  holders.set(flag, held);
  flag.enabled = value;
  try {
    return await work(id);
  } finally {
    if (--held.count === 0) flag.enabled = held.was;
  }
};
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export interface SideFigures {
  /** Median of per-round block means, ms per call. */
  ms: number;
  wallRatio: number;
  /** CPU µs per call (this process, the server) and the ratio of their sum to the baseline's; undefined without a meter. */
  cpu?: { client: number; server: number; ratio: number };
}

export async function compareSides<S extends string>(
  sides: Record<S | 'baseline', (id: number) => Promise<unknown>>,
  steps: number,
  meter: CpuMeter | undefined,
): Promise<{ figures: Record<S | 'baseline', SideFigures>; calls: number }> {
  type Side = S | 'baseline';
  const names = Object.keys(sides) as Side[];
  const rounds = Math.max(5, Math.round(steps / BLOCK));
  const means = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Side, number[]>;
  const cpu = Object.fromEntries(names.map((n) => [n, { client: 0, server: 0 }])) as Record<Side, { client: number; server: number }>;
  for (let round = -3; round < rounds; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + 3 + k) % names.length]!;
      const before = meter?.read('start');
      const started = performance.now();
      for (let i = 0; i < BLOCK; i++) await sides[name](((round * BLOCK + i) % 1000 + 1000) % 1000 + 1);
      const elapsed = performance.now() - started;
      const after = meter?.read('end');
      if (round < 0) continue; // rounds -3..-1 warm up
      means[name].push(elapsed / BLOCK);
      if (before && after) {
        cpu[name].client += after[0] - before[0];
        cpu[name].server += after[1] - before[1];
      }
    }
  }
  const calls = rounds * BLOCK;
  const baseCpu = cpu.baseline.client + cpu.baseline.server;
  const figures = Object.fromEntries(
    names.map((name) => [
      name,
      {
        ms: median(means[name]),
        wallRatio: median(means[name].map((mean, r) => mean / means.baseline[r]!)),
        cpu: meter ? { client: cpu[name].client / calls, server: cpu[name].server / calls, ratio: (cpu[name].client + cpu[name].server) / baseCpu } : undefined,
      },
    ]),
  ) as Record<Side, SideFigures>;
  return { figures, calls };
}
