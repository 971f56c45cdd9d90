/**
 * Property-based: every action, fed generated inputs (well-formed and malformed), either runs
 * and returns output matching its output schema, or rejects with a PgActionsError — INVALID_INPUT
 * naming field paths for bad input — and never crashes, hangs or leaks an unhandled rejection.
 * FUZZ_RUNS (default 1000 per action) and FUZZ_SEED (default 20261122) raise and vary it.
 */
import fc from 'fast-check';
import { actions, runAction } from '../../actions/index.js';
import { PgActionsError, type ConnectionConfig } from '../../connection/index.js';
import { validatorFor } from '../../schemas/validate.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { expectNoSecretIn } from '../harness/secrets.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261122);

const db = useTestDatabase('fuzz');
let connection: ConnectionConfig;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  await db.sql(`CREATE TABLE items (id serial PRIMARY KEY, name text, qty int CHECK (qty >= 0), tags text[], meta jsonb, at timestamptz)`);
  await db.sql(`CREATE TABLE canary (id int PRIMARY KEY, v text NOT NULL)`);
  await db.sql(`INSERT INTO canary VALUES (1, 'intact')`);
  await db.sql(`CREATE SCHEMA "we""ird sch.ema"`);
  await db.sql(`CREATE TABLE "we""ird sch.ema"."Odd ""one""" (v int)`);
  connection = { ...db.config, statementTimeoutMs: 2000, maxResultBytes: 64 * 1024 };
  process.on('unhandledRejection', onUnhandled);
}, 60_000);
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
}, 30_000);

const jsonish = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double({ noNaN: false }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.oneof(fc.integer(), fc.string()), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.string(), fc.integer()), { maxKeys: 3 }),
  fc.constantFrom('{{trigger.name}}', '{{trigger.qty}}', '{{trigger.tags}}', '{{trigger.missing}}', '{{now}}', '{{default trigger.nope 7}}', '{{', 'x {{trigger.name}} y'),
);

const sqlPiece = fc.constantFrom(
  'SELECT', 'UPDATE items SET', 'DELETE FROM items', 'INSERT INTO items (name) VALUES', 'FROM items', 'WHERE', 'id =', 'qty =', 'name =',
  '$1', '$2', '$3', "'{{trigger.name}}'", '{{trigger.qty}}', '*', ',', '(', ')', '1', "'x'", '--', '/*', '*/', ';', 'LIMIT 3', 'RETURNING *',
  'name', 'qty', 'tags', 'ANY($1::int[])', 'pg_sleep(0.001)', 'now()', 'NULL', '"', "E'\\\\'", '$$', 'canary',
  // Where a hand-written scanner and PostgreSQL used to disagree (issue 9): read by PostgreSQL's own scanner now.
  '-- c\r', "E'\\''\n'x'", '{{!c}}', '{{trigger.tags}}', '{{trigger.qty}}::int', "'{{a,b},{c,d}}'",
);
const query = fc.oneof(
  fc.array(sqlPiece, { minLength: 1, maxLength: 10 }).map((parts) => parts.join(' ')),
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    'SELECT id, name FROM items WHERE qty > $1',
    'UPDATE items SET qty = $1 WHERE id = $2',
    'DELETE FROM items WHERE id = $1',
    'SELECT {{trigger.qty}}::int + 1 AS n',
  ),
);
const queryInput = fc.record(
  { query, parameters: fc.array(jsonish, { maxLength: 4 }), timeoutMs: fc.integer({ min: 1, max: 3000 }), maxResultBytes: fc.integer({ min: 1024, max: 100000 }) },
  { requiredKeys: ['query'] },
);
const columnName = fc.oneof(fc.constantFrom('name', 'qty', 'tags', 'meta', 'at', 'id', 'nope'), fc.string({ minLength: 1, maxLength: 12 }));
const insertInput = fc.record(
  {
    table: fc.oneof(fc.constantFrom('items', 'public.items', '"items"', 'missing_table', 'a.b.c', '"unclosed', '{{trigger.table}}'), fc.string({ maxLength: 20 })),
    columns: fc.dictionary(columnName, jsonish, { maxKeys: 4 }),
    timeoutMs: fc.integer({ min: 1, max: 3000 }),
  },
  { requiredKeys: ['table', 'columns'] },
);
const overviewInput = fc.record(
  {
    schema: fc.oneof(fc.constantFrom('public', 'PUBLIC', 'pg_catalog', 'missing', '"public"', 'we"ird sch.ema', ''), fc.string({ maxLength: 70 })),
    exact: fc.oneof(fc.boolean(), jsonish),
    includeViews: fc.oneof(fc.boolean(), jsonish),
    timeoutMs: fc.integer({ min: 0, max: 3000 }),
    maxResultBytes: fc.integer({ min: 0, max: 100000 }),
  },
  { requiredKeys: [] },
);
const anyInput = fc.oneof(fc.anything(), fc.jsonValue());
/** Inputs that are right in shape and arity, with generated values: the "accepted and run" path. */
const text = fc.string({ maxLength: 30 });
const valid: Record<string, fc.Arbitrary<unknown>> = {
  'query-rows': fc.record({ query: fc.constant('SELECT id, name FROM items WHERE qty > $1 OR name = $2'), parameters: fc.tuple(fc.integer(), text) }),
  'insert-row': fc.record({ table: fc.constant('items'), columns: fc.record({ name: text, qty: fc.nat(), tags: fc.array(text, { maxLength: 3 }), meta: fc.jsonValue() }) }),
  'update-rows': fc.record({ query: fc.constant('UPDATE items SET name = $1 WHERE qty = $2'), parameters: fc.tuple(text, fc.nat()) }),
  'delete-rows': fc.record({ query: fc.constant('DELETE FROM items WHERE name = $1'), parameters: fc.tuple(text) }),
  'execute-query': fc.record({ query: fc.constant('SELECT $1::text AS v, {{trigger.qty}}::int AS q'), parameters: fc.tuple(text) }),
  'schema-overview': fc.record({ schema: fc.constantFrom('public', 'we"ird sch.ema'), exact: fc.boolean(), includeViews: fc.boolean() }, { requiredKeys: [] }),
};

const trigger = { name: "O'Brien; --", qty: 3, tags: ['a', 'b'], table: 'items' };

describe.each(actions.map((action) => [action.key, action] as const))('%s', (key, action) => {
  const checkOutput = validatorFor(action.output);
  const wellFormed = key === 'insert-row' ? insertInput : key === 'schema-overview' ? overviewInput : queryInput;

  test(`${RUNS} generated inputs each run cleanly or fail with a coded error`, async () => {
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof({ weight: 2, arbitrary: valid[key]! }, { weight: 4, arbitrary: wellFormed as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: anyInput }),
        async (input) => {
        try {
          const output = await runAction(key, { connection, input, context: { trigger, now: '2026-01-15T10:30:00Z' } });
          expect(checkOutput(output, 'output')).toEqual([]);
          outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
        } catch (error) {
          if (!(error instanceof PgActionsError)) throw error;
          expectNoSecretIn(error);
          outcomes.set(error.code, (outcomes.get(error.code) ?? 0) + 1);
          expect(error.fixes.length).toBeGreaterThan(0);
          if (error.code === 'INVALID_INPUT') {
            // Every INVALID_INPUT names at least one field.
            expect(error.problems?.length).toBeGreaterThan(0);
            for (const problem of error.problems ?? []) expect(problem).toMatch(/^(input|connection|context)\b/);
          }
        }
        },
      ),
      { numRuns: RUNS, seed: SEED, interruptAfterTimeLimit: 150_000, markInterruptAsFailure: true },
    );
    if (process.env.FUZZ_REPORT) console.log(key, Object.fromEntries(outcomes));
    // Both paths were exercised, and the canary survived everything.
    expect(outcomes.get('INVALID_INPUT') ?? 0).toBeGreaterThan(0);
    expect(outcomes.get('ok') ?? 0).toBeGreaterThan(0);
    expect([...outcomes.keys()].length).toBeGreaterThan(1);
    expect(await db.sql('SELECT id, v FROM canary')).toEqual([{ id: 1, v: 'intact' }]);
    expect(unhandled).toEqual([]);
  }, 180_000);
});
