/**
 * The key type's own comparison operators (triggers/key-order.ts) where its mutation run found them
 * unpinned: a column whose type has no default btree ordering, a default opclass whose operators
 * live in two schemas (one OPERATOR(schema.op) cannot name them), operators in a schema whose
 * name needs quoting, a column the table does not have, an opclass that lacks an operator, and a
 * look-alike that would match operands left uncast, operators of one schema named differently.
 */
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { columnOrders } from '../../triggers/key-order.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf } from './helpers.js';

const db = useTestDatabase('key_order_edges');

/** A default btree opclass for point (which has none): by x, then y; `<`, `<=` and `=` in schema lo, `>=` and `>` in schema hi. */
const SPLIT_OPCLASS = `CREATE SCHEMA lo; CREATE SCHEMA hi;
  CREATE FUNCTION lo.pt_cmp(a point, b point) RETURNS int LANGUAGE sql IMMUTABLE STRICT
    AS 'SELECT CASE WHEN a[0] < b[0] OR (a[0] = b[0] AND a[1] < b[1]) THEN -1 WHEN a[0] = b[0] AND a[1] = b[1] THEN 0 ELSE 1 END';
  CREATE FUNCTION lo.pt_lt(point, point) RETURNS bool LANGUAGE sql IMMUTABLE STRICT AS 'SELECT lo.pt_cmp($1, $2) < 0';
  CREATE FUNCTION lo.pt_le(point, point) RETURNS bool LANGUAGE sql IMMUTABLE STRICT AS 'SELECT lo.pt_cmp($1, $2) <= 0';
  CREATE FUNCTION lo.pt_eq(point, point) RETURNS bool LANGUAGE sql IMMUTABLE STRICT AS 'SELECT lo.pt_cmp($1, $2) = 0';
  CREATE FUNCTION lo.pt_ge(point, point) RETURNS bool LANGUAGE sql IMMUTABLE STRICT AS 'SELECT lo.pt_cmp($1, $2) >= 0';
  CREATE FUNCTION lo.pt_gt(point, point) RETURNS bool LANGUAGE sql IMMUTABLE STRICT AS 'SELECT lo.pt_cmp($1, $2) > 0';
  CREATE OPERATOR lo.< (LEFTARG = point, RIGHTARG = point, FUNCTION = lo.pt_lt);
  CREATE OPERATOR lo.<= (LEFTARG = point, RIGHTARG = point, FUNCTION = lo.pt_le);
  CREATE OPERATOR lo.= (LEFTARG = point, RIGHTARG = point, FUNCTION = lo.pt_eq);
  CREATE OPERATOR hi.>= (LEFTARG = point, RIGHTARG = point, FUNCTION = lo.pt_ge);
  CREATE OPERATOR hi.> (LEFTARG = point, RIGHTARG = point, FUNCTION = lo.pt_gt);
  CREATE OPERATOR CLASS lo.point_ops DEFAULT FOR TYPE point USING btree AS
    OPERATOR 1 lo.<, OPERATOR 2 lo.<=, OPERATOR 3 lo.=, OPERATOR 4 hi.>=, OPERATOR 5 hi.>, FUNCTION 1 lo.pt_cmp(point, point)`;

/** A default btree opclass for circle (which has none), by radius, that lacks its `>` (strategy 5). */
const INCOMPLETE_OPCLASS = `CREATE SCHEMA part;
  CREATE FUNCTION part.c_cmp(a circle, b circle) RETURNS int LANGUAGE sql IMMUTABLE STRICT AS 'SELECT CASE WHEN radius(a) < radius(b) THEN -1 WHEN radius(a) = radius(b) THEN 0 ELSE 1 END';
  CREATE FUNCTION part.c_lt(circle, circle) RETURNS bool LANGUAGE sql IMMUTABLE STRICT AS 'SELECT part.c_cmp($1, $2) < 0';
  CREATE FUNCTION part.c_le(circle, circle) RETURNS bool LANGUAGE sql IMMUTABLE STRICT AS 'SELECT part.c_cmp($1, $2) <= 0';
  CREATE FUNCTION part.c_eq(circle, circle) RETURNS bool LANGUAGE sql IMMUTABLE STRICT AS 'SELECT part.c_cmp($1, $2) = 0';
  CREATE FUNCTION part.c_ge(circle, circle) RETURNS bool LANGUAGE sql IMMUTABLE STRICT AS 'SELECT part.c_cmp($1, $2) >= 0';
  CREATE OPERATOR part.< (LEFTARG = circle, RIGHTARG = circle, FUNCTION = part.c_lt);
  CREATE OPERATOR part.<= (LEFTARG = circle, RIGHTARG = circle, FUNCTION = part.c_le);
  CREATE OPERATOR part.= (LEFTARG = circle, RIGHTARG = circle, FUNCTION = part.c_eq);
  CREATE OPERATOR part.>= (LEFTARG = circle, RIGHTARG = circle, FUNCTION = part.c_ge);
  CREATE OPERATOR CLASS part.circle_ops DEFAULT FOR TYPE circle USING btree AS
    OPERATOR 1 part.<, OPERATOR 2 part.<=, OPERATOR 3 part.=, OPERATOR 4 part.>=, FUNCTION 1 part.c_cmp(circle, circle)`;

/** Default btree opclasses in one schema whose `>` are named differently: box by area (`>`), lseg by length (`#>`). */
const NAMED_OPCLASSES = `CREATE SCHEMA nm;
  CREATE FUNCTION nm.b_cmp(a box, b box) RETURNS int LANGUAGE sql IMMUTABLE STRICT AS 'SELECT sign(area(a) - area(b))::int';
  CREATE FUNCTION nm.l_cmp(a lseg, b lseg) RETURNS int LANGUAGE sql IMMUTABLE STRICT AS 'SELECT sign(length(a) - length(b))::int';
  ${['lt:<', 'le:<=', 'eq:=', 'ge:>=', 'gt:>'].map((pair) => {
    const [name, op] = pair.split(':');
    return `CREATE FUNCTION nm.b_${name}(box, box) RETURNS bool LANGUAGE sql IMMUTABLE STRICT AS 'SELECT nm.b_cmp($1, $2) ${op} 0';
      CREATE OPERATOR nm.${op} (LEFTARG = box, RIGHTARG = box, FUNCTION = nm.b_${name});
      CREATE FUNCTION nm.l_${name}(lseg, lseg) RETURNS bool LANGUAGE sql IMMUTABLE STRICT AS 'SELECT nm.l_cmp($1, $2) ${op} 0';
      CREATE OPERATOR nm.#${op} (LEFTARG = lseg, RIGHTARG = lseg, FUNCTION = nm.l_${name});`;
  }).join('\n')}
  CREATE OPERATOR CLASS nm.box_ops DEFAULT FOR TYPE box USING btree AS
    OPERATOR 1 nm.<, OPERATOR 2 nm.<=, OPERATOR 3 nm.=, OPERATOR 4 nm.>=, OPERATOR 5 nm.>, FUNCTION 1 nm.b_cmp(box, box);
  CREATE OPERATOR CLASS nm.lseg_ops DEFAULT FOR TYPE lseg USING btree AS
    OPERATOR 1 nm.#<, OPERATOR 2 nm.#<=, OPERATOR 3 nm.#=, OPERATOR 4 nm.#>=, OPERATOR 5 nm.#>, FUNCTION 1 nm.l_cmp(lseg, lseg)`;

beforeAll(async () => {
  await db.sql(`CREATE TABLE docs (id int PRIMARY KEY, body json, at int); INSERT INTO docs SELECT i, '{}', i FROM generate_series(1, 5) i;
    CREATE SCHEMA "ext""q"; CREATE EXTENSION citext SCHEMA "ext""q";
    CREATE TABLE names (k "ext""q".citext COLLATE "C" PRIMARY KEY); INSERT INTO names VALUES ('a1'), ('B2'), ('c3'), ('D4'), ('e5'), ('F6'), ('_x7');
    ${SPLIT_OPCLASS};
    CREATE TABLE spots (p point PRIMARY KEY); INSERT INTO spots SELECT point(i % 3, i) FROM generate_series(1, 6) i;
    ${INCOMPLETE_OPCLASS};
    CREATE TABLE rings (c circle PRIMARY KEY); INSERT INTO rings SELECT circle(point(0, 0), i) FROM generate_series(1, 4) i;
    -- a domain over citext, and a look-alike \`>\` in citext's own schema taking (that domain, citext): an exact match for operands left uncast
    CREATE DOMAIN "ext""q".cdom AS "ext""q".citext; CREATE TABLE dnames (k "ext""q".cdom COLLATE "C" PRIMARY KEY); INSERT INTO dnames SELECT k FROM names;
    CREATE FUNCTION "ext""q".trap(a "ext""q".cdom, b "ext""q".citext) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'look-alike >(cdom, citext) ran'; END $f$;
    CREATE OPERATOR "ext""q".> (LEFTARG = "ext""q".cdom, RIGHTARG = "ext""q".citext, FUNCTION = "ext""q".trap);
    ${NAMED_OPCLASSES};
    CREATE TABLE shapes (a box, b lseg, PRIMARY KEY (a, b)); INSERT INTO shapes SELECT box(point(0, 0), point(i % 3 + 1, 1)), lseg(point(0, 0), point(i, 0)) FROM generate_series(1, 6) i`);
}, 60_000);

test('a column whose type has no default btree ordering (json) cannot be a cursor: INVALID_INPUT naming the field and the column', async () => {
  // Through columnOrders itself: new-row's poll now meets the json column in its horizon's ORDER BY first (a plain DATABASE_ERROR).
  const failure = await failureOf(columnOrders(db.config, '"public"."docs"', ['body', 'id'], 'config.column'));
  expect(failure.code).toBe('INVALID_INPUT');
  expect(failure.message).toBe('config.column: the column "body" has a type without a default btree ordering (or it was dropped): its rows cannot be read in order');
  expect(failure.problems).toEqual(['config.column: "body" cannot be ordered']);
});

test('a column the table does not have has no ordering either', async () => {
  const failure = await failureOf(columnOrders(db.config, '"public"."docs"', ['id', 'gone'], 'config.tables[0]'));
  expect(failure.code).toBe('INVALID_INPUT');
  expect(failure.problems).toEqual(['config.tables[0]: "gone" cannot be ordered']);
});

test('a default opclass whose operators live in two schemas is refused (INVALID_INPUT), never compared with operators that do not exist', async () => {
  // The opclass is sound: ORDER BY uses it.
  expect((await db.sql('SELECT p[0] AS x, p[1] AS y FROM spots ORDER BY p')).map((r) => [r.x, r.y])).toEqual([[0, 3], [0, 6], [1, 1], [1, 4], [2, 2], [2, 5]]);
  const failure = await failureOf(pollTrigger('table-sync', { connection: db.config, config: { tables: ['spots'], batchSize: 2 } }));
  expect(failure.code).toBe('INVALID_INPUT');
  expect(failure.problems).toEqual(['config.tables[0]: "p" cannot be ordered']);
});

test('operators in a schema whose name needs quoting ("ext""q".citext): every row once, in the key\'s order', async () => {
  const reference = (await db.sql('SELECT k FROM names ORDER BY k')).map((row) => row.k);
  expect(reference).toEqual(['_x7', 'a1', 'B2', 'c3', 'D4', 'e5', 'F6']); // citext's order, not C's
  const keys: unknown[] = [];
  let state: TriggerState | undefined;
  for (let polls = 0; polls < 10; polls++) {
    const result = await pollTrigger('table-sync', { connection: db.config, config: { tables: ['names'], batchSize: 2 }, state });
    state = result.state;
    if (result.events.length === 0) break;
    keys.push(...result.events.map((event) => (event.key as { k: string }).k));
  }
  expect(keys).toEqual(reference);
});

test('a default opclass without one of the five btree operators is refused (INVALID_INPUT), not compared with an operator it lacks', async () => {
  const failure = await failureOf(pollTrigger('table-sync', { connection: db.config, config: { tables: ['rings'], batchSize: 2 } }));
  expect(failure.code).toBe('INVALID_INPUT');
  expect(failure.problems).toEqual(['config.tables[0]: "c" cannot be ordered']);
});

test('both operands are cast to the opclass\'s input type: a look-alike taking the key\'s domain and its base type, in the opclass\'s own schema, never runs', async () => {
  await expect(db.sql(`SELECT count(*) FROM dnames WHERE k OPERATOR("ext""q".>) 'b'::"ext""q".citext`)).rejects.toThrow(/look-alike >\(cdom, citext\) ran/);
  const keys: unknown[] = [];
  let state: TriggerState | undefined;
  for (let polls = 0; polls < 10; polls++) {
    const result = await pollTrigger('table-sync', { connection: db.config, config: { tables: ['dnames'], batchSize: 2 }, state });
    state = result.state;
    if (result.events.length === 0) break;
    keys.push(...result.events.map((event) => (event.key as { k: string }).k));
  }
  expect(keys).toEqual(['_x7', 'a1', 'B2', 'c3', 'D4', 'e5', 'F6']);
});

test('a key whose columns\' operators share a schema but not their names (`>` and `#>`): compared column by column, every row once, in the key\'s order', async () => {
  const reference = (await db.sql('SELECT a::text AS a, b::text AS b FROM shapes ORDER BY a, b')).map((row) => `${row.a} ${row.b}`);
  const keys: string[] = [];
  let state: TriggerState | undefined;
  for (let polls = 0; polls < 10; polls++) {
    const result = await pollTrigger('table-sync', { connection: db.config, config: { tables: ['shapes'], batchSize: 2 }, state });
    state = result.state;
    if (result.events.length === 0) break;
    keys.push(...result.events.map((event) => { const key = event.key as { a: unknown; b: unknown }; return `${String(key.a)} ${String(key.b)}`; }));
  }
  expect(new Set(reference).size).toBe(6);
  expect(keys).toEqual(reference);
});
