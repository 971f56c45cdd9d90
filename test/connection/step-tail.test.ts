/**
 * With the early answer on (off by default: connection/step-tail.ts), a step answers once its
 * outcome is final (a read-only step's result, a committed step's COMMIT); the session guard's
 * probe, check, resets and ROLLBACK finish after the answer, and only then does the connection go
 * back to the pool. What must still hold: a dirty session
 * is discarded before any step can use it, nothing that fails after the answer fails the step or
 * escapes as an unhandled rejection, closeAll() ends no tail early and waits for none forever, and
 * whatever fails at COMMIT (a deferred trigger) fails the step.
 */
import { closeAll, execute } from '../../connection/index.js';
import { earlyAnswer, tailsInFlight } from '../../connection/step-tail.js';
import { failure } from '../harness/failures.js';
import { createTestDatabase, serverLogin, type TestDatabase } from '../harness/db.js';
import { describeWithPgBouncer, usePgBouncer } from '../harness/pgbouncer.js';
import { startWireProxy } from '../harness/proxy.js';

let db: TestDatabase;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeAll(async () => {
  earlyAnswer.enabled = true; // off by default (step-tail.ts): these tests are about that path
  process.on('unhandledRejection', onUnhandled);
  db = await createTestDatabase('tail');
  await db.sql(`CREATE TABLE ledger (id int PRIMARY KEY, amount int)`);
  await db.sql(`CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
    IF NEW.amount < 0 THEN RAISE EXCEPTION 'negative amounts are refused at commit' USING ERRCODE = 'check_violation'; END IF; RETURN NULL; END$$`);
  await db.sql(`CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON ledger DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()`);
});
afterEach(() => {
  expect(unhandled).toEqual([]);
});
afterAll(async () => {
  earlyAnswer.enabled = false;
  process.off('unhandledRejection', onUnhandled);
  await closeAll();
  await db.drop();
});

/** Makes `count` statements with SQL PREPARE: the guard's probe reads them all, so its tail takes a while. */
const prepareMany = (count: number) => `DO $$BEGIN FOR i IN 1..${count} LOOP EXECUTE format('PREPARE leak_%s AS SELECT %s', i, i); END LOOP; END$$`;
const leaked = `SELECT pg_backend_pid() AS pid, (SELECT count(*)::int FROM pg_prepared_statements WHERE from_sql) AS prepared,
  coalesce(nullif(current_setting('app.tenant_id', true), ''), 'none') AS tenant, (SELECT count(*)::int FROM pg_tables WHERE schemaname LIKE 'pg_temp%') AS temps`;

describe('the session checks after the answer still discard a dirty session', () => {
  test.each([
    ['a read-only step', true],
    ['a committed step', false],
  ])('%s that leaves SQL-prepared statements: no step after it sees them, even started at once', async (_name, readOnly) => {
    const config = { ...db.config, applicationName: `tail-dirty-${readOnly}` };
    const first = (await execute(config, { text: leaked })).rows[0]!;
    expect(first).toMatchObject({ prepared: 0 });
    const step = await execute(config, { text: prepareMany(2000), readOnly });
    expect(step.command).toBe('DO'); // answered: the leftovers are the session's problem, not the step's
    // Started before the tail ended (no await in between): the pool must not hand out that session.
    const next = await Promise.all(Array.from({ length: 4 }, () => execute(config, { text: leaked, readOnly })));
    for (const { rows } of next) expect(rows[0]).toMatchObject({ prepared: 0, temps: 0 });
    expect(next.map(({ rows }) => rows[0]!.pid)).not.toContain(first.pid);
  });

  test('a committed step that sets an RLS tenant, then one that makes a temp table: the next step (at once) sees neither', async () => {
    const config = { ...db.config, applicationName: 'tail-tenant' };
    await execute(config, { text: `SELECT set_config('app.tenant_id', 'flow A', false) AS t` });
    expect((await execute(config, { text: leaked, readOnly: true })).rows[0]).toMatchObject({ tenant: 'none', temps: 0 });
    await execute(config, { text: 'CREATE TEMP TABLE ledger (id int, amount int)' });
    expect((await execute(config, { text: leaked })).rows[0]).toMatchObject({ tenant: 'none', temps: 0 });
  });
});

describe('nothing after the answer fails the step', () => {
  test("a statement that deallocates one of the guard's own statements: the step succeeds, the session is dropped, no unhandled rejection", async () => {
    const config = { ...db.config, applicationName: 'tail-deallocate' };
    for (const readOnly of [true, false]) {
      const before = (await execute(config, { text: 'SELECT pg_backend_pid() AS pid', readOnly })).rows[0]!.pid;
      const probe = readOnly ? 'pg_actions_rollback' : 'pg_actions_session_probe'; // the read-only probe is unnamed
      const step = await execute(config, { text: `DO $$BEGIN EXECUTE 'DEALLOCATE ${probe}'; END$$`, readOnly });
      expect(step.command).toBe('DO');
      const after = (await execute(config, { text: 'SELECT pg_backend_pid() AS pid', readOnly })).rows[0]!.pid;
      expect(after).not.toBe(before);
    }
    await new Promise((resolve) => setTimeout(resolve, 50)); // a late rejection would be reported by now
  });
});

describe('closeAll() with a tail in flight', () => {
  test('a tail that never hears back is cut: closeAll resolves within seconds, not at the step deadline', async () => {
    const proxy = await startWireProxy(serverLogin());
    const config = { ...db.config, host: '127.0.0.1', port: proxy.port, sslMode: 'disable' as const, applicationName: 'tail-close', statementTimeoutMs: 60_000 };
    try {
      let inFlight = false;
      for (let attempt = 0; attempt < 5 && !inFlight; attempt++) {
        // The probe reads every prepared statement: its reply comes well after the answer.
        const step = await execute(config, { text: prepareMany(20_000), readOnly: true });
        expect(step.command).toBe('DO');
        inFlight = tailsInFlight() > 0;
        if (inFlight) proxy.freezeReplies(); // the rest of the round trip never arrives
        else await closeAll(); // the whole reply came at once this time: try again
      }
      expect(inFlight).toBe(true);
      const started = performance.now();
      await closeAll();
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(tailsInFlight()).toBe(0);
    } finally {
      await proxy.close();
    }
    // Another pool of the same server still works.
    expect((await execute(db.config, { text: 'SELECT 1 AS ok' })).rows).toEqual([{ ok: 1 }]);
  });

  test('a tail that completes: closeAll waits for it, and no connection is left on the server', async () => {
    const config = { ...db.config, applicationName: 'tail-close-clean' };
    await execute(config, { text: prepareMany(5000), readOnly: true });
    await closeAll();
    expect(tailsInFlight()).toBe(0);
    const open = await db.sql(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'tail-close-clean'`);
    for (let i = 0; i < 50 && open[0]!.n !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100)); // the server notices the goodbye soon after
      open.splice(0, 1, ...(await db.sql(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'tail-close-clean'`)));
    }
    expect(open).toEqual([{ n: 0 }]);
  });
});

test('a deferred trigger that fails at COMMIT fails the committed step: nothing written', async () => {
  const error = await failure(execute(db.config, { text: `INSERT INTO ledger VALUES (1, -5) RETURNING id` }));
  expect(error.code).toBe('CHECK_VIOLATION');
  expect(error.message).toMatch(/negative amounts are refused at commit/i);
  expect(await db.sql('SELECT * FROM ledger')).toEqual([]);
  await expect(execute(db.config, { text: `INSERT INTO ledger VALUES (2, 5) RETURNING id` })).resolves.toMatchObject({ rows: [{ id: 2 }] });
});

describeWithPgBouncer('behind PgBouncer (transaction pooling)', () => {
  const bouncer = usePgBouncer({ server: serverLogin(), mode: 'transaction', poolSize: 2 });

  test('a deferred trigger that fails at COMMIT fails the step', async () => {
    const connection = bouncer.config(db.name, { pooler: 'transaction' });
    const error = await failure(execute(connection, { text: `INSERT INTO ledger VALUES (3, -1)` }));
    expect(error.code).toBe('CHECK_VIOLATION');
    expect(await db.sql('SELECT id FROM ledger WHERE id = 3')).toEqual([]);
  });

  test("a read-only step's SQL PREPARE is deallocated after the answer, before any step can use that server connection", async () => {
    const connection = bouncer.config(db.name, { pooler: 'transaction' });
    const step = await execute(connection, { text: prepareMany(500), readOnly: true });
    expect(step.command).toBe('DO');
    const next = await Promise.all(Array.from({ length: 4 }, () => execute(connection, { text: leaked, readOnly: true })));
    for (const { rows } of next) expect(rows[0]).toMatchObject({ prepared: 0 });
  });
});
