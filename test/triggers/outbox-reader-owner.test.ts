/**
 * REVIEW9 R156 at row-changes' outbox reads (triggers/outbox-reader.ts), on the suite's server (the
 * same rules as test/security/activation-schema-owner.test.ts, which starts a replication server of
 * its own, too slow to run per mutant): a pgactions schema handed to a role that is neither this
 * role nor a superuser is refused before any statement names its objects (checkOwner), and, when it
 * changes hands between that check and the read, by the read's own guard; both say which read refused.
 */
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf, poll, session, waitFor } from './helpers.js';

const owner = `rc_owner_${process.pid}`;
const db = useTestDatabase('rcowner', { beforeDrop: () => db.sql(`DROP OWNED BY ${owner}; DROP ROLE IF EXISTS ${owner}`).then(() => undefined) });
const request = (state?: unknown) => ({ connection: db.config, config: { tables: ['orders'] }, state });
const refusal = `row-changes read: schema pgactions is owned by role "${owner}", which is neither this role nor a superuser.`;
const cursorTable = async () => (await db.sql("SELECT relname FROM pg_class WHERE relnamespace = 'pgactions'::regnamespace AND relname LIKE '%\\_cursor'"))[0]!.relname as string;

beforeAll(async () => {
  await db.sql(`DROP ROLE IF EXISTS ${owner}; CREATE ROLE ${owner} NOLOGIN; CREATE TABLE orders (id int PRIMARY KEY, note text)`);
}, 60_000);

afterEach(async () => {
  await db.sql('ALTER SCHEMA pgactions OWNER TO CURRENT_USER').catch(() => undefined);
  await deactivateTrigger('row-changes', request()).catch(() => undefined);
});

test('the schema handed to another role: a read after a position and a start at the acknowledged one are refused naming the read and the owner', async () => {
  await activateTrigger('row-changes', request());
  const { state } = await poll('row-changes', request());
  await db.sql("INSERT INTO orders VALUES (1, 'pending')");
  await db.sql(`ALTER SCHEMA pgactions OWNER TO ${owner}`);
  for (const refused of [await failureOf(pollTrigger('row-changes', request(state))), await failureOf(pollTrigger('row-changes', request()))]) {
    expect({ code: refused.code, message: refused.message }).toEqual({ code: 'PERMISSION_DENIED', message: expect.stringContaining(refusal) });
    expect(refused.message.startsWith(refusal)).toBe(true);
  }
  // Trusted again (the fix the message gives): the pending change is read.
  await db.sql('ALTER SCHEMA pgactions OWNER TO CURRENT_USER');
  expect((await poll('row-changes', request(state))).events.map((event) => event.key)).toEqual([{ id: 1 }]);
}, 60_000);

test("a replacement the planner runs while planning (an IMMUTABLE function folded in a view in place of the cursor) never runs, nor a read function of the owner's: the owner is checked before the statement", async () => {
  await activateTrigger('row-changes', request());
  const { state } = await poll('row-changes', request());
  const cursor = await cursorTable();
  const read = (await db.sql("SELECT p.oid::regprocedure::text AS f FROM pg_proc p WHERE pronamespace = 'pgactions'::regnamespace AND proname LIKE '%\\_read'"))[0]!.f as string;
  await db.sql(`ALTER SCHEMA pgactions OWNER TO ${owner}`);
  // Made by a superuser here for brevity; the owner may make each of them itself.
  await db.sql(`CREATE FUNCTION pgactions.folded() RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $f$ BEGIN RAISE EXCEPTION 'folded ran as %', current_user; END $f$;
    ALTER TABLE pgactions.${cursor} RENAME TO kept_cursor; CREATE VIEW pgactions.${cursor} AS SELECT pgactions.folded() AS acked;
    ALTER FUNCTION ${read} RENAME TO kept_read;
    CREATE FUNCTION ${read.replace(/\(.*/, '')}(after bigint, batch integer, retention interval, shared boolean)
      RETURNS TABLE (pos bigint, seq bigint, op text, schema_name text, table_name text, key jsonb, new jsonb, old jsonb, written_at timestamptz, epoch text, gap bigint)
      LANGUAGE sql STABLE AS $f$ SELECT pgactions.folded(), 0::bigint, ''::text, ''::text, ''::text, NULL::jsonb, NULL::jsonb, NULL::jsonb, now(), ''::text, NULL::bigint $f$`);
  try {
    for (const refused of [await failureOf(pollTrigger('row-changes', request())), await failureOf(pollTrigger('row-changes', request(state)))]) {
      expect({ code: refused.code, message: refused.message }).toEqual({ code: 'PERMISSION_DENIED', message: expect.stringContaining(refusal) });
    }
  } finally {
    await db.sql(`ALTER SCHEMA pgactions OWNER TO CURRENT_USER; DROP VIEW pgactions.${cursor}; ALTER TABLE pgactions.kept_cursor RENAME TO ${cursor};
      DROP FUNCTION ${read}; ALTER FUNCTION pgactions.kept_read(bigint, integer, interval, boolean) RENAME TO ${read.replace(/\(.*/, '').replace(/^pgactions\./, '')}; DROP FUNCTION pgactions.folded()`);
  }
}, 60_000);

test("the schema changing hands between the owner check and the start's read: the read's own guard refuses it, naming the read", async () => {
  await activateTrigger('row-changes', request());
  const cursor = await cursorTable();
  const holder = await session(db);
  try {
    // The read of the acknowledged position waits for the cursor's lock after the owner check passed.
    await holder.query(`BEGIN; LOCK TABLE pgactions.${cursor} IN ACCESS EXCLUSIVE MODE`);
    const started = failureOf(pollTrigger('row-changes', request()));
    await waitFor(async () => (await db.sql(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
      AND query LIKE '%untrusted owner%' AND query LIKE '%acked%'`)).length > 0, "the start's read waiting for the cursor", 30_000);
    await holder.query(`ALTER SCHEMA pgactions OWNER TO ${owner}; COMMIT`);
    const refused = await started;
    expect({ code: refused.code, message: refused.message }).toEqual({ code: 'PERMISSION_DENIED', message: expect.stringContaining(refusal) });
    expect(refused.message.startsWith(refusal)).toBe(true);
  } finally {
    await holder.end();
  }
}, 60_000);
