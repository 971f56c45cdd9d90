/**
 * REVIEW8 R142: REVIEW7 R139 reads a domain key as its ultimate base type, so the domain's CHECK (its
 * owner's code) does not run with the flow's role. A domain deeper in the key's type, the element of
 * an array, a field of a composite, the subtype of a range, is still parsed through when a cursor or
 * a bound is read back (table-sync's cursor, new-row's bound parameters, the handover's keys). Such a
 * key is refused when the domain belongs to a role that is neither a superuser nor the running role,
 * naming the column and the domain, before any key is read; the owner's function never runs. So is a
 * composite type of such a role (its owner may add a domain field while a column uses it). A domain
 * of the running role's own is read as before.
 */
import { randomBytes } from 'node:crypto';
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { keyComparisons } from '../../triggers/replication/handover-types.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf } from '../triggers/helpers.js';

const owner = `domain_holder_${randomBytes(4).toString('hex')}`;
const db = useTestDatabase('trojan_domain_container', {
  beforeDrop: () => db.sql(`DROP OWNED BY ${owner} CASCADE; DROP ROLE IF EXISTS ${owner}`).then(() => undefined),
});

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${owner};
    CREATE FUNCTION checked(int) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN RETURN true; END $f$;
    CREATE DOMAIN posint AS int CHECK (checked(VALUE));
    CREATE DOMAIN mine AS int CHECK (VALUE > 0);
    CREATE TYPE pair AS (a posint, b int);
    CREATE TYPE prange AS RANGE (subtype = posint);
    CREATE TABLE ta (k posint[] PRIMARY KEY); INSERT INTO ta SELECT ARRAY[g, g] FROM generate_series(1, 5) g;
    CREATE TABLE tc (k pair PRIMARY KEY); INSERT INTO tc SELECT ROW(g, g)::pair FROM generate_series(1, 5) g;
    CREATE TABLE tr (k prange PRIMARY KEY); INSERT INTO tr SELECT prange(g, g + 1) FROM generate_series(1, 5) g;
    CREATE TABLE tm (k mine[] PRIMARY KEY); INSERT INTO tm SELECT ARRAY[g] FROM generate_series(1, 5) g;
    -- A composite type of the owner's, with no domain yet: ALTER TYPE … ADD ATTRIBUTE could give it one while tq uses it.
    CREATE TYPE theirs AS (a int); CREATE TABLE tq (k theirs PRIMARY KEY); INSERT INTO tq SELECT ROW(g)::theirs FROM generate_series(1, 5) g;
    ALTER TYPE theirs OWNER TO ${owner};
    ALTER DOMAIN posint OWNER TO ${owner}; ALTER FUNCTION checked(int) OWNER TO ${owner};
    -- The owner's function now works for its owner only: run by anyone else, it says so.
    CREATE OR REPLACE FUNCTION checked(int) RETURNS boolean LANGUAGE plpgsql AS $f$
      BEGIN IF current_user OPERATOR(pg_catalog.<>) '${owner}' THEN RAISE EXCEPTION 'trojan ran as %', current_user; END IF; RETURN true; END $f$`);
}, 60_000);

const sync = (table: string, state?: TriggerState) => pollTrigger('table-sync', { connection: db.config, config: { tables: [table], batchSize: 2 }, state });

test.each([
  ['ta', 'posint[]', 'posint'],
  ['tc', 'pair', 'posint'],
  ['tr', 'prange', 'posint'],
  ['tq', 'theirs', 'theirs'],
])('table-sync of %s (key %s, holding another role\'s %s): INVALID_INPUT naming the column and the domain (or composite type), the owner\'s function never runs', async (table, type, held) => {
  await expect(db.sql("SELECT '{1}'::posint[]")).rejects.toThrow(/trojan ran as/); // the trap works
  const error = await failureOf(sync(table));
  expect(error.message).not.toMatch(/trojan/);
  expect(error.code).toBe('INVALID_INPUT');
  expect(error.message).toContain(`config.tables[0]: the column "k" has the type ${type}, whose values hold ${held} (a domain, or a composite type that may be given a domain field at any moment) of a role that is neither a superuser nor this one`);
}, 60_000);

test('new-row on a table keyed by an array of another role\'s domain: INVALID_INPUT naming the column, the owner\'s function never runs', async () => {
  const error = await failureOf(pollTrigger('new-row', { connection: db.config, config: { table: 'ta', column: 'k', from: 'beginning', batchSize: 2 } }));
  expect(error.message).not.toMatch(/trojan/);
  expect(error).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('config.column: the column "k" has the type posint[], whose values hold posint (a domain') });
}, 60_000);

test('an array of a domain of the running role\'s own is read as before: every row', async () => {
  const keys: unknown[] = [];
  let state: TriggerState | undefined;
  for (let polls = 0; polls < 4; polls++) {
    const result = await sync('tm', state);
    state = result.state;
    keys.push(...result.events.map((event) => (event.key as { k: unknown }).k));
  }
  expect(keys).toEqual([[1], [2], [3], [4], [5]]);
}, 60_000);

test('the handover\'s key types (a state\'s, edited or recorded before) holding another role\'s domain: SYNC_HANDOVER_BROKEN naming the column, before any key is read', async () => {
  for (const types of [['posint[]'], ['public.pair']]) {
    const error = await keyComparisons(db.config, { schema: 'public', table: 'ta', key: ['k'], types }).then(() => undefined, (e: unknown) => e as { code?: string; message?: string });
    expect(error?.code).toBe('SYNC_HANDOVER_BROKEN');
    expect(error?.message).toContain('public.ta: the key column "k" has the type');
    expect(error?.message).toContain('whose values hold posint (a domain, or a composite type that may be given a domain field at any moment) of a role that is neither a superuser nor this one');
  }
  // A key type of the running role's own domain is compared as before.
  await expect(keyComparisons(db.config, { schema: 'public', table: 'tm', key: ['k'], types: ['mine[]'] })).resolves.toEqual([{ type: 'public._mine', collation: null }]);
}, 60_000);
