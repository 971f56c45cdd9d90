/**
 * How a step lets go of a session it cannot trust (execute.ts): past the result cap the statement is
 * cancelled on the server, not only cut off (a statement that switched the connection check off, as every
 * server before PostgreSQL 14 has none, keeps running otherwise); behind a pooler the backend key is the
 * pooler's, so no pg_terminate_backend is sent with it (it may name someone else's session); a ROLLBACK
 * that does not answer within its second drops the session; COPY FROM STDIN leaves a connection that
 * waits for data, dropped even where no guard probes the session after the step.
 */
import { execute, type ConnectionConfig } from '../../connection/index.js';
import { sessionGuard } from '../../connection/session-guard.js';
import { stoppedRunning, terminateBackendsOf } from '../harness/activity.js';
import { serverLogin } from '../harness/db.js';
import { failure } from '../harness/failures.js';
import { isCommandComplete, startMessageRelay, type MessageRelay } from '../harness/message-relay.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const APPS = ['step-abandon-cap', 'step-abandon-pooler', 'step-abandon-victim', 'step-abandon-rollback', 'step-abandon-copy'];
const db = useTestDatabase('step_abandon', {
  beforeDrop: async () => {
    for (const name of APPS) await terminateBackendsOf(db.sql, db.name, name).catch(() => {});
  },
});
const relays: MessageRelay[] = [];
afterAll(() => Promise.all(relays.map((relay) => relay.close())), 30_000);

const direct = (applicationName: string, extra: Partial<ConnectionConfig> = {}): ConnectionConfig => ({ ...db.config, applicationName, ...extra });
const pidOf = async (config: ConnectionConfig) => (await execute(config, { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]!.pid as number;
/** Switches the connection check off for the session (PostgreSQL 14+; before 14 there is none): a cut socket goes unnoticed. */
const checkOff = `CASE WHEN current_setting('server_version_num')::int >= 140000 THEN set_config('client_connection_check_interval', '0', false) END`;

test('past the result cap the statement is cancelled on the server: one that switched the connection check off and went on computing stops too', async () => {
  const config = direct('step-abandon-cap');
  const pid = await pidOf(config); // the pool's one session: the next step runs on it
  // Two rows of 300 kB (the socket's buffers take them, the cap of 100 kB is passed), then a long wait that writes nothing.
  const text = `SELECT CASE WHEN g = 1 THEN ${checkOff} END AS off, CASE WHEN g < 3 THEN repeat('x', 300000) ELSE pg_sleep(60)::text END AS big FROM generate_series(1, 3) AS g`;
  const error = await failure(execute(config, { text, maxResultBytes: 100_000, timeoutMs: 30_000 }));
  expect(error.code).toBe('RESULT_TOO_LARGE');
  expect(await stoppedRunning(db.sql, db.name, pid, 5000)).toMatchObject({ stopped: true });
}, 60_000);

test("behind a pooler a statement that ignores the cancel is cut off, and nobody's backend is terminated with the pooler's key", async () => {
  // Someone else's idle session; the "pooler" hands out a backend key whose process id is that session's.
  const victim = direct('step-abandon-victim');
  const victimPid = await pidOf(victim);
  const keyOfVictim = (message: Buffer) => {
    if (message[0] !== 0x4b) return undefined; // BackendKeyData: process id, secret key
    const replaced = Buffer.from(message);
    replaced.writeInt32BE(victimPid, 5);
    return { replace: replaced };
  };
  const relay = await startMessageRelay(serverLogin(), () => keyOfVictim);
  relays.push(relay);
  const config = direct('step-abandon-pooler', { host: '127.0.0.1', port: relay.port, sslMode: 'disable', pooler: 'session' });
  // The cancel (sent with the made-up process id) reaches nothing; the loop would survive it anyway.
  const loop = `DO $$ BEGIN LOOP BEGIN PERFORM pg_sleep(0.2); EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$`;
  const error = await failure(execute(config, { text: loop, timeoutMs: 1000 }));
  expect(error.code).toBe('QUERY_TIMEOUT');
  expect(await db.sql('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [victimPid])).toEqual([{ n: 1 }]);
  expect(await pidOf(victim)).toBe(victimPid);
  await terminateBackendsOf(db.sql, db.name, 'step-abandon-pooler');
}, 60_000);

test('a failed step whose ROLLBACK does not answer within a second: its session is dropped, the next step runs on a new one', async () => {
  const relay = await startMessageRelay(serverLogin(), () => (message) => (isCommandComplete(message, /^ROLLBACK$/) ? { delayBeforeMs: 1500 } : undefined));
  relays.push(relay);
  const config = direct('step-abandon-rollback', { host: '127.0.0.1', port: relay.port, sslMode: 'disable' });
  const before = await pidOf(config);
  await db.sql('CREATE TABLE IF NOT EXISTS rolled (x int)');
  const error = await failure(execute(config, { text: 'UPDATE rolled SET x = x WHERE 1 / 0 = 1', expectCommands: ['UPDATE'] }));
  expect(error.sqlstate).toBe('22012');
  expect(await pidOf(config)).not.toBe(before);
}, 60_000);

test('COPY FROM STDIN with the session guard off (nothing probes the session after a step): refused, and the next step runs at once on a new connection', async () => {
  const config = direct('step-abandon-copy');
  await db.sql('CREATE TABLE IF NOT EXISTS copied (x int)');
  sessionGuard.enabled = false; // bench/'s switch: the pooled session is kept after a step unless the step drops it
  try {
    const before = await pidOf(config);
    expect((await failure(execute(config, { text: 'COPY copied FROM STDIN' }))).code).toBe('INVALID_INPUT');
    const started = performance.now();
    const next = await execute(config, { text: 'SELECT pg_backend_pid() AS pid', timeoutMs: 10_000 });
    expect(next.rows[0]!.pid).not.toBe(before);
    expect(performance.now() - started).toBeLessThan(10_000);
  } finally {
    sessionGuard.enabled = true;
  }
}, 60_000);
