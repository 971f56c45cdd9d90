/**
 * Change capture in the bench, on a server of its own (wal_level = logical): one transaction of
 * BENCH_CDC_ROWS inserts (default 1,000,000) streamed through subscribeTrigger, against the server
 * decoding the same WAL alone (pg_logical_slot_peek_binary_changes counted in SQL), with the RSS
 * growth while it streams; and table-sync of the table against COPY … TO STDOUT.
 */
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { closeAll, type ConnectionConfig } from '../connection/index.js';
import { startEmbeddedDatabase } from '../cli/embedded-database.js';
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerState } from '../triggers/index.js';

const ROWS = Number(process.env.BENCH_CDC_ROWS ?? 1_000_000);
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;
const seconds = (value: number) => `${(value / 1000).toFixed(2)} s`;
const perSecond = (count: number, ms: number) => `${Math.round(count / (ms / 1000)).toLocaleString('en')}/s`;

export async function cdcBench(): Promise<string[][]> {
  const db = await startEmbeddedDatabase({ settings: { wal_level: 'logical', max_wal_size: '4GB', logical_decoding_work_mem: '64MB' } });
  const config: ConnectionConfig = { host: db.host, port: db.port, user: db.user, password: db.password, database: 'postgres', sslMode: 'disable' };
  const raw = new pg.Client({ ...config, ssl: false });
  await raw.connect();
  try {
    await raw.query('CREATE TABLE cdc_bench (id int PRIMARY KEY, name text NOT NULL, amount numeric NOT NULL)');
    const request = { connection: config, config: { tables: ['cdc_bench'], heartbeatSeconds: 0, batchSize: 2000 } };
    await activateTrigger('table-changes-cdc', request);
    const { state } = await pollTrigger('table-changes-cdc', request);
    const slot = (await raw.query("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pg_actions_%'")).rows[0].slot_name as string;
    await raw.query(`INSERT INTO cdc_bench SELECT i, 'name ' || i, i * 1.5 FROM generate_series(1, ${ROWS}) i`);

    let started = performance.now();
    const peeked = await raw.query(
      "SELECT count(*)::int AS n FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)",
      [slot, slot],
    );
    const serverAlone = performance.now() - started;
    if (peeked.rows[0].n < ROWS) throw new Error(`peek decoded ${peeked.rows[0].n} messages, expected ${ROWS}+`);

    (globalThis as { gc?: () => void }).gc?.();
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
    let received = 0;
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    started = performance.now();
    const subscription = await subscribeTrigger('table-changes-cdc', { ...request, state: state as TriggerState }, (events) => {
      received += events.length;
      if (received >= ROWS) resolveDone();
    });
    await done;
    const streamed = performance.now() - started;
    clearInterval(sampler);
    await subscription.close();

    const copyStarted = performance.now();
    let copied = 0;
    const client = new pg.Client({ ...config, ssl: false });
    await client.connect();
    await pipeline(client.query(copyTo('COPY cdc_bench TO STDOUT')), new Writable({ write: (chunk: Buffer, _e, next) => ((copied += chunk.length), next()) }));
    await client.end();
    const copy = performance.now() - copyStarted;

    const syncRequest = { connection: config, config: { tables: ['cdc_bench'], batchSize: 10_000 } };
    let syncState: TriggerState | undefined;
    let synced = 0;
    const syncStarted = performance.now();
    for (;;) {
      const result = await pollTrigger('table-sync', { ...syncRequest, state: syncState });
      synced += result.events.length;
      syncState = result.state;
      if (result.events.length === 0) break;
    }
    const sync = performance.now() - syncStarted;
    if (synced !== ROWS) throw new Error(`table-sync read ${synced} rows, expected ${ROWS}`);
    const rows = ROWS.toLocaleString('en');
    return [
      [`CDC ${rows}-row transaction, server decoding alone (peek_binary_changes counted in SQL)`, `${seconds(serverAlone)} ${perSecond(ROWS, serverAlone)}`, '1.00×', ''],
      [`CDC ${rows}-row transaction through subscribeTrigger`, `${seconds(streamed)} ${perSecond(ROWS, streamed)}`, `${(serverAlone / streamed).toFixed(2)}×`, `goal ≥ 0.5×; RSS +${mb(rssPeak - rssBefore)} (goal ≤ 64 MB)`],
      [`table-sync ${rows} rows vs COPY TO STDOUT (${mb(copied)})`, `${seconds(sync)} vs ${seconds(copy)}`, `${(copy / sync).toFixed(2)}×`, 'goal ≥ 0.5×'],
    ];
  } finally {
    await raw.end();
    await closeAll();
    await db.dispose();
  }
}
