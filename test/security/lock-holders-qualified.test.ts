/**
 * REVIEW10 R164: when an activation or deactivation gave up waiting for pg-actions' activation lock,
 * the query naming the lock's holders ran as the activator (often a superuser) with unqualified
 * operators: `l.classid = '…'::regclass` is oid = regclass, which pg_catalog offers only through a
 * cast, so an exact look-alike made by any role with CREATE on public won (and ran `COPY … TO
 * PROGRAM` as the server's OS user). The same texts are printed in the fix ("Find who holds it"),
 * for people to run. Every holder query now names its operators' schema: with public even before
 * pg_catalog on the database's search_path, no look-alike runs.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { tablesLock } from '../../connection/session.js';
import { ACTIVATION_LOCK } from '../../triggers/activation-lock.js';
import { ADVISORY_LOCK, ADVISORY_LOCK_SQL, LOCK_CLASS } from '../../triggers/outbox-sql.js';
import { activateTrigger, deactivateTrigger } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf, session } from '../triggers/helpers.js';

const role = `lockop_${randomBytes(4).toString('hex')}`;
const record = join(tmpdir(), `${role}-ran.txt`);
const db = useTestDatabase('lockholders', { beforeDrop: () => db.sql(`DROP OWNED BY ${role}; DROP ROLE IF EXISTS ${role}`).then(() => undefined) });
const STEP_TIMEOUT_MS = 3000;
const request = () => ({ connection: { ...db.config, statementTimeoutMs: STEP_TIMEOUT_MS }, config: { tables: ['orders'] } });
/** Every `=` a holder query could use, for its exact argument types (public comes first: exact matches there win). */
const LOOK_ALIKES = [['oid', 'regclass'], ['oid', 'regnamespace'], ['oid', 'integer'], ['oid', 'oid'], ['integer', 'integer'], ['text', 'text']] as const;

const ran = (): string => (existsSync(record) ? readFileSync(record, 'utf8') : '');

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${role} LOGIN PASSWORD 'lockop-pass'`);
  await db.sql(`GRANT CREATE ON SCHEMA public TO ${role}; CREATE TABLE orders (id int PRIMARY KEY)`);
  await db.sql(`ALTER DATABASE ${db.name} SET search_path = public, pg_catalog`);
  // The attacker: no privilege but CREATE on public. Each look-alike answers as pg_catalog's would, and records who ran it and what.
  const attacker = new pg.Client({ ...db.config, user: role, password: 'lockop-pass', ssl: false } as pg.ClientConfig);
  await attacker.connect();
  try {
    for (const [left, right] of LOOK_ALIKES) {
      await attacker.query(`CREATE FUNCTION public.${role}_${left}_${right}(a ${left}, b ${right}) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN
          EXECUTE pg_catalog.format('COPY (SELECT %L, %L) TO PROGRAM %L', current_user, pg_catalog.current_query(), 'cat >> ${record}');
          RETURN a OPERATOR(pg_catalog.=) b::pg_catalog.${left}; END $f$`);
      await attacker.query(`CREATE OPERATOR public.= (LEFTARG = ${left}, RIGHTARG = ${right}, FUNCTION = public.${role}_${left}_${right})`);
    }
  } finally {
    await attacker.end();
  }
}, 60_000);

afterAll(() => rmSync(record, { force: true }));

test('an activation and a deactivation that give up on the held activation lock name its holder, and no look-alike = runs', async () => {
  // The trap works: an unqualified comparison in this database picks the look-alike.
  await db.sql("SELECT count(*) FROM pg_catalog.pg_class c WHERE c.oid = 'pg_catalog.pg_class'::pg_catalog.regclass");
  expect(ran()).toContain('pg_class');
  rmSync(record, { force: true });

  await activateTrigger('row-changes', request()); // the pgactions schema exists
  const holder = await session(db);
  try {
    await holder.query('BEGIN');
    await holder.query("COMMENT ON SCHEMA pgactions IS 'x'"); // what another activation or deactivation holds while it runs
    const holderPid = (holder as unknown as { processID: number }).processID;
    for (const work of [activateTrigger('row-changes', request()), deactivateTrigger('row-changes', request())]) {
      const error = await failureOf(work);
      expect(error.code).toBe('LOCK_NOT_AVAILABLE');
      expect(error.message).toContain(`It is held by pid ${holderPid} (role ${db.config.user}`);
    }
    expect(ran()).toBe(''); // before R164's fix: the activator's name and the holder query, twice
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end();
  }
}, 60_000);

test('the holder queries printed in the fixes run no look-alike either, and find the holder', async () => {
  const holder = await session(db);
  try {
    await holder.query('BEGIN');
    await holder.query("COMMENT ON SCHEMA pgactions IS 'x'");
    await holder.query(ADVISORY_LOCK_SQL, [LOCK_CLASS]);
    await holder.query('LOCK TABLE orders IN SHARE MODE');
    const holderPid = (holder as unknown as { processID: number }).processID;
    for (const target of [ACTIVATION_LOCK, ADVISORY_LOCK, tablesLock(['"public"."orders"'])]) {
      const rows = await db.sql<{ pid: number }>(target.holders.replace(/;$/, ''));
      expect(rows.map((row) => row.pid)).toEqual([holderPid]);
    }
    expect(ran()).toBe('');
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end();
  }
}, 60_000);
