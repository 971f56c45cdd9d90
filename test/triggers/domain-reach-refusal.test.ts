/**
 * REVIEW8 R142's refusal (triggers/domain-reach.ts, in key-order.ts' ORDER_SQL), compared whole: code,
 * message, problems and fixes, as a user reads them (trojan-domain-container.test pins the message's
 * start only; the mutation run of 2026-11-30 (mk-3) found the problems and fixes unpinned). And the two
 * owners it trusts, seen from a role that is not a superuser: a superuser's domain, and the role's own
 * (run as a superuser, the suite's role is both at once, so neither rule was seen alone).
 */
import { randomBytes } from 'node:crypto';
import { closeAll, type PgActionsError } from '../../connection/index.js';
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf } from './helpers.js';

const suffix = randomBytes(4).toString('hex');
const owner = `domain_owner_${suffix}`, reader = `domain_reader_${suffix}`;
const db = useTestDatabase('domain_reach_refusal', {
  beforeDrop: () => db.sql(`DROP OWNED BY ${owner}, ${reader} CASCADE; DROP ROLE IF EXISTS ${owner}; DROP ROLE IF EXISTS ${reader}`).then(() => undefined),
});

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${owner}; CREATE ROLE ${reader} LOGIN PASSWORD 'reader-pass';
    CREATE DOMAIN theirs AS int CHECK (VALUE > 0); ALTER DOMAIN theirs OWNER TO ${owner};
    CREATE DOMAIN theirs_too AS int CHECK (VALUE > 0); ALTER DOMAIN theirs_too OWNER TO ${owner};
    CREATE TYPE both_held AS (a theirs, b theirs_too);
    CREATE TABLE held (k theirs[] PRIMARY KEY); INSERT INTO held SELECT ARRAY[g] FROM generate_series(1, 3) g;
    CREATE TABLE two_held (k both_held PRIMARY KEY); INSERT INTO two_held SELECT ROW(g, g)::both_held FROM generate_series(1, 3) g;
    -- A superuser's domain (the suite's role), and one of the reader's own: both trusted.
    CREATE DOMAIN supers AS int CHECK (VALUE > 0);
    CREATE TABLE by_super (k supers[] PRIMARY KEY); INSERT INTO by_super SELECT ARRAY[g] FROM generate_series(1, 5) g;
    CREATE DOMAIN readers AS int CHECK (VALUE > 0); ALTER DOMAIN readers OWNER TO ${reader};
    CREATE TABLE by_reader (k readers[] PRIMARY KEY); INSERT INTO by_reader SELECT ARRAY[g] FROM generate_series(1, 5) g;
    GRANT SELECT ON held, by_super, by_reader TO ${reader}`);
}, 60_000);
afterAll(() => closeAll());

const fields = (error: PgActionsError) => ({ code: error.code, message: error.message, problems: error.problems, fixes: error.fixes });
const FIX = 'Key the table by a type that holds no domain of another role (a domain at the top is fine: its base type is read), or connect as the domain\'s owner.';

test('a key holding another role\'s domain: INVALID_INPUT with its message, problem and fix, whole', async () => {
  const error = await failureOf(pollTrigger('table-sync', { connection: db.config, config: { tables: ['held'], batchSize: 2 } }));
  expect(fields(error)).toEqual({
    code: 'INVALID_INPUT',
    message:
      'config.tables[0]: the column "k" has the type theirs[], whose values hold theirs (a domain, or a composite type that may be given a domain field at any moment) ' +
      'of a role that is neither a superuser nor this one; reading a key of that type (a cursor, a bound) runs the domain\'s CHECK constraints, its owner\'s code, with this role\'s rights',
    problems: ['config.tables[0]: the type of "k" holds another role\'s domain or composite type (theirs)'],
    fixes: [FIX],
  });
}, 60_000);

test('every domain a key holds is named, in the order they were made', async () => {
  const error = await failureOf(pollTrigger('new-row', { connection: db.config, config: { table: 'two_held', column: 'k', from: 'beginning' } }));
  expect(fields(error)).toEqual({
    code: 'INVALID_INPUT',
    message: expect.stringContaining('config.column: the column "k" has the type both_held, whose values hold theirs, theirs_too (a domain'),
    problems: ['config.column: the type of "k" holds another role\'s domain or composite type (theirs, theirs_too)'],
    fixes: [FIX],
  });
}, 60_000);

test('a role that is not a superuser reads keys holding a superuser\'s domain, or its own, through their cursors: every row', async () => {
  const connection = { ...db.config, user: reader, password: 'reader-pass' };
  for (const table of ['by_super', 'by_reader']) {
    const keys: unknown[] = [];
    let state: TriggerState | undefined;
    for (let polls = 0; polls < 4; polls++) {
      const result = await pollTrigger('table-sync', { connection, config: { tables: [table], batchSize: 2 }, state });
      state = result.state;
      keys.push(...result.events.map((event) => (event.key as { k: unknown }).k));
    }
    expect({ table, keys }).toEqual({ table, keys: [[1], [2], [3], [4], [5]] });
  }
  // The same role is refused another role's domain (the rule is not "any key read by a non-superuser").
  const error = await failureOf(pollTrigger('table-sync', { connection, config: { tables: ['held'], batchSize: 2 } }));
  expect(error.code).toBe('INVALID_INPUT');
}, 60_000);
