/**
 * What a step costs its connection, not only its caller. With the early answer (connection/step-tail.ts,
 * off by default) a step answers once its outcome is final and finishes its session checks afterwards:
 * the time-to-result ratio (P1) then hides how long the connection stays busy. Two views that show it,
 * against raw pg, for the default step, the early-answer step and the step without the guard:
 *  - serial steps on a pool of ONE connection: each step waits for the previous one's tail;
 *  - throughput of 8 concurrent flows (each a loop of steps) on a pool of 10.
 * Sides take turns (rotating which goes first); ratios are medians of per-round ratios.
 */
import pg from 'pg';
import { runAction } from '../actions/index.js';
import type { ConnectionConfig } from '../connection/index.js';
import { poolSizing } from '../connection/pools.js';
import { sessionGuard } from '../connection/session-guard.js';
import { earlyAnswer } from '../connection/step-tail.js';
import { compareSides, switched, type SideFigures } from './sides.js';

const TEXT = 'SELECT id, name, email FROM bench_users WHERE id = $1';
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export interface BusyFigures {
  /** Serial steps on a pool of one: ms per step and ratio to raw pg on a pool of one. */
  single: Record<'baseline' | 'queryRows' | 'queryRowsEarly' | 'queryRowsUnguarded', SideFigures>;
  /** 8 concurrent flows on a pool of 10: steps per second, and raw pg's over ours (≥ 1: slower). */
  concurrent: { flows: number; perSecond: Record<'raw' | 'ours' | 'early' | 'unguarded', number>; ratio: Record<'ours' | 'early' | 'unguarded', number> };
}

export async function busyCost(config: ConnectionConfig, login: pg.PoolConfig, steps: number): Promise<BusyFigures> {
  const step = (connection: ConnectionConfig) => (id: number) =>
    runAction('query-rows', { connection, input: { query: TEXT, parameters: ['{{trigger.id}}'] }, context: { trigger: { id } } });
  const early = switched(earlyAnswer, true);
  const unguarded = switched(sessionGuard, false);
  // A pool of its own (another application name), made while the size is one.
  const one: ConnectionConfig = { ...config, applicationName: 'bench-pool-of-one' };
  const rawOne = new pg.Pool({ ...login, max: 1 });
  const rawTen = new pg.Pool({ ...login, max: 10 });
  poolSizing.size = 1;
  try {
    await step(one)(1);
  } finally {
    poolSizing.size = 10;
  }
  try {
    const { figures: single } = await compareSides(
      { baseline: (id: number) => rawOne.query(TEXT, [id]), queryRows: step(one), queryRowsEarly: early(step(one)), queryRowsUnguarded: unguarded(step(one)) },
      steps,
      undefined,
    );
    const flows = 8;
    const perFlow = 100;
    const throughput = async (work: (id: number) => Promise<unknown>) => {
      const started = performance.now();
      await Promise.all(Array.from({ length: flows }, async (_, f) => {
        for (let i = 0; i < perFlow; i++) await work(((f * perFlow + i) % 1000) + 1);
      }));
      return (flows * perFlow) / ((performance.now() - started) / 1000);
    };
    const sides: Record<'raw' | 'ours' | 'early' | 'unguarded', (id: number) => Promise<unknown>> = {
      raw: (id) => rawTen.query(TEXT, [id]),
      ours: step(config),
      early: early(step(config)),
      unguarded: unguarded(step(config)),
    };
    const rates: Record<keyof typeof sides, number[]> = { raw: [], ours: [], early: [], unguarded: [] };
    const names = Object.keys(sides) as (keyof typeof sides)[];
    const rounds = Math.max(5, Math.round(steps / (flows * perFlow)) * 2);
    for (let round = -1; round < rounds; round++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(round + 1 + k) % names.length]!;
        const rate = await throughput(sides[name]);
        if (round >= 0) rates[name].push(rate);
      }
    }
    const ratio = (name: 'ours' | 'early' | 'unguarded') => median(rates.raw.map((raw, r) => raw / rates[name][r]!));
    return {
      single,
      concurrent: {
        flows,
        perSecond: { raw: median(rates.raw), ours: median(rates.ours), early: median(rates.early), unguarded: median(rates.unguarded) },
        ratio: { ours: ratio('ours'), early: ratio('early'), unguarded: ratio('unguarded') },
      },
    };
  } finally {
    await rawOne.end();
    await rawTen.end();
  }
}
