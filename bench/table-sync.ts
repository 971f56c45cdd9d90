/**
 * table-sync against `COPY … TO STDOUT` of the same table (BENCH_ONLY=sync; BENCH_SYNC_ROWS rows,
 * default 1,000,000; BENCH_SYNC_ROUNDS rounds, default 3). Made fair before it is timed: the
 * table is VACUUMed (FREEZE, ANALYZE) after loading, so neither side pays for setting hint bits on
 * freshly inserted rows (whichever read first used to pay it alone), and the sides alternate
 * which goes first in each round. Ratios are the median over rounds of copy time / sync time,
 * wall and CPU (Node + server, bench/cpu.ts; a busy machine inflates CPU far less than wall).
 * table-sync runs as a host runs it, with its default configuration: pollTrigger until a poll
 * returns no events. Also given: COPY of the rows in key order (what the keyset reader has the
 * server do, index order), to tell the server's share from the client's. And the floor: raw
 * node-postgres delivering the same rows as one JS value each (bench/sync-floor.ts), in the same
 * rounds (BENCH_SYNC_FLOOR=0 leaves it out).
 */
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ConnectionConfig } from '../connection/index.js';
import { pollTrigger, type TriggerState } from '../triggers/index.js';
import type { CpuMeter } from './cpu.js';
import { syncFloors } from './sync-floor.js';

const ROWS = Number(process.env.BENCH_SYNC_ROWS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_SYNC_ROUNDS ?? 3);
const FLOORS = process.env.BENCH_SYNC_FLOOR === '0' ? [] : Object.entries(syncFloors);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;

/** Wall ms, CPU ms (Node + server) and Node's share, peak RSS growth. */
interface Timed { ms: number; cpuMs: number; nodeMs: number; rssGrowth: number }

async function timed(meter: CpuMeter | undefined, work: () => Promise<void>): Promise<Timed> {
  (globalThis as { gc?: () => void }).gc?.();
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
  const cpuBefore = meter?.read('start');
  const started = performance.now();
  await work();
  const ms = performance.now() - started;
  const cpuAfter = meter?.read('end');
  clearInterval(sampler);
  const cpuMs = cpuBefore && cpuAfter ? (cpuAfter[0] - cpuBefore[0] + cpuAfter[1] - cpuBefore[1]) / 1000 : NaN;
  const nodeMs = cpuBefore && cpuAfter ? (cpuAfter[0] - cpuBefore[0]) / 1000 : NaN;
  return { ms, cpuMs, nodeMs, rssGrowth: Math.max(rssPeak, process.memoryUsage().rss) - rssBefore };
}

/** A raw pg client, connected before and closed after the timed span (its backend's CPU is read while it lives). */
async function rawClient(config: ConnectionConfig): Promise<pg.Client> {
  const client = new pg.Client({ host: config.host, port: config.port, user: config.user, password: config.password, database: config.database, ssl: false });
  await client.connect();
  return client;
}

async function copyOut(client: pg.Client, sql: string): Promise<number> {
  let bytes = 0;
  await pipeline(client.query(copyTo(sql)), new Writable({ write: (chunk: Buffer, _encoding, next) => ((bytes += chunk.length), next()) }));
  return bytes;
}

async function syncAll(config: ConnectionConfig): Promise<void> {
  let state: TriggerState | undefined;
  let rows = 0;
  for (;;) {
    const result = await pollTrigger('table-sync', { connection: config, config: { tables: ['sync_bench'] }, state });
    rows += result.events.length;
    state = result.state;
    if (result.events.length === 0) break;
  }
  if (rows !== ROWS) throw new Error(`table-sync read ${rows} rows, expected ${ROWS}`);
}

export async function tableSyncBench(config: ConnectionConfig, raw: pg.Pool, meter: CpuMeter | undefined): Promise<string[][]> {
  await raw.query('DROP TABLE IF EXISTS sync_bench');
  await raw.query('CREATE TABLE sync_bench (id int PRIMARY KEY, name text NOT NULL, amount numeric NOT NULL)');
  try {
    await raw.query(`INSERT INTO sync_bench SELECT i, 'name ' || i, i * 1.5 FROM generate_series(1, ${ROWS}) i`);
    await raw.query('VACUUM (FREEZE, ANALYZE) sync_bench');
    const copies: Timed[] = [];
    const ordered: Timed[] = [];
    const syncs: Timed[] = [];
    const floors = new Map<string, Timed[]>(FLOORS.map(([name]) => [name, []]));
    let bytes = 0;
    await syncAll(config); // warm-up: JIT, the catalog cache, the pool
    const client = await rawClient(config);
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const copy = async () => copies.push(await timed(meter, async () => void (bytes = await copyOut(client, 'COPY sync_bench TO STDOUT'))));
        const sync = async () => syncs.push(await timed(meter, () => syncAll(config)));
        if (round % 2 === 0) (await copy(), await sync());
        else (await sync(), await copy());
        ordered.push(await timed(meter, async () => void (await copyOut(client, 'COPY (SELECT * FROM sync_bench ORDER BY id) TO STDOUT'))));
        for (const [name, floor] of FLOORS) {
          let read = 0;
          floors.get(name)!.push(await timed(meter, async () => void (read = await floor.read(client))));
          if (read !== ROWS) throw new Error(`${name} read ${read} rows, expected ${ROWS}`);
        }
      }
    } finally {
      await client.end();
    }
    const ratio = (base: Timed[], side: Timed[], of: (t: Timed) => number) => median(base.map((b, i) => of(b) / of(side[i]!)));
    const cpu = (side: Timed[]) => (Number.isNaN(side[0]!.cpuMs) ? '' : `CPU ${seconds(median(side.map((t) => t.cpuMs)))} (Node ${seconds(median(side.map((t) => t.nodeMs)))})`);
    const rows = ROWS.toLocaleString('en');
    return [
      [`COPY sync_bench TO STDOUT, ${rows} rows, ${mb(bytes)} (baseline, median of ${ROUNDS})`, seconds(median(copies.map((t) => t.ms))), '1.00×', cpu(copies)],
      [`COPY (… ORDER BY id) TO STDOUT (the order table-sync reads in)`, seconds(median(ordered.map((t) => t.ms))), `${ratio(copies, ordered, (t) => t.ms).toFixed(2)}×`, cpu(ordered)],
      [
        `table-sync ${rows} rows, default config, pollTrigger until empty`,
        seconds(median(syncs.map((t) => t.ms))),
        `${ratio(copies, syncs, (t) => t.ms).toFixed(2)}×${Number.isNaN(syncs[0]!.cpuMs) ? '' : ` (CPU ${ratio(copies, syncs, (t) => t.cpuMs).toFixed(2)}×)`}`,
        `goal ≥ 0.5×; ${cpu(syncs)}; RSS +${mb(Math.max(...syncs.map((t) => t.rssGrowth)))}`,
      ],
      ...FLOORS.map(([name, floor]) => {
        const side = floors.get(name)!;
        return [
          floor.label,
          seconds(median(side.map((t) => t.ms))),
          `${ratio(copies, side, (t) => t.ms).toFixed(2)}×${Number.isNaN(side[0]!.cpuMs) ? '' : ` (CPU ${ratio(copies, side, (t) => t.cpuMs).toFixed(2)}×)`}`,
          `${cpu(side)}; RSS +${mb(Math.max(...side.map((t) => t.rssGrowth)))}`,
        ];
      }),
    ];
  } finally {
    await raw.query('DROP TABLE IF EXISTS sync_bench');
  }
}
