/**
 * `npm run bench`: ratios from one run against an embedded PostgreSQL, baselines measured in the
 * same run. Figures are printed, not asserted: the tests prove behaviour, this shows cost.
 */
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { closeAll, execute, PgActionsError, type ConnectionConfig } from '../connection/index.js';
import { sessionGuard } from '../connection/session-guard.js';
import { earlyAnswer } from '../connection/step-tail.js';
import { runAction } from '../actions/index.js';
import { bindSqlTemplates, parsePg } from '../templating/index.js';
import { startEmbeddedDatabase } from '../cli/embedded-database.js';
import { busyCost } from './busy.js';
import { cdcBench } from './cdc.js';
import { pgbouncerOverhead } from './pgbouncer.js';
import { pinCpus } from './pin-cpus.js';
import { cpuMeter, type CpuMeter } from './cpu.js';
import { floorRows, p1Floor, p1FloorPgBouncer } from './floor.js';
import { compareSides, switched, type SideFigures } from './sides.js';
import { triggerBench } from './triggers.js';
import { tableSyncBench } from './table-sync.js';

const STEPS = Number(process.env.BENCH_STEPS ?? 3000);
/** BENCH_ONLY=steps,cap,pgbouncer runs those sections only (steps busy parser cancel cap hostile connect bulk pgbouncer floor triggers sync cdc). */
const ONLY = process.env.BENCH_ONLY?.split(',').map((name) => name.trim());
const runs = (section: string) => !ONLY || ONLY.includes(section);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ms = (value: number) => `${value.toFixed(3)} ms`;
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;
const gc = () => (globalThis as { gc?: () => void }).gc?.();

/** Per-step cost of each side against raw Pool.query, in blocks (bench/sides.ts): wall and CPU ratios. */
async function stepOverhead(config: ConnectionConfig, raw: pg.Pool, meter: CpuMeter | undefined) {
  const text = 'SELECT id, name, email FROM bench_users WHERE id = $1';
  const stepInput = { query: text, parameters: ['{{trigger.id}}'] };
  const sqlTemplateInput = { query: 'SELECT id, name, email FROM bench_users WHERE id = {{trigger.id}}' };
  return await compareSides(
    {
      baseline: (id: number) => raw.query(text, [id]),
      ours: (id: number) => execute(config, { text, values: [id] }),
      oursReadOnly: (id: number) => execute(config, { text, values: [id], readOnly: true }),
      // A flow step as a host runs it: validated input, {{ }} rendered from trigger data, READ ONLY.
      queryRowsStep: (id: number) => runAction('query-rows', { connection: config, input: stepInput, context: { trigger: { id } } }),
      // The same lookup with the template in the SQL text: read by PostgreSQL's scanner (cached), sent as $1::int8.
      queryRowsSqlTemplate: (id: number) => runAction('query-rows', { connection: config, input: sqlTemplateInput, context: { trigger: { id } } }),
      // The step answering once its result is read, its session checks finishing after (connection/step-tail.ts, off by default).
      queryRowsStepEarly: switched(earlyAnswer, true)((id: number) => runAction('query-rows', { connection: config, input: stepInput, context: { trigger: { id } } })),
      // The step with the session-state guard switched off: the difference is what the guard costs.
      queryRowsStepUnguarded: async (id: number) => {
        sessionGuard.enabled = false;
        try {
          return await runAction('query-rows', { connection: config, input: stepInput, context: { trigger: { id } } });
        } finally {
          sessionGuard.enabled = true;
        }
      },
      // execute() of the lookup, not read-only, guard off: what the full probe costs a committed step.
      oursUnguarded: async (id: number) => {
        sessionGuard.enabled = false;
        try {
          return await execute(config, { text, values: [id] });
        } finally {
          sessionGuard.enabled = true;
        }
      },
    },
    STEPS,
    meter,
  );
}

/**
 * What reading SQL with PostgreSQL's parser (libpg-query, WebAssembly) costs a step, in µs:
 * the first time a SQL text is seen (scan + plan, or parse for Update/Delete Rows' check) and
 * every later time (the plan and the tree are cached by text).
 */
function parserCost() {
  const sql = (i: number) => `UPDATE bench_users SET name = '{{trigger.name}}', email = {{trigger.email}} WHERE id = {{trigger.id}} /* ${i} */`;
  const context = { trigger: { name: 'n', email: 'e', id: 1 } };
  const count = 2000;
  const time = (work: (i: number) => unknown) => {
    for (let i = 0; i < 200; i++) work(-1 - i); // warm up
    const started = performance.now();
    for (let i = 0; i < count; i++) work(i);
    return ((performance.now() - started) / count) * 1000;
  };
  const firstBind = time((i) => bindSqlTemplates(sql(i + 1e6), 0, context, 'q'));
  const cachedBind = time(() => bindSqlTemplates(sql(0), 0, context, 'q'));
  const firstParse = time((i) => parsePg(`UPDATE bench_users SET name = $1 WHERE id = $2 /* ${i + 1e6} */`));
  const cachedParse = time(() => parsePg('UPDATE bench_users SET name = $1 WHERE id = $2'));
  return { firstBind, cachedBind, firstParse, cachedParse };
}

/** From the deadline to the moment pg_stat_activity shows the statement gone. */
async function cancelLatency(config: ConnectionConfig, monitor: pg.Pool) {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const marker = `bench-cancel-${i}-${Date.now()}`;
    const timeoutMs = 500;
    const started = performance.now();
    const step = execute(config, { text: `SELECT pg_sleep(30), '${marker}'`, timeoutMs }).catch((error: unknown) => error);
    const deadline = started + timeoutMs;
    let gone = NaN;
    while (performance.now() - started < 10_000) {
      const { rows } = await monitor.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1`, [`%${marker}%`]);
      if (rows[0].n === 0 && performance.now() > started + 50) {
        gone = performance.now();
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const error = await step;
    if (!(error instanceof PgActionsError) || error.code !== 'QUERY_TIMEOUT') throw new Error('expected QUERY_TIMEOUT');
    samples.push(gone - deadline);
  }
  return { median: median(samples), max: Math.max(...samples) };
}

async function watchRss<T>(work: () => Promise<T>): Promise<{ result: T; rssGrowth: number; ms: number }> {
  gc();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 2);
  const started = performance.now();
  const result = await work();
  const elapsed = performance.now() - started;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  return { result, rssGrowth: peak - before, ms: elapsed };
}

/**
 * A 1 GB result stopped at the 10 MB cap vs a raw read of 10 MB: medians of 5 turns each. Before
 * each capped attempt a step warms the pool: the attempt discards its session (the statement is
 * cancelled), so without it every attempt but the first would also pay for connecting anew.
 */
async function capAbort(config: ConnectionConfig, raw: pg.Pool) {
  const rawTimes: number[] = [];
  const cappedTimes: number[] = [];
  let rawGrowth = 0;
  let cappedGrowth = 0;
  for (let turn = 0; turn < 5; turn++) {
    const rawRead = await watchRss(() => raw.query(`SELECT repeat('x', 1000) AS filler, generate_series(1, 10240) AS n`));
    await execute(config, { text: 'SELECT 1' });
    const capped = await watchRss(() =>
      execute(config, { text: `SELECT repeat('x', 1000) AS filler, generate_series(1, 1048576) AS n` }).catch((error: unknown) => error),
    );
    if (!(capped.result instanceof PgActionsError) || capped.result.code !== 'RESULT_TOO_LARGE') throw new Error('expected RESULT_TOO_LARGE');
    rawTimes.push(rawRead.ms);
    cappedTimes.push(capped.ms);
    rawGrowth = Math.max(rawGrowth, rawRead.rssGrowth);
    cappedGrowth = Math.max(cappedGrowth, capped.rssGrowth);
  }
  return { rawRead: { ms: median(rawTimes), rssGrowth: rawGrowth }, capped: { ms: median(cappedTimes), rssGrowth: cappedGrowth } };
}

/**
 * Hostile results at the default 10 MB cap: one 500 MB value, and 240 MB of wire bytes of
 * 1,500-column all-NULL rows. Peak RSS growth is what counts (goal: at most 2× the cap).
 */
async function hostileResults(config: ConnectionConfig) {
  const wideColumns = Array.from({ length: 1500 }, (_, i) => `NULL::int AS c${i}`).join(', ');
  const rowsFor240MB = Math.round((240 * 1048576) / (1 + 4 + 2 + 1500 * 4));
  const attempt = (text: string) =>
    watchRss(() => execute(config, { text }).then(() => 'completed', (error: unknown) => (error instanceof PgActionsError ? error.code : String(error))));
  const single = await attempt(`SELECT repeat('x', 500 * 1048576) AS big`);
  const wide = await attempt(`SELECT ${wideColumns} FROM generate_series(1, ${rowsFor240MB})`);
  for (const outcome of [single, wide]) if (outcome.result !== 'RESULT_TOO_LARGE') throw new Error(`expected RESULT_TOO_LARGE, got ${outcome.result}`);
  return { single, wide };
}

/** A pooled step vs a fresh pg.Client per step (connect, query, end), as several flow builders do. */
async function connectPerStep(config: ConnectionConfig, db: { host: string; port: number; user: string; password: string }) {
  const text = 'SELECT id, name, email FROM bench_users WHERE id = $1';
  const input = { query: text, parameters: ['{{trigger.id}}'] };
  const pooled: number[] = [];
  const fresh: number[] = [];
  const steps = Math.min(STEPS, 500);
  for (let i = 0; i < steps + 50; i++) {
    let started = performance.now();
    await runAction('query-rows', { connection: config, input, context: { trigger: { id: (i % 1000) + 1 } } });
    if (i >= 50) pooled.push(performance.now() - started);
    started = performance.now();
    const client = new pg.Client({ host: db.host, port: db.port, user: db.user, password: db.password, database: 'postgres' });
    await client.connect();
    await client.query(text, [(i % 1000) + 1]);
    await client.end();
    if (i >= 50) fresh.push(performance.now() - started);
  }
  return { pooled: median(pooled), fresh: median(fresh) };
}

/** 100,000 rows into logs: the reference's unnest bulk insert (one step), COPY FROM STDIN, one INSERT per row. */
async function bulkInsert(config: ConnectionConfig, raw: pg.Pool) {
  const count = Number(process.env.BENCH_BULK_ROWS ?? 100_000);
  const levels = Array.from({ length: count }, (_, i) => ['info', 'warn', 'error'][i % 3]!);
  const messages = Array.from({ length: count }, (_, i) => `message ${i} with "quotes", commas and a tab\tinside`);
  const times = Array.from({ length: count }, (_, i) => new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString());
  const reset = () => raw.query('TRUNCATE logs');
  const verify = async (label: string) => {
    const { rows } = await raw.query('SELECT count(*)::int AS n FROM logs');
    if (rows[0].n !== count) throw new Error(`${label} inserted ${rows[0].n} rows, expected ${count}`);
  };
  await reset();
  let started = performance.now();
  await runAction('execute-query', {
    connection: config,
    input: {
      query: 'INSERT INTO logs (level, message, created_at) SELECT * FROM unnest($1::text[], $2::text[], $3::timestamp[])',
      parameters: ['{{trigger.levels}}', '{{trigger.messages}}', '{{trigger.times}}'],
    },
    context: { trigger: { levels, messages, times } },
  });
  const unnest = performance.now() - started;
  await verify('unnest');

  await reset();
  started = performance.now();
  const client = await raw.connect();
  try {
    const escape = (text: string) => text.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n');
    const lines = (function* () {
      for (let i = 0; i < count; i++) yield `${levels[i]}\t${escape(messages[i]!)}\t${times[i]}\n`;
    })();
    await pipeline(Readable.from(lines), client.query(copyFrom('COPY logs (level, message, created_at) FROM STDIN')));
  } finally {
    client.release();
  }
  const copy = performance.now() - started;
  await verify('COPY');

  await reset();
  started = performance.now();
  for (let i = 0; i < count; i++) {
    await execute(config, { text: 'INSERT INTO logs (level, message, created_at) VALUES ($1, $2, $3)', values: [levels[i], messages[i], times[i]] });
  }
  const perRow = performance.now() - started;
  await verify('per-row INSERT');
  return { count, unnest, copy, perRow };
}

async function main() {
  console.error('starting an embedded PostgreSQL for the bench…');
  const db = await startEmbeddedDatabase();
  const pinning = pinCpus(db.dataDir);
  const config: ConnectionConfig = { host: db.host, port: db.port, user: db.user, password: db.password, database: 'postgres', sslMode: 'disable' };
  const raw = new pg.Pool({ host: db.host, port: db.port, user: db.user, password: db.password, database: 'postgres', max: 10 });
  try {
    await raw.query(`CREATE TABLE bench_users (id int PRIMARY KEY, name text, email text)`);
    await raw.query(`INSERT INTO bench_users SELECT g, 'user ' || g, 'user' || g || '@example.com' FROM generate_series(1, 1000) g`);
    await raw.query(`CREATE TABLE logs (level text NOT NULL, message text NOT NULL, created_at timestamp NOT NULL)`);

    const rows: string[][] = [];
    const seconds = (value: number) => `${(value / 1000).toFixed(2)} s`;
    let calls = 0;
    const meter = cpuMeter(db.dataDir);
    /** Wall ratio, and the CPU ratio (client + server) with the CPU per call. */
    const ratios = (side: SideFigures) => `${side.wallRatio.toFixed(2)}×${side.cpu ? ` (CPU ${side.cpu.ratio.toFixed(2)}×)` : ''}`;
    const cpuNote = (side: SideFigures) => (side.cpu ? `CPU/call ${side.cpu.client.toFixed(0)} µs Node + ${side.cpu.server.toFixed(0)} µs server` : '');
    if (runs('steps')) {
      const { figures: f, calls: n } = await stepOverhead(config, raw, meter);
      calls = n;
      const guard = (on: SideFigures, off: SideFigures) =>
        `guard +${((on.wallRatio - off.wallRatio) * 100).toFixed(0)} points${on.cpu && off.cpu ? ` (CPU +${((on.cpu.ratio - off.cpu.ratio) * 100).toFixed(0)})` : ''}`;
      rows.push(
        ['one-row lookup, raw pg Pool.query (baseline)', ms(f.baseline.ms), '1.00×', cpuNote(f.baseline)],
        ['one-row lookup, connection execute()', ms(f.ours.ms), ratios(f.ours), `goal ≤ 1.10×; ${cpuNote(f.ours)}`],
        ['same, session-state guard off', ms(f.oursUnguarded.ms), ratios(f.oursUnguarded), guard(f.ours, f.oursUnguarded)],
        ['one-row lookup, execute() READ ONLY (BEGIN…ROLLBACK pipelined)', ms(f.oursReadOnly.ms), ratios(f.oursReadOnly), cpuNote(f.oursReadOnly)],
        ['one-row lookup, query-rows step (validated, templated, READ ONLY)', ms(f.queryRowsStep.ms), ratios(f.queryRowsStep), `goal ≤ 1.10×; ${cpuNote(f.queryRowsStep)}`],
        ['same step, answering before its session checks end (early answer, off by default)', ms(f.queryRowsStepEarly.ms), ratios(f.queryRowsStepEarly), 'time to result only: see the pool-of-one rows'],
        ['same step, session-state guard off (its cost: the difference)', ms(f.queryRowsStepUnguarded.ms), ratios(f.queryRowsStepUnguarded), guard(f.queryRowsStep, f.queryRowsStepUnguarded)],
        ['one-row lookup, query-rows step with {{trigger.id}} in the SQL text', ms(f.queryRowsSqlTemplate.ms), ratios(f.queryRowsSqlTemplate), 'goal ≤ 1.10× (P1)'],
      );
    }
    if (runs('busy')) {
      // A step answers before its session checks end (connection/step-tail.ts): what it costs its connection.
      const busy = await busyCost(config, { host: db.host, port: db.port, user: db.user, password: db.password, database: 'postgres' }, STEPS);
      const s = busy.single, c = busy.concurrent;
      const rate = (value: number) => `${value.toFixed(0)} steps/s`;
      rows.push(
        ['serial lookups on a pool of ONE connection, raw pg (baseline)', ms(s.baseline.ms), '1.00×', 'each step waits for the last one to free the connection'],
        ['same, query-rows step', ms(s.queryRows.ms), ratios(s.queryRows), ''],
        ['same, query-rows step with the early answer (its checks still hold the connection)', ms(s.queryRowsEarly.ms), ratios(s.queryRowsEarly), ''],
        ['same, query-rows step, session-state guard off', ms(s.queryRowsUnguarded.ms), ratios(s.queryRowsUnguarded), ''],
        [`${c.flows} concurrent flows of lookups on a pool of 10, raw pg (baseline)`, rate(c.perSecond.raw), '1.00×', 'throughput; ratio = time per step vs raw'],
        [`${c.flows} concurrent flows, query-rows step`, rate(c.perSecond.ours), `${c.ratio.ours.toFixed(2)}×`, ''],
        [`${c.flows} concurrent flows, query-rows step, early answer`, rate(c.perSecond.early), `${c.ratio.early.toFixed(2)}×`, ''],
        [`${c.flows} concurrent flows, query-rows step, guard off`, rate(c.perSecond.unguarded), `${c.ratio.unguarded.toFixed(2)}×`, ''],
      );
    }
    if (runs('parser')) {
      const parser = parserCost();
      rows.push(
        ['SQL with 3 templates, first time seen: scan + plan (PostgreSQL scanner)', `${parser.firstBind.toFixed(1)} µs`, '', 'once per distinct SQL text'],
        ['SQL with 3 templates, seen before: cached plan, values bound', `${parser.cachedBind.toFixed(1)} µs`, '', 'every step'],
        ['statement-kind check (Update/Delete Rows), first time: parse', `${parser.firstParse.toFixed(1)} µs`, '', 'once per distinct SQL text'],
        ['statement-kind check, seen before: cached tree', `${parser.cachedParse.toFixed(1)} µs`, '', 'every step'],
      );
    }
    if (runs('cancel')) {
      const cancel = await cancelLatency(config, raw);
      rows.push(['deadline → statement gone from pg_stat_activity (median / max of 5)', `${ms(cancel.median)} / ${ms(cancel.max)}`, '', 'goal ≤ 250 ms']);
    }
    if (runs('cap')) {
      const cap = await capAbort(config, raw);
      rows.push(
        ['raw read of 10 MB (baseline, median of 5)', ms(cap.rawRead.ms), '1.00×', `RSS +${mb(cap.rawRead.rssGrowth)}`],
        ['1 GB result with the 10 MB cap → RESULT_TOO_LARGE (median of 5)', ms(cap.capped.ms), `${(cap.capped.ms / cap.rawRead.ms).toFixed(2)}×`, `RSS +${mb(cap.capped.rssGrowth)} (goals ≤ 1.5×, ≤ 40 MB)`],
      );
    }
    if (runs('hostile')) {
      const hostile = await hostileResults(config);
      rows.push(
        ['500 MB single value, default 10 MB cap → RESULT_TOO_LARGE', ms(hostile.single.ms), '', `RSS +${mb(hostile.single.rssGrowth)} (goal ≤ 2× the cap)`],
        ['240 MB of 1,500-column NULL rows, default cap → RESULT_TOO_LARGE', ms(hostile.wide.ms), '', `RSS +${mb(hostile.wide.rssGrowth)} (goal ≤ 2× the cap)`],
      );
    }
    if (runs('connect')) {
      const connecting = await connectPerStep(config, db);
      rows.push(
        ['query-rows step, connect-per-step (fresh pg.Client)', ms(connecting.fresh), '1.00×', ''],
        ['query-rows step, pooled (pg-actions)', ms(connecting.pooled), `${(connecting.fresh / connecting.pooled).toFixed(1)}× faster`, 'goal ≥ 5×'],
      );
    }
    if (runs('bulk')) {
      const bulk = await bulkInsert(config, raw);
      rows.push(
        [`bulk insert ${bulk.count.toLocaleString('en')} rows, COPY FROM STDIN (baseline)`, seconds(bulk.copy), '1.00×', ''],
        [`bulk insert ${bulk.count.toLocaleString('en')} rows, execute-query step with unnest`, seconds(bulk.unnest), `${(bulk.unnest / bulk.copy).toFixed(2)}×`, ''],
        [`bulk insert ${bulk.count.toLocaleString('en')} rows, one INSERT per row (pooled)`, seconds(bulk.perRow), `${(bulk.perRow / bulk.copy).toFixed(2)}×`, ''],
      );
    }
    if (runs('pgbouncer')) {
      const pooler = await pgbouncerOverhead(db, STEPS);
      if (typeof pooler === 'string') rows.push(['through PgBouncer', '', '', pooler]);
      else {
        const f = pooler.figures;
        rows.push(
          ['through PgBouncer (transaction pooling), raw pg Pool.query (baseline)', ms(f.baseline.ms), '1.00×', cpuNote(f.baseline)],
          ['through PgBouncer, query-rows step (pooler: transaction)', ms(f.queryRows.ms), ratios(f.queryRows), `goal ≤ 1.10×; ${cpuNote(f.queryRows)}`],
          ['through PgBouncer, query-rows step answering before its checks end (off by default)', ms(f.queryRowsEarly.ms), ratios(f.queryRowsEarly), 'time to result only'],
          ['through PgBouncer, execute() of the lookup, not read-only (pooler: transaction)', ms(f.execute.ms), ratios(f.execute), `settings reset every step, prepared statements only when there are some; ${cpuNote(f.execute)}`],
        );
      }
    }
    if (runs('floor')) {
      // P1's floor: the least framing, in raw pg, against the same baseline (bench/floor.ts).
      rows.push(...floorRows(await p1Floor(config, raw, STEPS, meter), ''));
      const pooled = await p1FloorPgBouncer(db, STEPS);
      rows.push(...(typeof pooled === 'string' ? [['through PgBouncer, floor', '', '', pooled]] : floorRows(pooled, ' through PgBouncer')));
    }
    if (runs('triggers')) rows.push(...(await triggerBench(config, raw)));
    if (runs('sync')) rows.push(...(await tableSyncBench(config, raw, meter)));
    if (runs('cdc')) rows.push(...(await cdcBench())); // its own wal_level=logical server
    const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
    console.log(`\npg-actions bench (${calls} one-row calls per side in blocks of 100, PostgreSQL embedded on loopback, Node ${process.version}, ${pinning})\n`);
    for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join('  │ '));
  } finally {
    await raw.end();
    await closeAll();
    await db.dispose();
  }
}

await main();
