/**
 * Statements that refuse a transaction block (SQLSTATE 25001) are run again alone, but only those
 * on execute.ts's allow-list, read from the parse tree (session-reset.test covers VACUUM, CREATE /
 * DROP INDEX CONCURRENTLY, DISCARD ALL and the functions that must fail once). Each statement here
 * would fail with 25001 if it were not recognised: that it succeeds, or fails with its own error,
 * shows it ran alone. Each step has a timeout of its own (ALONE), set local to the step's transaction
 * in the same round trip as the statement: without it (or a wait for the pool, or a pooler's BEGIN)
 * the statement is the first of its implicit transaction and the server accepts it there. Also: the
 * session after a statement run alone, and a procedure that committed is never run a second time.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { execute } from '../../connection/index.js';
import { serverUrl } from '../harness/db.js';
import { failure } from '../harness/failures.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('run_alone');
/** A step timeout other than the connection's: its SET LOCAL shares the statement's implicit transaction. */
const ALONE = { timeoutMs: 29_000 };
const spare = `run_alone_spare_${randomBytes(4).toString('hex')}`;

afterAll(async () => {
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${spare}`);
  } finally {
    await admin.end();
  }
}, 60_000);

test('CREATE DATABASE and DROP DATABASE run alone', async () => {
  await expect(execute(db.config, { text: `CREATE DATABASE ${spare}`, ...ALONE })).resolves.toMatchObject({ command: 'CREATE DATABASE' });
  expect(await db.sql('SELECT datname FROM pg_database WHERE datname = $1', [spare])).toEqual([{ datname: spare }]);
  await expect(execute(db.config, { text: `DROP DATABASE ${spare}`, ...ALONE })).resolves.toMatchObject({ command: 'DROP DATABASE' });
  expect(await db.sql('SELECT datname FROM pg_database WHERE datname = $1', [spare])).toEqual([]);
}, 60_000);

test('CLUSTER of the whole database and REINDEX … CONCURRENTLY run alone', async () => {
  await db.sql('CREATE TABLE events (id int PRIMARY KEY, note text)');
  await expect(execute(db.config, { text: 'CLUSTER', ...ALONE })).resolves.toMatchObject({ command: 'CLUSTER' });
  await expect(execute(db.config, { text: 'REINDEX TABLE CONCURRENTLY events', ...ALONE })).resolves.toMatchObject({ command: 'REINDEX' });
}, 60_000);

test('ALTER TABLE … DETACH PARTITION CONCURRENTLY runs alone (PostgreSQL 14+); a plain DETACH runs in the step', async () => {
  const version = (await db.sql<{ version: number }>('SELECT current_setting($1)::int AS version', ['server_version_num']))[0]!.version;
  await db.sql(`CREATE TABLE measures (at date NOT NULL, v int) PARTITION BY RANGE (at);
    CREATE TABLE measures_2025 PARTITION OF measures FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE measures_2026 PARTITION OF measures FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`);
  await expect(execute(db.config, { text: 'ALTER TABLE measures DETACH PARTITION measures_2025', ...ALONE })).resolves.toMatchObject({ command: 'ALTER TABLE' });
  if (version < 140000) return;
  await expect(execute(db.config, { text: 'ALTER TABLE measures DETACH PARTITION measures_2026 CONCURRENTLY', ...ALONE })).resolves.toMatchObject({ command: 'ALTER TABLE' });
  expect(await db.sql(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'measures'::regclass`)).toEqual([{ n: 0 }]);
}, 60_000);

test('COMMIT PREPARED and ROLLBACK PREPARED run alone: the answer is about the prepared transaction, not the transaction block', async () => {
  for (const verb of ['COMMIT', 'ROLLBACK']) {
    const error = await failure(execute(db.config, { text: `${verb} PREPARED 'pg_actions_none'`, ...ALONE }));
    // 42704: prepared transaction "…" does not exist — the server read it outside a transaction block.
    expect({ verb, sqlstate: error.sqlstate }).toEqual({ verb, sqlstate: '42704' });
  }
}, 60_000);

test('a CREATE INDEX without CONCURRENTLY whose event trigger met VACUUM fails once: the trigger did what a rollback does not undo', async () => {
  await db.sql(`CREATE TABLE notes (id int PRIMARY KEY, note text); CREATE SEQUENCE ddl_runs;
    CREATE FUNCTION vacuum_after_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN PERFORM nextval('ddl_runs'); EXECUTE 'VACUUM notes'; END$$;
    CREATE EVENT TRIGGER vacuum_after_ddl ON ddl_command_end WHEN TAG IN ('CREATE INDEX') EXECUTE FUNCTION vacuum_after_ddl()`);
  try {
    const error = await failure(execute(db.config, { text: 'CREATE INDEX notes_note ON notes (note)', ...ALONE }));
    expect(error.sqlstate).toBe('25001');
    expect(await db.sql('SELECT last_value::int AS n, is_called FROM ddl_runs')).toEqual([{ n: 1, is_called: true }]);
    expect(await db.sql(`SELECT indexname FROM pg_indexes WHERE indexname = 'notes_note'`)).toEqual([]);
  } finally {
    await db.sql('DROP EVENT TRIGGER vacuum_after_ddl');
  }
}, 60_000);

test('a statement run alone is probed after it: VACUUM keeps its session, DISCARD ALL does not', async () => {
  const pid = async () => (await execute(db.config, { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]!.pid as number;
  await db.sql('CREATE TABLE swept (id int)');
  const first = await pid();
  await expect(execute(db.config, { text: 'VACUUM swept', ...ALONE })).resolves.toMatchObject({ command: 'VACUUM' });
  expect(await pid()).toBe(first);
  await expect(execute(db.config, { text: 'DISCARD ALL', ...ALONE })).resolves.toMatchObject({ command: 'DISCARD ALL' });
  expect(await pid()).not.toBe(first);
}, 60_000);

test('a procedure that committed, then failed at the step BEGIN after it (named statement gone), is not run again', async () => {
  await db.sql(`CREATE TABLE paid (n int); CREATE SEQUENCE pay_runs;
    CREATE PROCEDURE pay_once() LANGUAGE plpgsql AS $$BEGIN PERFORM nextval('pay_runs'); INSERT INTO paid VALUES (1); COMMIT; EXECUTE 'DEALLOCATE pg_actions_begin'; END$$`);
  const config = { ...db.config, applicationName: 'run-alone-procedure' }; // a pool of its own: it falls back to unnamed statements
  await execute(config, { text: 'SELECT 1' }); // the step's named statements are on the session
  const error = await failure(execute(config, { text: 'CALL pay_once()' }));
  expect(error.message).toMatch(/pg_actions_begin/);
  // Run again, its COMMIT would fail on the unnamed session, but nextval() before it would be called twice.
  expect(await db.sql('SELECT count(*)::int AS n FROM paid')).toEqual([{ n: 1 }]);
  expect(await db.sql('SELECT last_value::int AS n FROM pay_runs')).toEqual([{ n: 1 }]);
}, 60_000);
