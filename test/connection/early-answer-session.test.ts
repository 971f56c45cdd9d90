/**
 * With the early answer on (step-tail.ts), the rest of a step's round trip runs after the answer
 * (execute.ts `finishTail`): a clean session goes back to the pool (the next step runs on the same
 * backend: no reconnect per step), a session the statement changed is dropped (a LISTEN, whose
 * tag tells), and a tail that never hears back ends at the step's deadline on its own, without
 * waiting for closeAll() (step-tail.test shows closeAll cutting one).
 */
import { closeAll, execute, type ConnectionConfig } from '../../connection/index.js';
import { earlyAnswer, tailsInFlight } from '../../connection/step-tail.js';
import { serverLogin } from '../harness/db.js';
import { startWireProxy } from '../harness/proxy.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('early_answer');

beforeAll(() => {
  earlyAnswer.enabled = true; // off by default (step-tail.ts): this file is about that path
});
afterAll(() => {
  earlyAnswer.enabled = false;
});

const own = (applicationName: string, extra: Partial<ConnectionConfig> = {}): ConnectionConfig => ({ ...db.config, applicationName, ...extra });
const pidOf = async (config: ConnectionConfig, readOnly: boolean) =>
  (await execute(config, { text: 'SELECT pg_backend_pid() AS pid', readOnly })).rows[0]!.pid as number;

async function eventually(check: () => boolean, withinMs: number): Promise<boolean> {
  const until = performance.now() + withinMs;
  while (!check() && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 25));
  return check();
}

describe('a clean session goes back to the pool after the tail', () => {
  test.each([
    ['read-only steps', true],
    ['committed steps', false],
  ])('%s: every step runs on the same backend', async (name, readOnly) => {
    const config = own(`early-keep-${readOnly}`);
    const first = await pidOf(config, readOnly);
    for (let i = 0; i < 3; i++) {
      // The tail may still run: the next step waits for the connection rather than opening another.
      expect(await pidOf(config, readOnly)).toBe(first);
    }
    const sessions = await db.sql('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2', [db.name, config.applicationName]);
    expect(sessions).toEqual([{ pid: first }]);
  }, 60_000);
});

test('a committed LISTEN: its session is dropped, the next step hears nothing of it', async () => {
  const config = own('early-listen');
  const first = await pidOf(config, false);
  const step = await execute(config, { text: 'LISTEN early_answer_channel' });
  expect(step.command).toBe('LISTEN');
  const { rows } = await execute(config, { text: 'SELECT pg_backend_pid() AS pid, array(SELECT pg_listening_channels()) AS channels' });
  expect(rows[0]!.channels).toEqual([]);
  expect(rows[0]!.pid).not.toBe(first);
}, 60_000);

test("a tail that never hears back ends at the step's deadline, its session dropped", async () => {
  const proxy = await startWireProxy(serverLogin());
  const timeoutMs = 1500;
  const config = own('early-frozen', { host: '127.0.0.1', port: proxy.port, sslMode: 'disable', statementTimeoutMs: timeoutMs });
  const prepareMany = `DO $$BEGIN FOR i IN 1..20000 LOOP EXECUTE format('PREPARE leak_%s AS SELECT %s', i, i); END LOOP; END$$`;
  try {
    let inFlight = false;
    for (let attempt = 0; attempt < 5 && !inFlight; attempt++) {
      // The probe reads every prepared statement: its reply comes well after the answer.
      const step = await execute(config, { text: prepareMany, readOnly: true });
      expect(step.command).toBe('DO');
      inFlight = tailsInFlight() > 0;
      if (inFlight) proxy.freeze(); // silent both ways: the rest of the round trip never arrives, a goodbye never leaves
      else await closeAll(); // the whole reply came at once this time: try again
    }
    expect(inFlight).toBe(true);
    const frozenAt = performance.now();
    // The deadline (1.5 s and the grace) ends it, not closeAll(); generous for a loaded machine.
    expect(await eventually(() => tailsInFlight() === 0, 20_000)).toBe(true);
    expect(performance.now() - frozenAt).toBeLessThan(20_000);
    // The connection was dropped: the proxy has none open after it.
    expect(await eventually(() => proxy.openConnections === 0, 10_000)).toBe(true);
  } finally {
    await closeAll();
    await proxy.close();
  }
}, 90_000);
