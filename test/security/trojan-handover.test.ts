/**
 * REVIEW6 R110, the CDC side of a table-sync handover: placing a changed key in the batch that read
 * it compared keys with `<` found on the search_path. For an enum or a domain key pg_catalog has no
 * exact operator, so a look-alike `<` made in public by a role with only CREATE there ran with the
 * flow's role (a two-column key: a row comparison refused it, the handover failed). The keys are now
 * placed with the ordering of the type's default btree opclass: the trojans never run, and every
 * update made after its row's batch reaches the copy.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, deactivateTrigger, handoverState, pollTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { createComparisonLookAlikes } from './look-alikes.js';
import { expectCopyOfRows, syncThenChanges } from '../triggers/helpers.js';

const server = useReplicationServer();
const role = `trojan_${randomBytes(4).toString('hex')}`;
const DATABASE = 'trojan_handover';
const sql = (text: string) => server.sql(text, undefined, DATABASE);
const connection = () => server.config({ database: DATABASE });
const LABELS = ['l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'l7'];

beforeAll(async () => {
  await server.sql(`CREATE DATABASE ${DATABASE}`);
  await server.sql(`CREATE ROLE ${role} LOGIN PASSWORD 'trojan-pass'`);
  await sql(`GRANT CREATE ON SCHEMA public TO PUBLIC;
    CREATE TYPE mood AS ENUM (${LABELS.map((l) => `'${l}'`).join(', ')}); CREATE DOMAIN posint AS int CHECK (VALUE > 0);
    CREATE TABLE h_mood (k mood PRIMARY KEY, v int NOT NULL); INSERT INTO h_mood SELECT l::mood, 0 FROM unnest('{${LABELS.join(',')}}'::text[]) l;
    CREATE TABLE h_two (a mood, b posint, v int NOT NULL, PRIMARY KEY (a, b)); INSERT INTO h_two SELECT ('l' || (i % 3 + 1))::mood, i, 0 FROM generate_series(1, 9) i`);
  await createComparisonLookAlikes({ ...connection(), user: role, password: 'trojan-pass', ssl: false } as pg.ClientConfig, ['mood', 'posint']);
}, 60_000);

test('a handover of enum- and domain-keyed tables: no look-alike comparison runs, every update after its row\'s batch is delivered, the copy equals the table', async () => {
  await expect(sql("SELECT count(*) FROM h_mood WHERE k < 'l2'")).rejects.toThrow(/trojan <\(mood\) ran as/); // the trap works
  const tables = ['h_mood', 'h_two'];
  const cdc = { connection: connection(), config: { tables, heartbeatSeconds: 0 } };
  const sync = { connection: connection(), config: { tables, batchSize: 2, handover: {} } };
  const keyOf = (event: TriggerEvent, row: Record<string, unknown>) => JSON.stringify([event.table, row.k ?? row.a, row.b ?? null]);
  // The test's own statements compare with pg_catalog's operators, not the trojans.
  const where = (row: Record<string, unknown>) =>
    row.k !== undefined ? `k::text OPERATOR(pg_catalog.=) '${row.k}'` : `a::text OPERATOR(pg_catalog.=) '${row.a}' AND b::int OPERATOR(pg_catalog.=) ${row.b}`;
  await activateTrigger('table-changes-cdc', cdc);
  try {
    const run = await syncThenChanges(
      { sync, cdc },
      keyOf,
      (event, row) => sql(`UPDATE ${event.table} SET v = v + 1 WHERE ${where(row)}`), // after the batch that read it: only the CDC can bring it
      () => sql("UPDATE h_mood SET v = -1 WHERE k::text OPERATOR(pg_catalog.=) 'l1'"), // the end marker, after every update
      (copy) => copy.get(JSON.stringify(['h_mood', 'l1', null]))?.v === -1,
    );
    expect(run.updates).toBe(LABELS.length + 9);
    const rows = [...(await sql('SELECT k, v FROM h_mood')), ...(await sql('SELECT a, b, v FROM h_two'))];
    expectCopyOfRows(run, rows, (row) => JSON.stringify([row.k === undefined ? 'h_two' : 'h_mood', row.k ?? row.a, row.b ?? null]));
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
}, 120_000);
