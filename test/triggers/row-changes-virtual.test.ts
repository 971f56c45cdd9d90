/**
 * REVIEW11 R176: PostgreSQL 18's VIRTUAL generated columns (the default kind there) are computed when
 * read: a trigger's rows and its transition tables hold them as NULL, so row-changes events carried
 * `"total": null`. The capture computes them from their expression over the row, in the statement
 * capture (ordinary tables) and the row capture (partitions), for new and old images. An expression
 * that would run something not built in as the activating role (PostgreSQL 18 refuses user-defined
 * functions there; a later version may not) is refused, naming the column and the fix (STORED).
 */
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { isPgActionsError } from '../../connection/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('rc_virtual');
const request = () => ({ connection: db.config, config: { tables: ['public.lines', 'public.parted'] } });
let virtualColumns = false;
type Change = { op: string; table: string; new: Record<string, unknown> | null; old: Record<string, unknown> | null };

beforeAll(async () => {
  virtualColumns = (await db.sql<{ v: number }>(`SELECT current_setting('server_version_num')::int AS v`))[0]!.v >= 180000;
  if (!virtualColumns) return; // PostgreSQL < 18 has no VIRTUAL generated columns
  await db.sql(`CREATE ROLE rc_virtual_owner_${db.name}; CREATE TYPE mood AS ENUM ('ok', 'sad'); ALTER TYPE mood OWNER TO rc_virtual_owner_${db.name};
    CREATE OPERATOR ### (FUNCTION = int4pl, LEFTARG = int, RIGHTARG = int);
    -- c: a column named like the alias the capture reads rows through; m: a non-superuser's enum (written as its text, R170)
    CREATE TABLE lines (id int PRIMARY KEY, c int, qty int, m mood, total int GENERATED ALWAYS AS (c * qty) VIRTUAL,
      label text GENERATED ALWAYS AS ('#' || id::text) VIRTUAL, plus int GENERATED ALWAYS AS (qty ### 1) VIRTUAL,
      stored int GENERATED ALWAYS AS (qty + 100) STORED);
    CREATE TABLE parted (id int PRIMARY KEY, qty int, twice int GENERATED ALWAYS AS (qty * 2) VIRTUAL) PARTITION BY RANGE (id);
    CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (1000)`);
  await activateTrigger('row-changes', request());
}, 60_000);
afterAll(async () => {
  if (!virtualColumns) return;
  await deactivateTrigger('row-changes', request()).catch(() => undefined);
  await db.sql(`DROP TABLE IF EXISTS lines, parted, refused, rparted; DROP TYPE IF EXISTS mood; DROP ROLE IF EXISTS rc_virtual_owner_${db.name}`).catch(() => undefined);
}, 60_000);

const changes = async (work: string) => {
  const { state } = await pollTrigger('row-changes', request());
  await db.sql(work);
  return (await pollTrigger('row-changes', { ...request(), state })).events as unknown as Change[];
};

test('the statement capture computes VIRTUAL generated columns for INSERT, UPDATE (new and old) and DELETE', async () => {
  if (!virtualColumns) return;
  const events = await changes(`INSERT INTO lines (id, c, qty, m) VALUES (1, 3, 4, 'ok'), (2, 5, NULL, NULL);
    UPDATE lines SET qty = 10 WHERE id = 1; DELETE FROM lines WHERE id = 2`);
  expect(events.map((e) => [e.op, e.new, e.old])).toEqual([
    ['INSERT', { id: 1, c: 3, qty: 4, m: 'ok', total: 12, label: '#1', plus: 5, stored: 104 }, null],
    ['INSERT', { id: 2, c: 5, qty: null, m: null, total: null, label: '#2', plus: null, stored: null }, null],
    ['UPDATE', { id: 1, c: 3, qty: 10, m: 'ok', total: 30, label: '#1', plus: 11, stored: 110 }, { id: 1, c: 3, qty: 4, m: 'ok', total: 12, label: '#1', plus: 5, stored: 104 }],
    ['DELETE', null, { id: 2, c: 5, qty: null, m: null, total: null, label: '#2', plus: null, stored: null }],
  ]);
}, 60_000);

test('the row capture (a partition of a watched partitioned table) computes them too, and follows ALTER … SET EXPRESSION', async () => {
  if (!virtualColumns) return;
  const events = await changes(`INSERT INTO parted (id, qty) VALUES (1, 21); UPDATE parted SET qty = 5 WHERE id = 1;
    ALTER TABLE parted ALTER COLUMN twice SET EXPRESSION AS (qty * 3); DELETE FROM parted WHERE id = 1`);
  expect(events.map((e) => [e.op, e.table, e.new, e.old])).toEqual([
    ['INSERT', 'parted', { id: 1, qty: 21, twice: 42 }, null],
    ['UPDATE', 'parted', { id: 1, qty: 5, twice: 10 }, { id: 1, qty: 21, twice: 42 }],
    ['DELETE', 'parted', null, { id: 1, qty: 5, twice: 15 }],
  ]);
}, 60_000);

test('an expression that depends on a function that is not built in is not run as the activator: activation and the capture refuse, naming the column and the fix', async () => {
  if (!virtualColumns) return;
  // PostgreSQL 18 refuses such an expression; a later version may allow it. A superuser records the dependency
  // a version that allowed `GENERATED ALWAYS AS (f(qty)) VIRTUAL` would record.
  await db.sql(`CREATE OR REPLACE FUNCTION plus_one(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 1';
    CREATE TABLE refused (id int PRIMARY KEY, qty int)`);
  const fake = `INSERT INTO pg_depend (classid, objid, objsubid, refclassid, refobjid, refobjsubid, deptype)
    SELECT 'pg_attrdef'::regclass, ad.oid, 0, 'pg_proc'::regclass, 'plus_one(int)'::regprocedure, 0, 'n'
      FROM pg_attrdef ad WHERE ad.adrelid = 'refused'::regclass`;
  const refused = { connection: db.config, config: { tables: ['public.refused'] } };
  await activateTrigger('row-changes', refused);
  try {
    // A column added after activation: met by the capture.
    await db.sql(`ALTER TABLE refused ADD COLUMN later int GENERATED ALWAYS AS (qty + 1) VIRTUAL`);
    await db.sql(fake);
    await expect(db.sql(`INSERT INTO refused (id, qty) VALUES (1, 1)`)).rejects.toMatchObject({
      code: '42501', message: expect.stringMatching(/does not compute the generated column later of public\.refused: .*Fix: make the column STORED/),
    });
    const error = await activateTrigger('row-changes', refused).then(() => undefined, (e: unknown) => e);
    expect(isPgActionsError(error) && error.code).toBe('PERMISSION_DENIED');
    expect((error as Error).message).toMatch(/generated column "later" of (public\.)?refused is VIRTUAL.*STORED/);
  } finally {
    await deactivateTrigger('row-changes', refused).catch(() => undefined);
  }
}, 60_000);

test('activation looks at the partitions too: one whose VIRTUAL column depends on a function that is not built in is named', async () => {
  if (!virtualColumns) return;
  await db.sql(`CREATE OR REPLACE FUNCTION plus_one(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 1';
    CREATE TABLE rparted (id int PRIMARY KEY, qty int, later int GENERATED ALWAYS AS (qty + 1) VIRTUAL) PARTITION BY RANGE (id);
    CREATE TABLE rparted_1 PARTITION OF rparted FOR VALUES FROM (0) TO (1000);
    INSERT INTO pg_depend (classid, objid, objsubid, refclassid, refobjid, refobjsubid, deptype)
      SELECT 'pg_attrdef'::regclass, ad.oid, 0, 'pg_proc'::regclass, 'plus_one(int)'::regprocedure, 0, 'n'
        FROM pg_attrdef ad WHERE ad.adrelid = 'rparted_1'::regclass`);
  const rparted = { connection: db.config, config: { tables: ['public.rparted'] } };
  const error = await activateTrigger('row-changes', rparted).then(() => undefined, (e: unknown) => e);
  await deactivateTrigger('row-changes', rparted).catch(() => undefined);
  expect(isPgActionsError(error) && error.code).toBe('PERMISSION_DENIED');
  expect((error as Error).message).toMatch(/generated column "later" of (public\.)?rparted_1 is VIRTUAL/);
}, 60_000);

test('and at inheritance descendants (REVIEW12 R186: they get the capture too): one whose VIRTUAL column depends on a function that is not built in is named', async () => {
  if (!virtualColumns) return;
  await db.sql(`CREATE OR REPLACE FUNCTION plus_one(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 1';
    CREATE TABLE rinh (id int PRIMARY KEY, qty int);
    CREATE TABLE rinh_child (later int GENERATED ALWAYS AS (qty + 1) VIRTUAL) INHERITS (rinh);
    INSERT INTO pg_depend (classid, objid, objsubid, refclassid, refobjid, refobjsubid, deptype)
      SELECT 'pg_attrdef'::regclass, ad.oid, 0, 'pg_proc'::regclass, 'plus_one(int)'::regprocedure, 0, 'n'
        FROM pg_attrdef ad WHERE ad.adrelid = 'rinh_child'::regclass`);
  const rinh = { connection: db.config, config: { tables: ['public.rinh'] } };
  const error = await activateTrigger('row-changes', rinh).then(() => undefined, (e: unknown) => e);
  await deactivateTrigger('row-changes', rinh).catch(() => undefined);
  expect(isPgActionsError(error) && error.code).toBe('PERMISSION_DENIED');
  expect((error as Error).message).toMatch(/generated column "later" of (public\.)?rinh_child is VIRTUAL/);
}, 60_000);
