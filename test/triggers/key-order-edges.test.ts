/**
 * The key type's own comparison operators (triggers/key-order.ts) where its mutation run found them
 * unpinned: a column whose type has no default btree ordering, a default opclass whose operators
 * live in two schemas (one OPERATOR(schema.op) cannot name them), operators in a schema whose
 * name needs quoting, and a column the table does not have.
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

beforeAll(async () => {
  await db.sql(`CREATE TABLE docs (id int PRIMARY KEY, body json, at int); INSERT INTO docs SELECT i, '{}', i FROM generate_series(1, 5) i;
    CREATE SCHEMA "ext""q"; CREATE EXTENSION citext SCHEMA "ext""q";
    CREATE TABLE names (k "ext""q".citext COLLATE "C" PRIMARY KEY); INSERT INTO names VALUES ('a1'), ('B2'), ('c3'), ('D4'), ('e5'), ('F6'), ('_x7');
    ${SPLIT_OPCLASS};
    CREATE TABLE spots (p point PRIMARY KEY); INSERT INTO spots SELECT point(i % 3, i) FROM generate_series(1, 6) i`);
}, 60_000);

test('a column whose type has no default btree ordering (json) cannot be a cursor: INVALID_INPUT naming the field and the column', async () => {
  const failure = await failureOf(pollTrigger('new-row', { connection: db.config, config: { table: 'docs', column: 'body', from: 'beginning' } }));
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
