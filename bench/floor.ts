/**
 * The floor under P1 (`BENCH_ONLY=floor`): raw pg only, no pg-actions code in the framed sides.
 * How much of the 10% that P1 allows does the least session-state framing cost by itself? The
 * one-row lookup alone (raw Pool.query, the baseline) against the same lookup with statements
 * pipelined around it in ONE round trip (one write, one Sync), as the extended protocol allows:
 *   - BEGIN READ ONLY … ROLLBACK: the least framing that undoes set_config(), SET ROLE, temp
 *     tables, LISTEN (unnamed, parsed every call as behind a pooler; and named, parsed once per
 *     connection as pg-actions does on its own sessions);
 *   - one more statement, `SELECT 1` (unnamed, described, its row read): the least any probe costs;
 *   - both: the least the guard's shape (framing + one probe) can cost.
 * The framed sides are pg's own Query (same Parse/Bind/Describe/Execute, same row parsing), with
 * the extra messages written before and after it and Sync last. The query-rows step, with and
 * without its guard, runs in the same rounds. Then the same through PgBouncer (transaction mode:
 * unnamed only; PgBouncer 1.18 does not keep named statements across transactions).
 */
import pg from 'pg';
import { runAction } from '../actions/index.js';
import { closeAll, type ConnectionConfig } from '../connection/index.js';
import { sessionGuard } from '../connection/session-guard.js';
import type { EmbeddedDatabase } from '../cli/embedded-database.js';
import { pgbouncerBinary, startPgBouncer } from '../test/harness/pgbouncer.js';
import { cpuMeter, type CpuMeter } from './cpu.js';
import { compareSides, switched, type SideFigures } from './sides.js';

const TEXT = 'SELECT id, name, email FROM bench_users WHERE id = $1';

/** A fixed statement without values; `name` makes it parsed once per connection, then only bound. */
interface Fixed { text: string; name?: string; describe?: boolean }

const BEGIN_RO: Fixed = { text: 'BEGIN READ ONLY' };
const ROLLBACK: Fixed = { text: 'ROLLBACK' };
const BEGIN_RO_NAMED: Fixed = { text: 'BEGIN READ ONLY', name: 'floor_begin_ro' };
const ROLLBACK_NAMED: Fixed = { text: 'ROLLBACK', name: 'floor_rollback' };
const SELECT_1: Fixed = { text: 'SELECT 1', describe: true };

/** pg's Connection methods the framing writes with (pg's published types leave them out). */
interface Wire {
  parse(query: { text: string; name?: string; types: number[] }): void;
  bind(config: { statement?: string; values: unknown[] }): void;
  describe(message: { type: 'P'; name: string }): void;
  execute(config: { portal: string; rows?: number }): void;
  sync(): void;
}

const parsedOn = new WeakMap<object, Set<string>>();

function writeFixed(con: Wire, sql: Fixed): void {
  if (sql.name) {
    let names = parsedOn.get(con);
    if (!names) parsedOn.set(con, (names = new Set()));
    if (!names.has(sql.name)) (con.parse({ text: sql.text, name: sql.name, types: [] }), names.add(sql.name));
  } else con.parse({ text: sql.text, types: [] });
  con.bind({ statement: sql.name ?? '', values: [] });
  if (sql.describe) con.describe({ type: 'P', name: '' });
  con.execute({ portal: '', rows: 0 });
}

const queryPrototype = pg.Query.prototype as unknown as { prepare(con: Wire): void };

/**
 * pg's own Query (Parse/Bind/Describe/Execute of the lookup, its rows parsed by pg's Result) with
 * `before` written ahead of it and `after` behind it, then one Sync: one write, one round trip.
 */
class FramedQuery extends pg.Query {
  constructor(text: string, values: unknown[], private readonly before: readonly Fixed[], private readonly after: readonly Fixed[]) {
    super(text, values);
  }

  prepare(con: Wire): void {
    for (const sql of this.before) writeFixed(con, sql);
    queryPrototype.prepare.call(this, con);
  }

  /** Called by prepare() after the lookup's Execute: the framing's tail, then Sync. */
  _getRows(con: Wire): void {
    con.execute({ portal: '', rows: 0 });
    for (const sql of this.after) writeFixed(con, sql);
    con.sync();
  }
}

/** The lookup through `pool` framed by `before`/`after`; resolves to the lookup's rows. */
function framed(pool: pg.Pool, before: readonly Fixed[], after: readonly Fixed[]) {
  return async (id: number) => {
    const results = (await pool.query(new FramedQuery(TEXT, [id], before, after) as unknown as string)) as unknown as pg.QueryResult | pg.QueryResult[];
    return Array.isArray(results) ? results[before.length]! : results;
  };
}

/** Fails loudly if a framed side does not return the lookup's row (the bench must measure working code). */
async function check(sides: Record<string, (id: number) => Promise<unknown>>): Promise<void> {
  for (const [name, side] of Object.entries(sides)) {
    const result = (await side(7)) as pg.QueryResult;
    if (result.rows?.length !== 1 || result.rows[0].id !== 7) throw new Error(`floor side ${name} did not return the row`);
  }
}

export type FloorFigures = Record<string, SideFigures>;

/** Directly on the server: the raw floors and the query-rows step in the same rounds. */
export async function p1Floor(config: ConnectionConfig, raw: pg.Pool, steps: number, meter: CpuMeter | undefined): Promise<FloorFigures> {
  const step = (id: number) => runAction('query-rows', { connection: config, input: { query: TEXT, parameters: ['{{trigger.id}}'] }, context: { trigger: { id } } });
  const floors = {
    pipelinedAlone: framed(raw, [], []),
    readOnlyUnnamed: framed(raw, [BEGIN_RO], [ROLLBACK]),
    readOnlyNamed: framed(raw, [BEGIN_RO_NAMED], [ROLLBACK_NAMED]),
    plusSelect1: framed(raw, [], [SELECT_1]),
    readOnlyNamedPlusSelect1: framed(raw, [BEGIN_RO_NAMED], [SELECT_1, ROLLBACK_NAMED]),
  };
  await check(floors);
  const { figures } = await compareSides(
    {
      baseline: (id: number) => raw.query(TEXT, [id]),
      ...floors,
      queryRowsStep: step,
      queryRowsStepUnguarded: switched(sessionGuard, false)(step),
    },
    steps,
    meter,
  );
  return figures;
}

/** The same through a real PgBouncer in transaction mode (unnamed statements only), or why not. */
export async function p1FloorPgBouncer(db: EmbeddedDatabase, steps: number): Promise<FloorFigures | string> {
  if (!pgbouncerBinary()) return 'pgbouncer not installed (apt-get install pgbouncer): the pooler floor rows were not measured';
  const bouncer = await startPgBouncer({ server: db, mode: 'transaction', poolSize: 3 });
  const config: ConnectionConfig = { ...bouncer.config('postgres'), pooler: 'transaction' };
  const raw = new pg.Pool({ host: bouncer.host, port: bouncer.port, user: db.user, password: db.password, database: 'postgres', max: 10 });
  try {
    const floors = {
      readOnlyUnnamed: framed(raw, [BEGIN_RO], [ROLLBACK]),
      plusSelect1: framed(raw, [], [SELECT_1]),
      readOnlyUnnamedPlusSelect1: framed(raw, [BEGIN_RO], [SELECT_1, ROLLBACK]),
    };
    await check(floors);
    const { figures } = await compareSides(
      {
        baseline: (id: number) => raw.query(TEXT, [id]),
        ...floors,
        queryRowsStep: (id: number) => runAction('query-rows', { connection: config, input: { query: TEXT, parameters: ['{{trigger.id}}'] }, context: { trigger: { id } } }),
      },
      steps,
      cpuMeter(db.dataDir, bouncer.pid ? [bouncer.pid] : []),
    );
    return figures;
  } finally {
    await raw.end();
    await closeAll();
    await bouncer.dispose();
  }
}

/** Table rows for run.ts: wall ratio, CPU ratio, CPU per call, and the points over the baseline. */
export function floorRows(figures: FloorFigures, through: string): string[][] {
  const labels: Record<string, string> = {
    baseline: `one-row lookup, raw pg Pool.query${through} (floor baseline)`,
    pipelinedAlone: `floor: the lookup as pg's Query subclass, nothing added (harness check, expect 1.00×)`,
    readOnlyUnnamed: `floor: BEGIN READ ONLY + lookup + ROLLBACK, one round trip, unnamed${through}`,
    readOnlyNamed: `floor: BEGIN READ ONLY + lookup + ROLLBACK, one round trip, named (parsed once)`,
    plusSelect1: `floor: lookup + SELECT 1 (the least a probe costs), one round trip${through}`,
    readOnlyNamedPlusSelect1: `floor: named BEGIN READ ONLY + lookup + SELECT 1 + ROLLBACK (the guard's least shape)`,
    readOnlyUnnamedPlusSelect1: `floor: BEGIN READ ONLY + lookup + SELECT 1 + ROLLBACK, unnamed${through}`,
    queryRowsStep: `query-rows step (same rounds)${through}`,
    queryRowsStepUnguarded: `query-rows step, session-state guard off (same rounds)`,
  };
  return Object.entries(figures).map(([name, side]) => {
    const cpu = side.cpu;
    const wall = `${side.wallRatio.toFixed(2)}×${cpu ? ` (CPU ${cpu.ratio.toFixed(2)}×)` : ''}`;
    const signed = (ratio: number) => `${ratio >= 1 ? '+' : '−'}${Math.abs((ratio - 1) * 100).toFixed(0)}`;
    const points = name === 'baseline' ? '' : `${signed(side.wallRatio)} points wall${cpu ? `, ${signed(cpu.ratio)} CPU` : ''}; `;
    const perCall = cpu ? `CPU/call ${cpu.client.toFixed(0)} µs Node + ${cpu.server.toFixed(0)} µs server` : '';
    return [labels[name] ?? name, `${side.ms.toFixed(3)} ms`, name === 'baseline' ? '1.00×' : wall, `${points}${perCall}`];
  });
}
