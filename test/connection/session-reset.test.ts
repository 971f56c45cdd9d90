/**
 * What a list-based guard cannot see (REVIEW2 R1, R2, R3, R8, R9): custom settings such as an RLS
 * tenant, unlisted settings, pg-actions' own statements deallocated, LISTEN from a DO block, a step's
 * timeout, and — behind a transaction pooler — what a failed step holds on the shared server connection.
 */
import pg from 'pg';
import { closeAll, execute } from '../../connection/index.js';
import { inTransaction } from '../../connection/session.js';
import { SESSION_PROBE } from '../../connection/session-guard.js';
import { failure } from '../harness/failures.js';
import { serverLogin } from '../harness/db.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { describeWithPgBouncer, usePgBouncer } from '../harness/pgbouncer.js';

const db = useTestDatabase('reset');
beforeAll(async () => {
  await db.sql(`CREATE TABLE payments (id serial PRIMARY KEY, amount int)`);
  await db.sql(`CREATE PROCEDURE pay(amount int) LANGUAGE plpgsql AS $$BEGIN INSERT INTO payments (amount) VALUES (amount); COMMIT; END$$`);
  await db.sql(`CREATE FUNCTION weaken() RETURNS text LANGUAGE sql AS $$SELECT set_config('password_encryption', 'md5', false)$$`);
  await db.sql(`CREATE SEQUENCE runs`);
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

  test('the limits lifted by set_config() are set again, the session kept; a SET step discards its session (README, REVIEW4 R46)', async () => {
    const first = await pid();
    await one(`SELECT set_config('statement_timeout', '0', false) AS t`);
    expect(await one(`SELECT current_setting('statement_timeout') AS t, pg_backend_pid() AS pid`)).toEqual({ t: '1min', pid: first });
    await execute(db.config, { text: 'SET statement_timeout = 0' });
    expect(await one(`SELECT current_setting('statement_timeout') AS t, pg_backend_pid() = ${first} AS same`)).toEqual({ t: '1min', same: false });
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

  test('deallocated by the step itself, after a non-transactional effect: never run twice, the session discarded', async () => {
    const first = await pid();
    // The probe's Bind fails after the step's COMMIT (REVIEW3 R12): the DO block's work stands, so the step succeeds.
    await expect(execute(db.config, { text: `DO $$BEGIN PERFORM nextval('runs'); EXECUTE 'DEALLOCATE pg_actions_session_probe'; END$$` })).resolves.toMatchObject({ command: 'DO' });
    expect(await db.sql('SELECT last_value::int AS n FROM runs')).toEqual([{ n: 1 }]);
    expect(await pid()).not.toBe(first);
  });

  // REVIEW3 R24: the forgeries read the real probes first, so they return what the guard expects.
  const forge = (name: string, probe: string, columns: string) => `
    EXECUTE '${probe.replace(/'/g, "''")}' INTO u, o, n, s, l;
    EXECUTE 'DEALLOCATE ${name}';
    EXECUTE format('PREPARE ${name} AS SELECT NULL::void AS unlocked, false AS objects, %s AS own${columns}', n, s, l);`;
  const forgeAll = `DO $a$ DECLARE u text; o text; n int; s text; l text; BEGIN
    ${forge('pg_actions_session_probe', SESSION_PROBE, ', %L AS settings, %L AS limits')}
    EXECUTE 'DEALLOCATE pg_actions_reset_all'; EXECUTE 'PREPARE pg_actions_reset_all AS SELECT 1';
    EXECUTE 'DEALLOCATE pg_actions_begin_read_only'; EXECUTE 'PREPARE pg_actions_begin_read_only AS SELECT 1';
    PERFORM set_config('search_path', 'forged_schema, public', false);
    PERFORM set_config('app.tenant_id', 'tenant of flow A', false);
  END $a$`;

  // The read-only probe is unnamed (parsed after the statement, never forged): the committed one is.
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

  test('replaced by a look-alike probe that DEALLOCATEs itself while it runs (no SQL-prepared statement left for the check): the session is discarded (REVIEW4 R29)', async () => {
    await db.sql('CREATE TABLE shop_orders (id int, card text)');
    await db.sql('CREATE TABLE shop_loot (id int, card text)');
    const first = await pid();
    // Flow A's one step: a temp table with a trigger shadows public.shop_orders, and a probe that reads clean, then is gone.
    await execute(db.config, { text: `DO $a$ DECLARE u text; o text; n int; s text; BEGIN
      EXECUTE '${SESSION_PROBE.replace(/'/g, "''")}' INTO u, o, n, s;
      CREATE TEMP TABLE shop_orders (id int, card text);
      CREATE FUNCTION pg_temp.copy() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN INSERT INTO public.shop_loot VALUES (NEW.id, NEW.card); RETURN NEW; END $f$;
      CREATE TRIGGER copy AFTER INSERT ON pg_temp.shop_orders FOR EACH ROW EXECUTE FUNCTION pg_temp.copy();
      CREATE FUNCTION pg_temp.vanish() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN EXECUTE 'DEALLOCATE pg_actions_session_probe'; END $f$;
      EXECUTE 'DEALLOCATE pg_actions_session_probe';
      EXECUTE format('PREPARE pg_actions_session_probe AS SELECT pg_temp.vanish() AS unlocked, false AS objects, %s AS own, %L AS settings', n, s);
    END $a$` });
    // Flow B's next step runs on another session, writes into the real table, and nothing is copied.
    const written = await one(`INSERT INTO shop_orders VALUES (1, '4111-1111-1111-0001') RETURNING pg_backend_pid() AS pid`);
    expect(written.pid).not.toBe(first);
    expect([await db.sql('SELECT id FROM shop_orders'), await db.sql('SELECT id FROM shop_loot')]).toEqual([[{ id: 1 }], []]);
  });

  test("look-alike operators the probe would resolve to (search_path set by the step, or an exact signature in public): a temp table is still seen, the session discarded (REVIEW4 R44)", async () => {
    await db.sql(`CREATE TABLE hidden_orders (id int); CREATE TABLE hidden_loot (id int);
      CREATE SCHEMA look_alike;
      CREATE FUNCTION look_alike.never(oid, integer) RETURNS boolean LANGUAGE sql AS 'SELECT false';
      CREATE FUNCTION look_alike.never(bigint, integer) RETURNS boolean LANGUAGE sql AS 'SELECT false';
      CREATE OPERATOR look_alike.<> (LEFTARG = oid, RIGHTARG = integer, FUNCTION = look_alike.never);
      CREATE OPERATOR look_alike.> (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = look_alike.never)`);
    const shadow = `CREATE TEMP TABLE hidden_orders (id int);
      CREATE FUNCTION pg_temp.copy() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN INSERT INTO public.hidden_loot VALUES (NEW.id); RETURN NEW; END $f$;
      CREATE TRIGGER copy AFTER INSERT ON pg_temp.hidden_orders FOR EACH ROW EXECUTE FUNCTION pg_temp.copy();`;
    const victim = async (id: number) => (await one(`INSERT INTO hidden_orders VALUES (${id}) RETURNING pg_backend_pid() AS pid`)).pid as number;
    try {
      // 1. The step leaves its search_path on the session: the named probe is analysed again under it.
      let first = await pid();
      await execute(db.config, { text: `DO $a$ BEGIN ${shadow} PERFORM set_config('search_path', 'look_alike, pg_catalog, public', false); END $a$` });
      expect(await victim(1)).not.toBe(first);
      // 2. No search_path change: an exact <>(oid, integer) on the default path, met by sessions that parse the probe from now on.
      await db.sql('CREATE OPERATOR public.<> (LEFTARG = oid, RIGHTARG = integer, FUNCTION = look_alike.never)');
      await closeAll();
      first = await pid();
      await execute(db.config, { text: `DO $a$ BEGIN ${shadow} END $a$` });
      expect(await victim(2)).not.toBe(first);
      expect([await db.sql('SELECT id FROM hidden_orders ORDER BY id'), await db.sql('SELECT id FROM hidden_loot')]).toEqual([[{ id: 1 }, { id: 2 }], []]);
    } finally {
      await closeAll();
      await db.sql('DROP OPERATOR IF EXISTS public.<> (oid, integer); DROP SCHEMA look_alike CASCADE');
    }
  });

  test("a user's error naming pg_actions_… does not switch the pool to unnamed statements", async () => {
    await failure(execute(db.config, { text: 'EXECUTE pg_actions_x' }));
    // A procedure's COMMIT only works on a session with named statements (no set_config before it).
    await expect(execute(db.config, { text: 'CALL pay(5)' })).resolves.toMatchObject({ command: 'CALL' });
  });
});

describeWithPgBouncer("behind PgBouncer in transaction pooling, a failed step's leftovers (R3)", () => {
  const bouncer = usePgBouncer({ server: serverLogin(), mode: 'transaction', poolSize: 1 });

  test('session advisory locks taken by failed steps are released', async () => {
    const connection = bouncer.config(db.name, { pooler: 'transaction' });
    await failure(execute(connection, { text: 'SELECT pg_advisory_lock(7), 1 / (random() * 0)::int', readOnly: true }));
    await failure(execute(connection, { text: 'SELECT pg_advisory_lock(8), 1 / (random() * 0)::int' }));
    expect(await db.sql(`SELECT objid::int FROM pg_locks WHERE locktype = 'advisory' AND objid IN (7, 8)`)).toEqual([]);
  });

  test("a committed step's PREPARE in a DO block is deallocated, its write kept, and the step succeeds", async () => {
    const connection = bouncer.config(db.name, { pooler: 'transaction' });
    await db.sql(`CREATE TABLE IF NOT EXISTS pooled_writes (n int)`);
    const result = await execute(connection, { text: `DO $$BEGIN INSERT INTO pooled_writes VALUES (42); EXECUTE 'PREPARE hidden_c AS SELECT 1'; END$$` });
    expect(result.command).toBe('DO');
    expect(await db.sql(`SELECT n FROM pooled_writes`)).toEqual([{ n: 42 }]);
    const other = new pg.Client({ ...serverLogin(), port: bouncer.config(db.name).port, database: db.name, application_name: 'flowB' });
    await other.connect();
    try {
      await expect(other.query('EXECUTE hidden_c')).rejects.toMatchObject({ code: '26000' });
      // Nothing prepared: the next steps keep the server connection's state as it is, and run.
      expect((await execute(connection, { text: 'SELECT 1 AS one', readOnly: true })).rows).toEqual([{ one: 1 }]);
      expect((await execute(connection, { text: 'SELECT 2 AS two' })).rows).toEqual([{ two: 2 }]);
    } finally {
      await other.end();
    }
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

describe('statements that cannot run inside a transaction (REVIEW3 R23)', () => {
  test('VACUUM and CREATE INDEX CONCURRENTLY run alone, and the session is probed and kept', async () => {
    await db.sql('CREATE TABLE archive (id serial PRIMARY KEY, note text)');
    const first = await pid();
    await expect(execute(db.config, { text: 'VACUUM archive' })).resolves.toMatchObject({ command: 'VACUUM' });
    await expect(execute(db.config, { text: '/* run alone */ CREATE INDEX CONCURRENTLY archive_note ON archive (note)' })).resolves.toMatchObject({ command: 'CREATE INDEX' });
    expect(await db.sql(`SELECT indexname FROM pg_indexes WHERE indexname = 'archive_note'`)).toEqual([{ indexname: 'archive_note' }]);
    expect(await pid()).toBe(first);
  });

  test('a procedure that committed, then met VACUUM: reported, its committed part written once', async () => {
    await db.sql(`CREATE PROCEDURE archive_run() LANGUAGE plpgsql AS $$BEGIN INSERT INTO archive (note) VALUES ('run'); COMMIT; EXECUTE 'VACUUM archive'; END$$`);
    await failure(execute(db.config, { text: 'CALL archive_run()' }));
    expect(await db.sql(`SELECT count(*)::int AS n FROM archive WHERE note = 'run'`)).toEqual([{ n: 1 }]);
  });

  test('a function that did what a rollback does not undo (nextval), then met VACUUM: fails once, is not run again (REVIEW4 R33)', async () => {
    await db.sql(`CREATE SEQUENCE nightly_runs;
      CREATE FUNCTION nightly() RETURNS void LANGUAGE plpgsql AS $$BEGIN PERFORM nextval('nightly_runs'); EXECUTE 'VACUUM archive'; END$$`);
    const error = await failure(execute(db.config, { text: 'SELECT nightly()' }));
    expect(error.sqlstate).toBe('25001');
    expect(await db.sql('SELECT last_value::int AS n, is_called FROM nightly_runs')).toEqual([{ n: 1, is_called: true }]);
    // What refuses a transaction block by itself still runs alone: DROP INDEX CONCURRENTLY, DISCARD ALL.
    await expect(execute(db.config, { text: 'DROP INDEX CONCURRENTLY archive_note' })).resolves.toMatchObject({ command: 'DROP INDEX' });
    await expect(execute(db.config, { text: 'DISCARD ALL' })).resolves.toMatchObject({ command: 'DISCARD ALL' });
  });
});

test('currval()/lastval() of a step do not reach the next step, also after a failed one (REVIEW3 R14)', async () => {
  await db.sql('CREATE TABLE orders (id serial PRIMARY KEY, customer text)');
  const first = await pid();
  await one(`INSERT INTO orders (customer) VALUES ('alice') RETURNING id`);
  await expect(failure(execute(db.config, { text: `SELECT currval('orders_id_seq')`, readOnly: true }))).resolves.toMatchObject({ message: expect.stringContaining('not yet defined in this session') });
  await failure(execute(db.config, { text: `SELECT nextval('orders_id_seq'), 1 / 0` }));
  await expect(failure(execute(db.config, { text: 'SELECT lastval()' }))).resolves.toMatchObject({ message: expect.stringContaining('not yet defined in this session') });
  expect(await pid()).toBe(first); // reset, not discarded
});
