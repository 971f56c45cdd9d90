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
import { activateTrigger, deactivateTrigger, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { makeChange } from '../../playground/sample-change.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { createComparisonLookAlikes } from './look-alikes.js';

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

/**
 * The key and cursor comparisons of table-sync, new-row and new-or-updated-row (REVIEW6 R110): for an
 * enum, a domain, or a domain over citext installed in public, pg_catalog has no exact comparison
 * operator, so a look-alike `<`, `<=`, `=`, `>=`, `>` made in public for the user's type won and ran
 * with the flow's role (multi-column keys: a row comparison refused it, a denial of service). The
 * comparisons are now the key type's default btree opclass's own operators, qualified.
 */
describe('key comparisons (REVIEW6 R110)', () => {
  const LABELS = ['l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'l7'];
  const TABLES: Record<string, number> = { k_mood: 7, k_dom: 7, k_cit: 7, k_two: 9, k_mixed: 9 };
  const KEYS: Record<string, string> = { k_mood: 'k', k_dom: 'k', k_cit: 'k', k_two: 'a, b', k_mixed: 'a, b' };

  beforeAll(async () => {
    await db.sql(`CREATE EXTENSION citext SCHEMA public;
      CREATE TYPE mood AS ENUM (${LABELS.map((l) => `'${l}'`).join(', ')}); CREATE DOMAIN posint AS int CHECK (VALUE > 0); CREATE DOMAIN cdom AS citext;
      CREATE TABLE k_mood (k mood PRIMARY KEY, n int); INSERT INTO k_mood SELECT l::mood, 1 FROM unnest($$${`{${LABELS.join(',')}}`}$$::text[]) l;
      CREATE TABLE k_dom (k posint PRIMARY KEY, n int); INSERT INTO k_dom SELECT i, i FROM generate_series(1, 7) i;
      CREATE TABLE k_cit (k cdom PRIMARY KEY); INSERT INTO k_cit VALUES ('a1'), ('B2'), ('c3'), ('D4'), ('e5'), ('F6'), ('_x7');
      CREATE TABLE k_two (a mood, b posint, PRIMARY KEY (a, b)); INSERT INTO k_two SELECT ('l' || (i % 3 + 1))::mood, i FROM generate_series(1, 9) i;
      CREATE TABLE k_mixed (a cdom, b mood, PRIMARY KEY (a, b)); INSERT INTO k_mixed SELECT chr(65 + i % 3 + (i % 2) * 32), ('l' || i)::mood FROM generate_series(1, 7) i;
      INSERT INTO k_mixed VALUES ('z', 'l1'), ('Z', 'l2')`);
    await createComparisonLookAlikes({ ...db.config, user: role, password: 'trojan-pass' } as pg.ClientConfig, ['mood', 'posint', 'cdom']);
  });

  test('the trap works: a plain comparison of each key type picks the look-alike', async () => {
    await expect(db.sql("SELECT count(*) FROM k_mood WHERE k > 'l2'")).rejects.toThrow(/trojan >\(mood\) ran as/);
    await expect(db.sql('SELECT count(*) FROM k_dom WHERE k <= 2::posint')).rejects.toThrow(/trojan <=\(posint\) ran as/);
    await expect(db.sql("SELECT count(*) FROM k_cit WHERE k >= 'b'::cdom")).rejects.toThrow(/trojan >=\(cdom\) ran as/);
    await expect(db.sql("SELECT count(*) FROM k_two WHERE (a, b) > ('l1', 2)")).rejects.toThrow(/could not determine interpretation of row comparison operator|trojan/);
  });

  test.each(Object.keys(TABLES))('table-sync of %s in batches of 2: every row, once, in key order, no trojan', async (table) => {
    const reference = await db.sql(`SELECT * FROM ${table} ORDER BY ${KEYS[table]}`); // ORDER BY: the type's default opclass, no operator looked up by name
    const keys: unknown[] = [];
    let state: TriggerState | undefined;
    for (let polls = 0; polls < 20; polls++) {
      const result = await pollTrigger('table-sync', { connection: db.config, config: { tables: [table], batchSize: 2 }, state });
      state = result.state;
      if (result.events.length === 0) break;
      keys.push(...result.events.map((event) => (event as unknown as { key: unknown }).key));
    }
    expect(keys).toHaveLength(TABLES[table]!);
    const columns = Object.keys(keys[0] as object);
    expect(keys).toEqual(reference.map((row) => Object.fromEntries(columns.map((c) => [c, row[c]]))));
  });

  test.each([
    ['new-row', 'k_dom', 'k'],
    ['new-row', 'k_mood', 'k'],
    ['new-row', 'k_cit', 'k'],
    ['new-or-updated-row', 'k_two', 'b'],
    ['new-or-updated-row', 'k_mixed', 'b'],
  ])('%s on %s.%s in batches of 2: every row, once, no trojan', async (trigger, table, column) => {
    const total = (await db.sql(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n as number;
    const seen: string[] = [];
    let state: TriggerState | undefined;
    for (let polls = 0; polls < 20; polls++) {
      const result = await pollTrigger(trigger, { connection: db.config, config: { table, column, from: 'beginning', batchSize: 2 }, state });
      state = result.state;
      if (result.events.length === 0) break;
      seen.push(...result.events.map((event) => JSON.stringify((event as unknown as { key: unknown }).key)));
    }
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);
  });

  // The playground's "make a change" picks the newest row by its key (REVIEW7 R127): `key = (SELECT key …)` ran the look-alike `=`.
  test.each(['k_mood', 'k_cit', 'k_two'])('the playground\'s make a change on %s: the newest row updated, then deleted, no trojan', async (table) => {
    const newest = async () => (await db.sql(`SELECT * FROM ${table} ORDER BY ${KEYS[table]!.split(', ').map((k) => `${k} DESC`).join(', ')} LIMIT 1`))[0];
    const before = await newest();
    const updated = await makeChange(db.config, table, 'update');
    expect(updated.row).toMatchObject(before!);
    const deleted = await makeChange(db.config, table, 'delete');
    expect(deleted.row).toMatchObject(before!);
    expect(await newest()).not.toEqual(before);
    expect((await db.sql(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n).toBe(TABLES[table]! - 1);
    await db.sql(`INSERT INTO ${table} SELECT (jsonb_populate_record(NULL::${table}, $1::jsonb)).*`, [JSON.stringify(before)]); // put it back for the other tests
  });
});
