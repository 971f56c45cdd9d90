/**
 * What a step decides from the timing of its replies (execute.ts `runWith`, `settlesEarly`, `send`,
 * `finishTail`), with a loopback relay in front of the suite's server that holds back whatever follows
 * a DO's or a COMMIT's CommandComplete: the step's outcome is known before the rest of its round trip
 * arrives. A step must not answer before what can still refuse it (a user's BEGIN, the tag check of
 * Update Rows), a read-only step past its deadline is a timeout, not an unconfirmed commit, and
 * pg-actions' own round trips and the tail get the step's timeout plus a grace, not minus.
 */
import { closeAll, execute, type ConnectionConfig } from '../../connection/index.js';
import { earlyAnswer, tailsInFlight } from '../../connection/step-tail.js';
import { serverLogin } from '../harness/db.js';
import { failure } from '../harness/failures.js';
import { isCommandComplete, startMessageRelay, type MessageRelay } from '../harness/message-relay.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('reply_timing');
let relay: MessageRelay;
/** How long the relay holds back what follows a DO's or COMMIT's CommandComplete (read at each message). */
let holdMs = 300;

beforeAll(async () => {
  relay = await startMessageRelay(serverLogin(), () => (message) => (isCommandComplete(message, /^(DO|COMMIT)$/) ? { holdAfterMs: holdMs } : undefined));
  await db.sql('CREATE TABLE timed (x int)');
}, 60_000);
afterAll(async () => {
  earlyAnswer.enabled = false;
  await closeAll();
  await relay?.close();
}, 60_000);
afterEach(() => {
  earlyAnswer.enabled = false; // off by default (step-tail.ts)
  holdMs = 300;
});

const through = (applicationName: string): ConnectionConfig => ({ ...db.config, host: '127.0.0.1', port: relay.port, sslMode: 'disable', applicationName });
const pidOf = async (config: ConnectionConfig) => (await execute(config, { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]!.pid as number;
async function tailsEnded(): Promise<void> {
  const until = performance.now() + 20_000;
  while (tailsInFlight() > 0 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  expect(tailsInFlight()).toBe(0);
}

describe('the early answer waits for what can still refuse the step (its replies after the statement arrive late)', () => {
  test("a user's BEGIN is refused, not answered at the guard's COMMIT", async () => {
    earlyAnswer.enabled = true;
    const error = await failure(execute(through('reply-timing-begin'), { text: 'BEGIN' }));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(/^BEGIN leaves a transaction open after the step/);
    await tailsEnded();
  }, 60_000);

  test('Update Rows refuses a statement of another kind: nothing answered before its tag check', async () => {
    earlyAnswer.enabled = true;
    await db.sql('INSERT INTO timed VALUES (1)');
    const statement = { text: 'DO $$BEGIN UPDATE timed SET x = 2; END$$', expectCommands: ['UPDATE'], actionName: 'Update Rows' };
    const error = await failure(execute(through('reply-timing-tag'), statement));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(/^Update Rows only runs UPDATE statements; this one is a DO/);
    await tailsEnded();
    expect(await db.sql('SELECT x FROM timed')).toEqual([{ x: 1 }]);
    await db.sql('DELETE FROM timed');
  }, 60_000);
});

test('a read-only step whose statement finished but whose round trip outlived the deadline: QUERY_TIMEOUT, not COMMIT_UNCONFIRMED', async () => {
  // The probe and ROLLBACK after the statement arrive after the step's 300 ms (+ grace), within the second the
  // cancel is given to settle: nothing failed, the round trip only ended late.
  holdMs = 800;
  const error = await failure(execute(through('reply-timing-read-only'), { text: 'DO $$BEGIN PERFORM 1; END$$', readOnly: true, timeoutMs: 300 }));
  expect(error.code).toBe('QUERY_TIMEOUT');
}, 60_000);

/**
 * With a step timeout of 100 ms, pg-actions' own round trips get 200 ms (the grace added) and would get
 * none with it subtracted. The relay holds each reply after a COMMIT 40 ms. A busy machine may still miss
 * 200 ms now and then: one success in five tries is asked for (never one with the grace subtracted).
 */
describe("with a 100 ms step timeout, pg-actions' own round trips and the tail get the grace on top", () => {
  const tries = 5;

  test('Insert Rows: its COMMIT and probe (a round trip of their own) answer within the grace', async () => {
    holdMs = 40;
    const config = through('reply-timing-grace-commit');
    await execute(config, { text: 'SELECT 1' }); // the session's baseline and limits, under the connection's timeout
    const outcomes: string[] = [];
    for (let i = 0; i < tries && !outcomes.includes('INSERT'); i++) {
      outcomes.push(await execute(config, { text: 'INSERT INTO timed VALUES (3)', expectCommands: ['INSERT'], timeoutMs: 100 }).then((r) => r.command, (e: { code?: string }) => String(e.code)));
    }
    expect(outcomes).toContain('INSERT');
    await db.sql('DELETE FROM timed');
  }, 60_000);

  test("an answered step's tail that ends within the grace keeps the session", async () => {
    holdMs = 40;
    earlyAnswer.enabled = true;
    const config = through('reply-timing-grace-tail');
    const kept: boolean[] = [];
    for (let i = 0; i < tries && !kept.includes(true); i++) {
      const before = await pidOf(config);
      await tailsEnded();
      const ok = await execute(config, { text: 'DO $$BEGIN PERFORM 1; END$$', timeoutMs: 100 }).then(() => true, () => false);
      await tailsEnded();
      kept.push(ok && (await pidOf(config)) === before);
      await tailsEnded();
    }
    expect(kept).toContain(true);
  }, 60_000);
});
