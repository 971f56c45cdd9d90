/**
 * A COMMIT answered after the step's deadline (execute.ts `commitUnconfirmed`): the step must not
 * say "cancelled" (QUERY_TIMEOUT invites a retry, a double write), but COMMIT_UNCONFIRMED, telling
 * whether the write is known to be committed. sync-standby-commit.test.ts shows it with a real
 * synchronous standby wait on a server of its own; here, on the suite's server, the COMMIT is made
 * late by a deferred trigger that sleeps through the step's deadline, ignoring the server's
 * statement_timeout and the CancelRequest (it catches query_canceled), then lets the COMMIT through.
 */
import { execute, type ConnectionConfig } from '../../connection/index.js';
import { eventually, failure } from '../harness/failures.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const TIMEOUT_MS = 1000;
// The COMMIT ends about 600 ms after the client's deadline (the timeout and 100 ms of grace), within the
// 1 s execute.ts waits after its cancel for the answer: late, but answered (a margin of 500 ms each side).
const COMMIT_ENDS_AFTER_MS = TIMEOUT_MS + 700;

const db = useTestDatabase('commit_unconfirmed');

beforeAll(async () => {
  await db.sql('CREATE TABLE payments (id int PRIMARY KEY, amount int)');
  // Sleeps at COMMIT until COMMIT_ENDS_AFTER_MS after the transaction started, whatever cancels it meanwhile.
  await db.sql(`CREATE FUNCTION late_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      WHILE clock_timestamp() < transaction_timestamp() + interval '${COMMIT_ENDS_AFTER_MS} milliseconds' LOOP
        BEGIN PERFORM pg_sleep(0.02); EXCEPTION WHEN query_canceled THEN NULL; END;
      END LOOP;
      RETURN NULL;
    END$$`);
  await db.sql('CREATE CONSTRAINT TRIGGER late AFTER INSERT ON payments DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION late_commit()');
}, 60_000);

const config = (applicationName: string): ConnectionConfig => ({ ...db.config, applicationName });
const amounts = async () => (await db.sql<{ amount: number }>('SELECT amount FROM payments ORDER BY amount')).map((row) => row.amount);

test('Execute Query whose COMMIT is answered after the deadline: COMMIT_UNCONFIRMED, committed, with the statement', async () => {
  const text = 'INSERT INTO payments VALUES ($1, $2)';
  const error = await failure(execute(config('late-commit-execute'), { text, values: [1, 10], timeoutMs: TIMEOUT_MS }));
  expect({ code: error.code, message: error.message, query: error.query, parameters: error.parameters }).toEqual({
    code: 'COMMIT_UNCONFIRMED',
    message: `The statement finished and was committed, but only after the step's timeout of ${TIMEOUT_MS} ms (its COMMIT waited for a synchronous standby, or the answer was late). Its write is in the database: do not run the step again.`,
    query: text,
    parameters: [1, 10],
  });
  expect(error.retryable).toBe(false);
  expect(await amounts()).toEqual([10]);
}, 60_000);

test('a tag-checked write (Insert Rows) whose COMMIT is not answered in time: COMMIT_UNCONFIRMED, "may be committed"', async () => {
  const text = 'INSERT INTO payments VALUES ($1, $2)';
  const error = await failure(execute(config('late-commit-insert'), { text, values: [2, 20], timeoutMs: TIMEOUT_MS, expectCommands: ['INSERT'], actionName: 'Insert Rows' }));
  expect({ code: error.code, message: error.message, query: error.query, parameters: error.parameters }).toEqual({
    code: 'COMMIT_UNCONFIRMED',
    message: `The statement finished, but the step's timeout of ${TIMEOUT_MS} ms passed before its COMMIT was confirmed (it may be waiting for a synchronous standby). Its write may be committed: check before running the step again.`,
    query: text,
    parameters: [2, 20],
  });
  // It was: the trigger let the COMMIT through once its time was up.
  expect(await eventually(async () => (await amounts()).includes(20), 10_000)).toBe(true);
}, 60_000);
