/**
 * REVIEW7 R139, the CDC side of a table-sync handover: placing a changed key in the batch that read
 * it cast the key's text to the column's declared type, a domain, and a cast to a domain runs its
 * CHECK constraints. The domain's owner (here also the tables' owner, with no other privilege) can
 * add a CHECK calling its own function at any time: it ran with the role polling table-changes-cdc
 * (a superuser: COPY … TO PROGRAM). Keys are now cast to the domain's ultimate base type: the
 * owner's function never runs as the flow's role, and every change is judged as before.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, deactivateTrigger, type TriggerEvent } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { expectCopyOfRows, syncThenChanges } from '../triggers/helpers.js';

let owner: pg.Client | undefined;
const server = useReplicationServer({ beforeStop: () => owner?.end() });
const role = `domain_owner_${randomBytes(4).toString('hex')}`;
const DATABASE = 'trojan_domain_check';
const sql = (text: string) => server.sql(text, undefined, DATABASE);
const connection = () => server.config({ database: DATABASE });
const asOwner = async (text: string) => (await owner!.query(text)).rows;

beforeAll(async () => {
  await server.sql(`CREATE DATABASE ${DATABASE}`);
  await server.sql(`CREATE ROLE ${role} LOGIN PASSWORD 'owner-pass'`);
  await sql(`CREATE SCHEMA app AUTHORIZATION ${role}`);
  owner = new pg.Client({ ...connection(), user: role, password: 'owner-pass', ssl: false } as pg.ClientConfig);
  owner.on('error', () => {});
  await owner.connect();
  // Everything below is the owner's: a domain over int, one over text and a domain over that domain, keying its tables.
  await asOwner(`CREATE DOMAIN app.posint AS int CHECK (VALUE > 0);
    CREATE DOMAIN app.code AS text; CREATE DOMAIN app.short_code AS app.code CHECK (length(VALUE) < 10);
    CREATE TABLE app.d_int (k app.posint PRIMARY KEY, v int NOT NULL); INSERT INTO app.d_int SELECT i, 0 FROM generate_series(1, 7) i;
    CREATE TABLE app.d_two (a app.short_code, b app.posint, v int NOT NULL, PRIMARY KEY (a, b));
    INSERT INTO app.d_two SELECT 'c' || (i % 3), i, 0 FROM generate_series(1, 9) i;
    CREATE FUNCTION app.checked(anyelement) RETURNS boolean LANGUAGE plpgsql AS $f$
      BEGIN IF current_user OPERATOR(pg_catalog.<>) '${role}' THEN RAISE EXCEPTION 'trojan ran as %', current_user; END IF; RETURN true; END $f$;
    ALTER DOMAIN app.posint ADD CONSTRAINT owners_check CHECK (app.checked(VALUE));
    ALTER DOMAIN app.code ADD CONSTRAINT owners_check CHECK (app.checked(VALUE));`);
}, 60_000);

test('a handover of tables keyed by domains whose CHECK calls their owner\'s function: it never runs as the flow\'s role, every change is judged as before', async () => {
  await expect(sql('SELECT 3::app.posint')).rejects.toThrow(/trojan ran as postgres/); // the trap works on int…
  await expect(sql("SELECT 'x'::app.short_code")).rejects.toThrow(/trojan ran as postgres/); // …and through a domain over a domain
  const tables = ['app.d_int', 'app.d_two'];
  const cdc = { connection: connection(), config: { tables, heartbeatSeconds: 0 } };
  const sync = { connection: connection(), config: { tables, batchSize: 2, handover: {} } };
  const keyOf = (event: TriggerEvent, row: Record<string, unknown>) => JSON.stringify([event.table, row.k ?? row.a, row.b ?? null]);
  const where = (row: Record<string, unknown>) => (row.k !== undefined ? `k = ${row.k}` : `a = '${row.a}' AND b = ${row.b}`);
  await activateTrigger('table-changes-cdc', cdc);
  try {
    const run = await syncThenChanges(
      { sync, cdc },
      keyOf,
      // By the owner, after the batch that read the row: rows of later batches are changed before their read (the copy holds it), earlier ones after (only the CDC brings it).
      (event, row) => asOwner(`UPDATE app.${event.table} SET v = v + 1 WHERE ${where(row)}`),
      () => asOwner('UPDATE app.d_int SET v = -1 WHERE k = 1'), // the end marker, after every update
      (copy) => copy.get(JSON.stringify(['d_int', 1, null]))?.v === -1,
    );
    expect(run.updates).toBe(7 + 9);
    const rows = [...(await asOwner('SELECT k, v FROM app.d_int')), ...(await asOwner('SELECT a, b, v FROM app.d_two'))];
    expectCopyOfRows(run, rows, (row) => JSON.stringify([row.k === undefined ? 'd_two' : 'd_int', row.k ?? row.a, row.b ?? null]));
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
}, 120_000);
