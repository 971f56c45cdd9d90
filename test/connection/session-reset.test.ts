/**
 * What a list-based guard cannot see (REVIEW2 R1, R2, R3, R8, R9): custom settings such as an RLS
 * tenant, unlisted settings, pg-actions' own statements deallocated, LISTEN from a DO block, a step's
 * timeout, and — behind a transaction pooler — what a failed step holds on the shared server connection.
 */
import pg from 'pg';
import { closeAll, execute } from '../../connection/index.js';
import { inTransaction } from '../../connection/session.js';
import { READ_ONLY_PROBE, SESSION_PROBE } from '../../connection/session-guard.js';
import { failure } from '../harness/failures.js';
import { createTestDatabase, serverLogin, type TestDatabase } from '../harness/db.js';
import { describeWithPgBouncer, startPgBouncer, type PgBouncer } from '../harness/pgbouncer.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('reset');
  await db.sql(`CREATE TABLE payments (id serial PRIMARY KEY, amount int)`);
  await db.sql(`CREATE PROCEDURE pay(amount int) LANGUAGE plpgsql AS $$BEGIN INSERT INTO payments (amount) VALUES (amount); COMMIT; END$$`);
  await db.sql(`CREATE FUNCTION weaken() RETURNS text LANGUAGE sql AS $$SELECT set_config('password_encryption', 'md5', false)$$`);
  await db.sql(`CREATE SEQUENCE runs`);
});
afterAll(async () => {
  await closeAll();
  await db.drop();
});

const one = async (text: string, options: object = {}) => (await execute(db.config, { text, ...options })).rows[0]!;
const pid = async () => (await one('SELECT pg_backend_pid() AS pid')).pid as number;
const seen = () => one(`SELECT coalesce(nullif(current_setting('app.tenant_id', true), ''), 'none') AS tenant, current_setting('password_encryption') AS enc,
                               current_setting('gin_fuzzy_search_limit') AS gin, pg_backend_pid() AS pid`);

describe('custom and unlisted settings do not reach the next step (R1)', () => {
  test('set_config of an RLS tenant (bound value) and of unlisted settings, in Execute Query and in a function', async () => {
    const first = await pid();
    await one(`SELECT set_config('app.tenant_id', $1, false) AS t, set_config('gin_fuzzy_search_limit', '1', false) AS g`, { values: ['42'] });
    await one('SELECT weaken() AS w');
    expect(await seen()).toEqual({ tenant: 'none', enc: 'scram-sha-256', gin: '0', pid: first }); // reset, session kept
  });

  test('a failed step: committed by the server, refused by pg-actions (two columns with one name)', async () => {
    const error = await failure(execute(db.config, { text: `SELECT set_config('app.tenant_id', '7', false), set_config('password_encryption', 'md5', false)` }));
    expect(error.code).toBe('INVALID_INPUT');
    expect(await seen()).toMatchObject({ tenant: 'none', enc: 'scram-sha-256' });
  });

  test('a failed step whose procedure committed the setting before failing', async () => {
    await db.sql(`CREATE PROCEDURE tenant_then_fail() LANGUAGE plpgsql AS $$BEGIN PERFORM set_config('app.tenant_id', '9', false); COMMIT; PERFORM 1 / 0; END$$`);
    await failure(execute(db.config, { text: 'CALL tenant_then_fail()' }));
    expect(await seen()).toMatchObject({ tenant: 'none' });
  });

  test("pg-actions' own session settings survive the reset: the limits", async () => {
    await one(`SELECT set_config('app.x', '1', false) AS x`, { timeoutMs: 5000 });
    expect(await one(`SELECT current_setting('statement_timeout') AS t`)).toEqual({ t: '1min' });
  });
});

test('LISTEN from a DO block does not follow the session into the next step (R9)', async () => {
  await one(`DO $$BEGIN EXECUTE 'LISTEN leaked_channel'; END$$`);
  expect(await one('SELECT array_length(array(SELECT pg_listening_channels()), 1) AS n')).toEqual({ n: null });
});

test("a step's own timeout does not reach inTransaction on the same pooled session (R2)", async () => {
  await one('SELECT 1 AS ok', { timeoutMs: 200 });
  await expect(inTransaction(db.config, (query) => query('SELECT pg_sleep(0.5)'))).resolves.toBeDefined();
});

describe("pg-actions' own named statements (R8)", () => {
  test('deallocated by a read-only step: the session is discarded, the next CALL commits once and succeeds', async () => {
    await pid(); // the committed step's statements are on the session
    await one(`DO $$BEGIN EXECUTE 'DEALLOCATE pg_actions_session_probe'; END$$`, { readOnly: true });
    await expect(execute(db.config, { text: 'CALL pay(100)' })).resolves.toMatchObject({ command: 'CALL' });
    expect(await db.sql('SELECT amount FROM payments')).toEqual([{ amount: 100 }]);
  });

  test('deallocated by the step itself, after a non-transactional effect: reported, never run twice', async () => {
    await pid();
    await failure(execute(db.config, { text: `DO $$BEGIN PERFORM nextval('runs'); EXECUTE 'DEALLOCATE pg_actions_session_probe'; END$$` }));
    expect(await db.sql('SELECT last_value::int AS n FROM runs')).toEqual([{ n: 1 }]);
  });

  // REVIEW3 R24: the forgeries read the real probes first, so they return what the guard expects.
  const forge = (name: string, probe: string, columns: string) => `
    EXECUTE '${probe.replace(/'/g, "''")}' INTO u, o, n, s, l;
    EXECUTE 'DEALLOCATE ${name}';
    EXECUTE format('PREPARE ${name} AS SELECT NULL::void AS unlocked, false AS objects, %s AS own${columns}', n, s, l);`;
  const forgeAll = `DO $a$ DECLARE u text; o text; n int; s text; l text; BEGIN
    ${forge('pg_actions_session_probe', SESSION_PROBE, ', %L AS settings, %L AS limits')}
    ${forge('pg_actions_read_only_probe', READ_ONLY_PROBE, '')}
    EXECUTE 'DEALLOCATE pg_actions_reset_all'; EXECUTE 'PREPARE pg_actions_reset_all AS SELECT 1';
    EXECUTE 'DEALLOCATE pg_actions_begin_read_only'; EXECUTE 'PREPARE pg_actions_begin_read_only AS SELECT 1';
    PERFORM set_config('search_path', 'forged_schema, public', false);
    PERFORM set_config('app.tenant_id', 'tenant of flow A', false);
  END $a$`;

  test('replaced by SQL-PREPAREd look-alikes (probe, RESET ALL, BEGIN READ ONLY): the session is discarded, the next steps are clean (R24)', async () => {
    await db.sql('CREATE TABLE forged_writes (id int)');
    const first = await pid();
    await one('SELECT 1 AS warm', { readOnly: true }); // the read-only step's statements too
    await execute(db.config, { text: forgeAll });
    const next = await one(`SELECT pg_backend_pid() AS pid, current_setting('search_path') AS sp, current_setting('app.tenant_id', true) AS tenant`);
    expect(next).toEqual({ pid: expect.any(Number), sp: '"$user", public', tenant: null });
    expect(next.pid).not.toBe(first);
    expect((await failure(execute(db.config, { text: 'INSERT INTO forged_writes VALUES (1)', readOnly: true }))).code).toBe('READ_ONLY_VIOLATION');
    expect(await db.sql('SELECT * FROM forged_writes')).toEqual([]);
  });

  test("a user's error naming pg_actions_… does not switch the pool to unnamed statements", async () => {
    await failure(execute(db.config, { text: 'EXECUTE pg_actions_x' }));
    // A procedure's COMMIT only works on a session with named statements (no set_config before it).
    await expect(execute(db.config, { text: 'CALL pay(5)' })).resolves.toMatchObject({ command: 'CALL' });
  });
});

describeWithPgBouncer("behind PgBouncer in transaction pooling, a failed step's leftovers (R3)", () => {
  let bouncer: PgBouncer;
  beforeAll(async () => {
    bouncer = await startPgBouncer({ server: serverLogin(), mode: 'transaction', poolSize: 1 });
  });
  afterAll(async () => {
    await closeAll();
    await bouncer.dispose();
  });

  test('session advisory locks taken by failed steps are released', async () => {
    const connection = bouncer.config(db.name, { pooler: 'transaction' });
    await failure(execute(connection, { text: 'SELECT pg_advisory_lock(7), 1 / (random() * 0)::int', readOnly: true }));
    await failure(execute(connection, { text: 'SELECT pg_advisory_lock(8), 1 / (random() * 0)::int' }));
    expect(await db.sql(`SELECT objid::int FROM pg_locks WHERE locktype = 'advisory' AND objid IN (7, 8)`)).toEqual([]);
  });

  test("a read-only step's PREPARE is not runnable by another client", async () => {
    const connection = bouncer.config(db.name, { pooler: 'transaction' });
    await execute(connection, { text: `PREPARE leak AS SELECT 'secret of flow A' AS s`, readOnly: true });
    const other = new pg.Client({ ...serverLogin(), port: bouncer.config(db.name).port, database: db.name, application_name: 'flowB' });
    await other.connect();
    try {
      await expect(other.query('EXECUTE leak')).rejects.toMatchObject({ code: '26000' });
    } finally {
      await other.end();
    }
  });
});
