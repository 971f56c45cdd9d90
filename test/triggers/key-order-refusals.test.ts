/**
 * The refusals key-order.ts added with REVIEW7 (R131: no USAGE on the schema of the key type's
 * operators; R141's refusal of a key type with a user-made cast from text is gone with REVIEW8 R143:
 * keys are read by the type's input function, which no cast can replace), each compared whole: code, message,
 * problems and fixes, as a user reads them. The mutation run of key-order.ts (2026-11-30, ks-2)
 * found only their messages pinned (trojan-text-cast.test, key-type-schema.test). Each schema the role may
 * not use is named (the type's own, and that of its default opclass's operators when they differ). And the
 * casts that are trusted: a function the flow's role owns, or a superuser.
 */
import { randomBytes } from 'node:crypto';
import { closeAll, type PgActionsError } from '../../connection/index.js';
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf } from './helpers.js';

const suffix = randomBytes(4).toString('hex');
const owner = `cast_owner_${suffix}`, reader = `key_reader_${suffix}`;
// a.mood's default btree opclass, its operators and support function in schema b (an enum's is pg_catalog's anyenum one otherwise).
const CUSTOM_OPCLASS = ['lt <', 'le <=', 'eq =', 'ge >=', 'gt >']
  .map((pair) => pair.split(' '))
  .map(([name, op]) => `CREATE FUNCTION b.${name}(a.mood, a.mood) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT pg_catalog.enum_cmp($1, $2) ${op} 0';
    CREATE OPERATOR b.${op} (LEFTARG = a.mood, RIGHTARG = a.mood, FUNCTION = b.${name});`)
  .join('\n') +
  `CREATE FUNCTION b.cmp(a.mood, a.mood) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT pg_catalog.enum_cmp($1, $2)';
   CREATE OPERATOR CLASS b.mood_ops DEFAULT FOR TYPE a.mood USING btree AS
     OPERATOR 1 b.<, OPERATOR 2 b.<=, OPERATOR 3 b.=, OPERATOR 4 b.>=, OPERATOR 5 b.>, FUNCTION 1 b.cmp(a.mood, a.mood);`;
const db = useTestDatabase('key_order_refusals', {
  beforeDrop: () => db.sql(`DROP CAST IF EXISTS (text AS mood); DROP OWNED BY ${owner}, ${reader}; DROP ROLE IF EXISTS ${owner}; DROP ROLE IF EXISTS ${reader}`).then(() => undefined),
});

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${owner}; CREATE ROLE ${reader} LOGIN PASSWORD 'reader-pass';
    CREATE TYPE mood AS ENUM ('a', 'b', 'c'); CREATE TABLE moods (k mood PRIMARY KEY); INSERT INTO moods VALUES ('a'), ('b'), ('c');
    CREATE FUNCTION evil(text) RETURNS mood LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'evil ran as %', current_user; END $f$;
    ALTER FUNCTION evil(text) OWNER TO ${owner}; CREATE CAST (text AS mood) WITH FUNCTION evil(text);
    CREATE SCHEMA ext; CREATE EXTENSION citext SCHEMA ext;
    CREATE TABLE tags (k ext.citext PRIMARY KEY); INSERT INTO tags VALUES ('a'), ('B');
    GRANT SELECT ON tags TO ${reader};
    CREATE SCHEMA a; CREATE SCHEMA b; CREATE TYPE a.plain AS ENUM ('x', 'y'); CREATE TYPE a.mood AS ENUM ('x', 'y');
    CREATE TABLE plains (k a.plain PRIMARY KEY); INSERT INTO plains VALUES ('x'), ('y');
    ${CUSTOM_OPCLASS}
    CREATE TABLE customs (k a.mood PRIMARY KEY); INSERT INTO customs VALUES ('x'), ('y');
    GRANT SELECT ON plains, customs TO ${reader}`);
}, 60_000);
afterAll(() => closeAll());

const fields = (error: PgActionsError) => ({ code: error.code, message: error.message, problems: error.problems, fixes: error.fixes });

test('a key type with a user-made cast from text is not refused any more (REVIEW8 R143): keys are read by the type\'s input, the cast never runs', async () => {
  const first = await pollTrigger('table-sync', { connection: db.config, config: { tables: ['public.moods'], batchSize: 2 } });
  const rest = await pollTrigger('table-sync', { connection: db.config, config: { tables: ['public.moods'], batchSize: 2 }, state: first.state });
  expect([...first.events, ...rest.events].map((event) => (event.key as { k: string }).k)).toEqual(['a', 'b', 'c']);
}, 60_000);

test('no USAGE on the schema of the key type and its operators: PERMISSION_DENIED naming the schema once, and both fixes', async () => {
  const error = await failureOf(pollTrigger('new-row', { connection: { ...db.config, user: reader, password: 'reader-pass' }, config: { table: 'tags', column: 'k', from: 'beginning' } }));
  expect(fields(error)).toEqual({
    code: 'PERMISSION_DENIED',
    message:
      'config.column: the column "k" has the type ext.citext; pg-actions compares its values with that type\'s own operators, named with their schema, ' +
      'and this role has no USAGE on schema "ext"',
    problems: ['config.column: no USAGE on schema "ext" (the type of "k")'],
    fixes: ['GRANT USAGE ON SCHEMA "ext" TO <role>;', 'Or connect as a role that has USAGE on the schema the type (e.g. citext) was installed in.'],
  });
}, 60_000);

const denial = (table: string) => failureOf(pollTrigger('table-sync', { connection: { ...db.config, user: reader, password: 'reader-pass' }, config: { tables: [table] } }));
const usageMessage = (type: string, schemas: string) =>
  `config.tables[0]: the column "k" has the type ${type}; pg-actions compares its values with that type's own operators, named with their schema, and this role has no USAGE on ${schemas}`;

test('only the key type\'s own schema unusable (an enum, whose operators are pg_catalog\'s): that schema is named', async () => {
  expect(fields(await denial('plains'))).toEqual({
    code: 'PERMISSION_DENIED',
    message: usageMessage('a.plain', 'schema "a"'),
    problems: ['config.tables[0]: no USAGE on schema "a" (the type of "k")'],
    fixes: ['GRANT USAGE ON SCHEMA "a" TO <role>;', 'Or connect as a role that has USAGE on the schema the type (e.g. citext) was installed in.'],
  });
}, 60_000);

test('the type\'s schema and its operators\' schema both unusable: each named once, in that order, a grant for each; then the operators\' alone', async () => {
  expect(fields(await denial('customs'))).toEqual({
    code: 'PERMISSION_DENIED',
    message: usageMessage('a.mood', 'schema "a", schema "b"'),
    problems: ['config.tables[0]: no USAGE on schema "a", schema "b" (the type of "k")'],
    fixes: ['GRANT USAGE ON SCHEMA "a" TO <role>;', 'GRANT USAGE ON SCHEMA "b" TO <role>;', 'Or connect as a role that has USAGE on the schema the type (e.g. citext) was installed in.'],
  });
  await db.sql(`GRANT USAGE ON SCHEMA a TO ${reader}`);
  const operatorsOnly = await denial('customs');
  expect(operatorsOnly.message).toBe(usageMessage('a.mood', 'schema "b"'));
  expect(operatorsOnly.fixes[0]).toBe('GRANT USAGE ON SCHEMA "b" TO <role>;');
}, 60_000);

test('casts from text whose function the flow\'s own role or a superuser owns are trusted: the sync reads on, through its cursor', async () => {
  const own = `own_caster_${suffix}`;
  await db.sql(`CREATE ROLE ${own} LOGIN PASSWORD 'own-pass'; CREATE SCHEMA own AUTHORIZATION ${own}; SET ROLE ${own};
    CREATE TYPE own.mood AS ENUM ('x', 'y', 'z'); CREATE TABLE own.moods (k own.mood PRIMARY KEY); INSERT INTO own.moods VALUES ('x'), ('y'), ('z');
    CREATE FUNCTION own.mood_of(text) RETURNS own.mood LANGUAGE sql STABLE AS $f$ SELECT e FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::own.mood)) AS e WHERE e::text = $1 $f$;
    CREATE CAST (text AS own.mood) WITH FUNCTION own.mood_of(text); RESET ROLE;
    CREATE TYPE sup AS ENUM ('x', 'y', 'z'); CREATE TABLE sups (k sup PRIMARY KEY); INSERT INTO sups VALUES ('x'), ('y'), ('z');
    CREATE FUNCTION sup_of(text) RETURNS sup LANGUAGE sql STABLE AS $f$ SELECT e FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::sup)) AS e WHERE e::text = $1 $f$;
    CREATE CAST (text AS sup) WITH FUNCTION sup_of(text); GRANT SELECT ON sups TO ${own}`);
  try {
    for (const table of ['own.moods', 'public.sups']) {
      const keys: unknown[] = [];
      let state: TriggerState | undefined;
      for (let polls = 0; polls < 3; polls++) {
        const result = await pollTrigger('table-sync', { connection: { ...db.config, user: own, password: 'own-pass' }, config: { tables: [table], batchSize: 2 }, state });
        state = result.state;
        keys.push(...result.events.map((event) => (event.key as { k: string }).k));
      }
      expect({ table, keys }).toEqual({ table, keys: ['x', 'y', 'z'] });
    }
  } finally {
    await db.sql(`DROP CAST (text AS sup); DROP CAST (text AS own.mood); DROP SCHEMA own CASCADE; DROP TABLE sups; DROP FUNCTION sup_of(text); DROP TYPE sup`);
    await closeAll();
    await db.sql(`DROP OWNED BY ${own}; DROP ROLE ${own}`);
  }
}, 60_000);
