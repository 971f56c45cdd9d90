/**
 * REVIEW11 R173: what the row-changes capture costs a table with a column of a non-superuser's type
 * (written as its text, R170) against one whose types are built in: N one-row INSERTs (autocommit)
 * into each, as the writing backend's CPU time (/proc/<pid>/schedstat: a busy machine swamps wall
 * time) and wall time. Run: PGB_URL=postgres://user:pw@host:port/db npx tsx bench/row-changes-types.ts [N]
 * (the server must be on this machine, the user a superuser: it makes a role that owns the enum).
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { ConnectionConfig } from '../connection/index.js';
import { closeAll } from '../connection/index.js';
import { activateTrigger, deactivateTrigger } from '../triggers/index.js';

const url = new URL(process.env.PGB_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
const rows = Number(process.argv[2] ?? 2000);
const config: ConnectionConfig = {
  host: url.hostname, port: Number(url.port || 5432), user: decodeURIComponent(url.username),
  password: decodeURIComponent(url.password) || 'unused', database: url.pathname.slice(1) || 'postgres', sslMode: 'disable',
};
const cpuNs = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);

async function main() {
  const client = new pg.Client({ ...config, ssl: false });
  await client.connect();
  const q = (text: string) => client.query(text);
  await q(`DROP TABLE IF EXISTS bench_rt_plain, bench_rt_enum, bench_rt_bare`);
  await q(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_rt_owner') THEN CREATE ROLE bench_rt_owner; END IF; END $$`);
  await q(`DROP TYPE IF EXISTS bench_rt_mood`);
  await q(`CREATE TYPE bench_rt_mood AS ENUM ('ok', 'sad')`);
  await q(`ALTER TYPE bench_rt_mood OWNER TO bench_rt_owner`);
  await q(`CREATE TABLE bench_rt_bare (id serial PRIMARY KEY, note text, mood bench_rt_mood)`);
  await q(`CREATE TABLE bench_rt_plain (id serial PRIMARY KEY, note text, mood text)`);
  await q(`CREATE TABLE bench_rt_enum (id serial PRIMARY KEY, note text, mood bench_rt_mood)`);
  const trigger = { tables: ['bench_rt_plain', 'bench_rt_enum'], name: 'bench_rt' };
  await activateTrigger('row-changes', { connection: config, config: trigger });
  const pid = Number((await q('SELECT pg_backend_pid() AS pid')).rows[0].pid);
  const measure = async (table: string) => {
    for (let i = 0; i < 50; i++) await q(`INSERT INTO ${table} (note, mood) VALUES ('warm', 'ok')`); // plans cached, as in a long session
    const cpu = cpuNs(pid);
    const started = performance.now();
    for (let i = 0; i < rows; i++) await q(`INSERT INTO ${table} (note, mood) VALUES ('x', 'ok')`);
    return { cpuMs: (cpuNs(pid) - cpu) / 1e6, wallMs: performance.now() - started };
  };
  const result: Record<string, { cpuMs: number; wallMs: number }> = {};
  for (const table of ['bench_rt_bare', 'bench_rt_plain', 'bench_rt_enum', 'bench_rt_plain', 'bench_rt_enum']) {
    const m = await measure(table);
    result[table] = result[table] && result[table].cpuMs < m.cpuMs ? result[table] : m; // the better of two runs
  }
  const version = (await q('SHOW server_version')).rows[0].server_version;
  await deactivateTrigger('row-changes', { connection: config, config: trigger });
  await q(`DROP TABLE bench_rt_plain, bench_rt_enum, bench_rt_bare`);
  await client.end();
  await closeAll();
  const fmt = (m: { cpuMs: number; wallMs: number }) => `${(m.cpuMs / 1000).toFixed(3)} s CPU, ${(m.wallMs / 1000).toFixed(2)} s wall`;
  console.log(`PostgreSQL ${version}, ${rows} one-row INSERTs each (backend CPU; better of two runs)`);
  for (const [table, m] of Object.entries(result)) console.log(`  ${table.padEnd(16)} ${fmt(m)}`);
  const plain = result.bench_rt_plain!;
  const enumerated = result.bench_rt_enum!;
  console.log(`  enum / plain: ${(enumerated.cpuMs / plain.cpuMs).toFixed(2)}x CPU, ${(enumerated.wallMs / plain.wallMs).toFixed(2)}x wall`);
}
main().catch((error) => {
  console.error(error);
  process.exit(1);
});
