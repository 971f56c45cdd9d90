/**
 * Trigger costs, as ratios against baselines measured in the same run:
 * - new-row: one poll (batch of 100) on a 1,000,000-row table vs a 10,000-row one, and
 *   Pipedream's method (max(col) + count(distinct) + `col > $1` without LIMIT) on the same tables;
 * - row-changes: commit-to-handler latency and sustained events/s through the outbox vs a bare
 *   pg_notify(row_to_json(NEW)) listener; the write overhead of its trigger on a 10,000-row INSERT.
 */
import pg from 'pg';
import type { ConnectionConfig } from '../connection/index.js';
import { activateTrigger, deactivateTrigger, pollTrigger, subscribeTrigger } from '../triggers/index.js';

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const p99 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length * 0.99)]!;
const ms = (value: number) => `${value.toFixed(2)} ms`;
const until = async (done: () => boolean, timeoutMs = 120_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('bench: timed out');
    await new Promise((resolve) => setImmediate(resolve));
  }
};

async function timeEach(times: number, work: (i: number) => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let i = -3; i < times; i++) {
    const started = performance.now();
    await work(i);
    if (i >= 0) samples.push(performance.now() - started);
  }
  return median(samples);
}

async function newRowPolls(config: ConnectionConfig, raw: pg.Pool) {
  const result: Record<string, { ours: number; pipedream: number }> = {};
  for (const [name, size] of [['bench_small', 10_000], ['bench_large', 1_000_000]] as const) {
    await raw.query(`CREATE TABLE ${name} (id bigserial PRIMARY KEY, note text, created_at timestamptz NOT NULL DEFAULT now())`);
    await raw.query(`INSERT INTO ${name} (note) SELECT 'row ' || g FROM generate_series(1, ${size}) g`);
    await raw.query(`VACUUM ANALYZE ${name}`);
    const trigger = { table: name, column: 'id', batchSize: 100, from: 'beginning' as const };
    const { state } = await pollTrigger('new-row', { connection: config, config: trigger });
    // The next 100 rows after a cursor 150 rows from the end: what a poll of a live table reads.
    const at = { ...state, position: { after: [String(size - 150)] } };
    const ours = await timeEach(30, () => pollTrigger('new-row', { connection: config, config: trigger, state: at }));
    const pipedream = await timeEach(5, async () => {
      await raw.query(`SELECT max(id) FROM ${name}`);
      await raw.query(`SELECT count(*) <> count(DISTINCT id) AS duplicates FROM ${name}`);
      await raw.query(`SELECT * FROM ${name} WHERE id > $1`, [size - 150]);
    });
    result[name] = { ours, pipedream };
  }
  return result;
}

interface Delivery {
  latencies: number[];
  perSecond: number;
}

/** Sequential single-row commits (latency), then one 10,000-row INSERT (throughput). */
async function deliveries(raw: pg.Pool, table: string, subscribe: (onEvent: (count: number) => void) => Promise<() => Promise<void>>): Promise<Delivery> {
  let received = 0;
  let arrived = 0;
  const close = await subscribe((count) => {
    received += count;
    arrived = performance.now();
  });
  await new Promise((resolve) => setTimeout(resolve, 500)); // listening
  const latencies: number[] = [];
  for (let i = 0; i < 200; i++) {
    const before = received;
    const started = performance.now();
    await raw.query(`INSERT INTO ${table} (note) VALUES ('x')`);
    await until(() => received > before);
    latencies.push(arrived - started);
  }
  const before = received;
  const started = performance.now();
  await raw.query(`INSERT INTO ${table} (note) SELECT 'bulk ' || g FROM generate_series(1, 10000) g`);
  await until(() => received >= before + 10_000);
  const perSecond = 10_000 / ((performance.now() - started) / 1000);
  await close();
  return { latencies, perSecond };
}

async function rowChanges(config: ConnectionConfig, raw: pg.Pool) {
  await raw.query('CREATE TABLE bench_outbox (id bigserial PRIMARY KEY, note text)');
  await raw.query('CREATE TABLE bench_notify (id bigserial PRIMARY KEY, note text)');
  await raw.query(`CREATE FUNCTION bench_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('bench_notify', row_to_json(NEW)::text); RETURN NULL; END $$`);
  await raw.query('CREATE TRIGGER bench_notify AFTER INSERT ON bench_notify FOR EACH ROW EXECUTE PROCEDURE bench_notify_row()');
  const trigger = { tables: ['bench_outbox'], batchSize: 1000 };
  await activateTrigger('row-changes', { connection: config, config: trigger });
  const ours = await deliveries(raw, 'bench_outbox', async (onEvent) => {
    const subscription = await subscribeTrigger('row-changes', { connection: config, config: trigger }, (events) => onEvent(events.length));
    return () => subscription.close();
  });
  const bare = await deliveries(raw, 'bench_notify', async (onEvent) => {
    const client = new pg.Client({ ...config, ssl: false });
    await client.connect();
    client.on('notification', (message) => onEvent(JSON.parse(message.payload ?? '{}') ? 1 : 0));
    await client.query('LISTEN bench_notify');
    return () => client.end();
  });
  // Write overhead: the same 10,000-row INSERT into a table with and without the trigger.
  await raw.query('CREATE TABLE bench_plain (id bigserial PRIMARY KEY, note text)');
  const insert = (table: string) => () => raw.query(`INSERT INTO ${table} (note) SELECT 'w ' || g FROM generate_series(1, 10000) g`);
  const plain = await timeEach(7, insert('bench_plain'));
  const captured = await timeEach(7, insert('bench_outbox'));
  await deactivateTrigger('row-changes', { connection: config, config: trigger });
  return { ours, bare, plain, captured };
}

export async function triggerBench(config: ConnectionConfig, raw: pg.Pool): Promise<string[][]> {
  const polls = await newRowPolls(config, raw);
  const changes = await rowChanges(config, raw);
  const small = polls.bench_small!;
  const large = polls.bench_large!;
  return [
    ['new-row poll (100 rows after a cursor), 10,000-row table (baseline)', ms(small.ours), '1.00×', ''],
    ['new-row poll (100 rows after a cursor), 1,000,000-row table', ms(large.ours), `${(large.ours / small.ours).toFixed(2)}×`, 'goal ≤ 1.5×'],
    ['Pipedream method (max + count distinct + no LIMIT), 10,000 rows', ms(small.pipedream), `${(small.pipedream / small.ours).toFixed(1)}× ours`, ''],
    ['Pipedream method (max + count distinct + no LIMIT), 1,000,000 rows', ms(large.pipedream), `${(large.pipedream / large.ours).toFixed(1)}× ours`, ''],
    ['commit → handler, bare pg_notify listener (median / p99)', `${ms(median(changes.bare.latencies))} / ${ms(p99(changes.bare.latencies))}`, '1.00×', ''],
    ['commit → handler, row-changes subscriber (median / p99)', `${ms(median(changes.ours.latencies))} / ${ms(p99(changes.ours.latencies))}`, `${(median(changes.ours.latencies) / median(changes.bare.latencies)).toFixed(2)}×`, ''],
    ['sustained events/s, bare pg_notify listener (10,000-row INSERT)', `${Math.round(changes.bare.perSecond)}/s`, '1.00×', ''],
    ['sustained events/s, row-changes subscriber (10,000-row INSERT)', `${Math.round(changes.ours.perSecond)}/s`, `${(changes.ours.perSecond / changes.bare.perSecond).toFixed(2)}×`, ''],
    ['10,000-row INSERT, no trigger (baseline)', ms(changes.plain), '1.00×', ''],
    ['10,000-row INSERT, row-changes capture (statement trigger: rows serialised as the capture role, handed over per 1000 rows, one NOTIFY)', ms(changes.captured), `${(changes.captured / changes.plain).toFixed(2)}×`, ''],
  ];
}

// `npx tsx bench/triggers.ts` runs only these, on an embedded server of their own.
if (process.argv[1]?.endsWith('triggers.ts')) {
  const { startEmbeddedDatabase } = await import('../cli/embedded-database.js');
  const { closeAll } = await import('../connection/index.js');
  const db = await startEmbeddedDatabase();
  const config: ConnectionConfig = { host: db.host, port: db.port, user: db.user, password: db.password, database: 'postgres', sslMode: 'disable' };
  const raw = new pg.Pool({ ...config, ssl: false, max: 4 });
  try {
    for (const row of await triggerBench(config, raw)) console.log(row.join('  │ '));
  } finally {
    await raw.end();
    await closeAll();
    await db.dispose();
  }
}
