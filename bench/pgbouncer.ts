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
import { earlyAnswer } from '../connection/step-tail.js';
import { cpuMeter } from './cpu.js';
import { compareSides, switched, type SideFigures } from './sides.js';

export interface PoolerOverhead {
  figures: Record<'baseline' | 'queryRows' | 'queryRowsEarly' | 'execute', SideFigures>;
  calls: number;
}


export async function pgbouncerOverhead(db: EmbeddedDatabase, steps: number): Promise<PoolerOverhead | string> {
  if (!pgbouncerBinary()) return 'pgbouncer not installed (apt-get install pgbouncer): the pooler rows were not measured';
  const bouncer = await startPgBouncer({ server: db, mode: 'transaction', poolSize: 3 });
  const config: ConnectionConfig = { ...bouncer.config('postgres'), pooler: 'transaction' };
  const raw = new pg.Pool({ host: bouncer.host, port: bouncer.port, user: db.user, password: db.password, database: 'postgres', max: 10 });
  try {
    const text = 'SELECT id, name, email FROM bench_users WHERE id = $1';
    const input = { query: text, parameters: ['{{trigger.id}}'] };
    const meter = cpuMeter(db.dataDir, bouncer.pid ? [bouncer.pid] : []);
    return await compareSides(
      {
        baseline: (id: number) => raw.query(text, [id]),
        queryRows: (id: number) => runAction('query-rows', { connection: config, input, context: { trigger: { id } } }),
        // Answering at the statement's result, the pooler check and ROLLBACK after (off by default).
        queryRowsEarly: switched(earlyAnswer, true)((id: number) => runAction('query-rows', { connection: config, input, context: { trigger: { id } } })),
        execute: (id: number) => execute(config, { text, values: [id] }),
      },
      steps,
      meter,
    );
  } finally {
    await raw.end();
    await closeAll();
    await bouncer.dispose();
  }
}
