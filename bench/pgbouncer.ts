/**
 * A query-rows step through a real PgBouncer in transaction pooling against raw pg Pool.query
 * through the same PgBouncer: what pg-actions adds where most flow authors connect. Sides take
 * turns in blocks (rotating which goes first); the ratio is the median of per-round ratios.
 * Skipped, with a line saying so, when pgbouncer is not installed.
 */
import pg from 'pg';
import { runAction } from '../actions/index.js';
import { closeAll, execute, type ConnectionConfig } from '../connection/index.js';
import type { EmbeddedDatabase } from '../cli/embedded-database.js';
import { pgbouncerBinary, startPgBouncer } from '../test/harness/pgbouncer.js';

export interface PoolerOverhead {
  baseline: number;
  queryRows: number;
  /** execute() of the same lookup, not read-only: the step that needs the full reset behind a transaction pooler. */
  execute: number;
  calls: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export async function pgbouncerOverhead(db: EmbeddedDatabase, steps: number): Promise<PoolerOverhead | string> {
  if (!pgbouncerBinary()) return 'pgbouncer not installed (apt-get install pgbouncer): the pooler rows were not measured';
  const bouncer = await startPgBouncer({ server: db, mode: 'transaction', poolSize: 3 });
  const config: ConnectionConfig = { ...bouncer.config('postgres'), pooler: 'transaction' };
  const raw = new pg.Pool({ host: bouncer.host, port: bouncer.port, user: db.user, password: db.password, database: 'postgres', max: 10 });
  try {
    const text = 'SELECT id, name, email FROM bench_users WHERE id = $1';
    const input = { query: text, parameters: ['{{trigger.id}}'] };
    const sides = {
      baseline: (id: number) => raw.query(text, [id]),
      queryRows: (id: number) => runAction('query-rows', { connection: config, input, context: { trigger: { id } } }),
      execute: (id: number) => execute(config, { text, values: [id] }),
    };
    type Side = keyof typeof sides;
    const names = Object.keys(sides) as Side[];
    const BLOCK = 100;
    const rounds = Math.max(5, Math.round(steps / BLOCK));
    const means = { baseline: [] as number[], queryRows: [] as number[], execute: [] as number[] };
    for (let round = -3; round < rounds; round++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(round + 3 + k) % names.length]!;
        const started = performance.now();
        for (let i = 0; i < BLOCK; i++) await sides[name](((round * BLOCK + i) % 1000 + 1000) % 1000 + 1);
        if (round >= 0) means[name].push((performance.now() - started) / BLOCK); // rounds -3..-1 warm up
      }
    }
    return {
      baseline: median(means.baseline),
      queryRows: median(means.queryRows.map((mean, r) => mean / means.baseline[r]!)),
      execute: median(means.execute.map((mean, r) => mean / means.baseline[r]!)),
      calls: rounds * BLOCK,
    };
  } finally {
    await raw.end();
    await closeAll();
    await bouncer.dispose();
  }
}
