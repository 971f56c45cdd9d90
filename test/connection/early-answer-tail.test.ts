/**
 * The early answer's tail (execute.ts `finishTail`), reached every time: a loopback relay in front of
 * the suite's server holds back whatever follows the statement's CommandComplete for 300 ms, so the
 * step answers before the rest of its round trip (the guard's COMMIT or ROLLBACK, probe and resets)
 * arrives, and the tail decides whether the session goes back to the pool. A clean session is kept
 * (the next step runs on the same backend); one the statement left dirty is dropped.
 */
import { closeAll, execute, type ConnectionConfig } from '../../connection/index.js';
import { earlyAnswer, tailsInFlight } from '../../connection/step-tail.js';
import { serverLogin } from '../harness/db.js';
import { isCommandComplete, startMessageRelay, type MessageRelay } from '../harness/message-relay.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('early_tail');
const HOLD_MS = 300;
let relay: MessageRelay | undefined;

beforeAll(async () => {
  earlyAnswer.enabled = true; // off by default (step-tail.ts): this file is about that path
  // The statement's tag, and the guard's COMMIT after it (a committed step answers at its COMMIT): the rest waits HOLD_MS.
  relay = await startMessageRelay(serverLogin(), () => (message) => (isCommandComplete(message, /^(DO|COMMIT)$/) ? { holdAfterMs: HOLD_MS } : undefined));
}, 60_000);
afterAll(async () => {
  earlyAnswer.enabled = false;
  await closeAll();
  await relay?.close();
}, 60_000);

const through = (applicationName: string): ConnectionConfig => ({ ...db.config, host: '127.0.0.1', port: relay!.port, sslMode: 'disable', applicationName });
/** The tail has ended (its connection back in the pool or dropped): the next step may then reuse it. */
async function tailsEnded(): Promise<void> {
  const until = performance.now() + 20_000;
  while (tailsInFlight() > 0 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  expect(tailsInFlight()).toBe(0);
}
const pidOf = async (config: ConnectionConfig) => (await execute(config, { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]!.pid as number;

test.each([
  ['a read-only step', true],
  ['a committed step', false],
])('%s answered before its tail: a clean session goes back to the pool', async (name, readOnly) => {
  const config = through(`early-tail-clean-${readOnly}`);
  const first = await pidOf(config);
  await tailsEnded();
  const step = await execute(config, { text: 'DO $$BEGIN PERFORM 1; END$$', readOnly });
  expect(step.command).toBe('DO');
  expect(tailsInFlight()).toBe(1); // answered before the rest of its round trip arrived
  await tailsEnded();
  expect(await pidOf(config)).toBe(first);
}, 60_000);

test.each([
  ['a read-only step', true],
  ['a committed step', false],
])('%s answered before its tail that leaves a SQL-prepared statement: the session is dropped', async (name, readOnly) => {
  const config = through(`early-tail-dirty-${readOnly}`);
  const first = await pidOf(config);
  await tailsEnded();
  const step = await execute(config, { text: `DO $$BEGIN EXECUTE 'PREPARE leftover AS SELECT 1'; END$$`, readOnly });
  expect(step.command).toBe('DO');
  expect(tailsInFlight()).toBe(1);
  await tailsEnded();
  const { rows } = await execute(config, { text: 'SELECT pg_backend_pid() AS pid, (SELECT count(*)::int FROM pg_prepared_statements WHERE from_sql) AS prepared' });
  expect(rows[0]).toMatchObject({ prepared: 0 });
  expect(rows[0]!.pid).not.toBe(first);
}, 60_000);

test('a committed LISTEN answered before its tail: the session is dropped, the next step hears nothing of it', async () => {
  const config = through('early-tail-listen');
  const first = await pidOf(config);
  await tailsEnded();
  const step = await execute(config, { text: 'LISTEN early_tail_channel' });
  expect(step.command).toBe('LISTEN');
  await tailsEnded();
  const { rows } = await execute(config, { text: 'SELECT pg_backend_pid() AS pid, array(SELECT pg_listening_channels()) AS channels' });
  expect(rows[0]!.channels).toEqual([]);
  expect(rows[0]!.pid).not.toBe(first);
}, 60_000);
