/**
 * pg-actions' own catalog SQL runs with the flow's role, often an admin. Where it compared an oid
 * with a regclass, regnamespace or integer, pg_catalog has no exact operator (only =(oid, oid),
 * reached by a cast), so an exact look-alike anywhere on the default search_path won and ran its
 * function with the flow's privileges (review R47, the CVE-2018-1058 pattern; any role may CREATE
 * in public before PostgreSQL 15). Every such comparison is now exact on oid: a trojan never runs.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { runAction } from '../../actions/index.js';
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const role = `trojan_${randomBytes(4).toString('hex')}`;
const db = useTestDatabase('trojan', { beforeDrop: () => db.sql(`DROP OWNED BY ${role}; DROP ROLE IF EXISTS ${role}`).then(() => undefined) });

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${role} LOGIN PASSWORD 'trojan-pass'`);
  await db.sql('GRANT CREATE ON SCHEMA public TO PUBLIC'); // the default before PostgreSQL 15, kept by pg_upgrade
  await db.sql('CREATE TABLE items (id int PRIMARY KEY, name text); CREATE TABLE audit (id int PRIMARY KEY); INSERT INTO items VALUES (1, $$a$$), (2, $$b$$)');
  // The attacker: no privilege but CREATE on public. Each look-alike fails the statement that runs it, naming itself (in read-only transactions too).
  const attacker = new pg.Client({ ...db.config, user: role, password: 'trojan-pass' } as pg.ClientConfig);
  await attacker.connect();
  try {
    // Every comparison pg_catalog only offers through a cast: oid with regclass, regnamespace or an integer (either side), real with an integer.
    for (const [left, right] of [['oid', 'regclass'], ['oid', 'regnamespace'], ['oid', 'integer'], ['integer', 'oid'], ['real', 'integer']] as const) {
      for (const op of ['=', '<>', '>', '<'] as const) {
        const fn = `public.trojan_${left}_${right}_${{ '=': 'eq', '<>': 'ne', '>': 'gt', '<': 'lt' }[op]}`;
        await attacker.query(`CREATE FUNCTION ${fn}(${left}, ${right}) RETURNS boolean LANGUAGE plpgsql AS $f$
          BEGIN RAISE EXCEPTION 'trojan ${op}(${left}, ${right}) ran as %', current_user; END $f$`);
        await attacker.query(`CREATE OPERATOR public.${op} (LEFTARG = ${left}, RIGHTARG = ${right}, FUNCTION = ${fn})`);
      }
    }
  } finally {
    await attacker.end();
  }
});

test('no look-alike operator in public runs in pg-actions\' own SQL: table-sync polls, row-changes and schema-changes activate and deactivate, Insert Row describes its table (review R47)', async () => {
  // The trap works: a plain comparison of an oid with a regclass picks the look-alike.
  await expect(db.sql("SELECT count(*) FROM pg_class WHERE oid = 'items'::regclass")).rejects.toThrow(/trojan =\(oid, regclass\) ran as/);

  const connection = db.config;
  await pollTrigger('table-sync', { connection, config: { tables: ['items'] } });
  await activateTrigger('row-changes', { connection, config: { tables: ['audit'] } });
  await deactivateTrigger('row-changes', { connection, config: { tables: ['audit'] } });
  await activateTrigger('schema-changes', { connection, config: {} });
  await db.sql('CREATE TABLE later (id int)');
  await deactivateTrigger('schema-changes', { connection, config: {} });
  await runAction('insert-row', { connection, input: { table: 'items', columns: { id: 3, name: 'c' } } });
  expect(await db.sql('SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
});
