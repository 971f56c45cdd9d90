/**
 * The capture role (REVIEW9 R161, capture-role.ts), checked on roles of this test's own (a
 * database's pgactions_capture_<oid> is made by its first activation): activation makes it when it may (CREATEROLE)
 * and gives itself SET ROLE to it, refuses one with any right, and, when it may not make or grant
 * it, refuses naming the one-time set-up.
 */
import { randomBytes } from 'node:crypto';
import { inTransaction } from '../../connection/session.js';
import { ensureCaptureRole } from '../../triggers/capture-role.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const suffix = randomBytes(4).toString('hex');
const [creator, plain, capture, other, unused] = ['creator', 'plain', 'capture', 'other', 'unused'].map((role) => `rc_role_${role}_${suffix}`) as [string, string, string, string, string];
const roles = [capture, other, unused, creator, plain];
const db = useTestDatabase('rc_capture_role', {
  beforeDrop: async () => {
    await db.sql('DROP SCHEMA IF EXISTS pgactions CASCADE');
    for (const role of roles) await db.sql(`DROP ROLE IF EXISTS ${role}`);
  },
});
const as = (user: string) => ({ ...db.config, user, password: 'role-pass' });
const ensure = (user: string) => inTransaction(as(user), (query) => ensureCaptureRole(query, capture));
let version = 0;

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${creator} LOGIN CREATEROLE PASSWORD 'role-pass'; CREATE ROLE ${plain} LOGIN PASSWORD 'role-pass'; CREATE ROLE ${other}`);
  version = Number((await db.sql<{ v: number }>(`SELECT current_setting('server_version_num')::int AS v`))[0]!.v);
}, 60_000);

test('a role that may not create roles is refused while the role is missing, naming the one-time set-up', async () => {
  await expect(ensure(plain)).rejects.toMatchObject({
    code: 'PERMISSION_DENIED',
    message: expect.stringContaining(`the role "${capture}" that the capture serialises rows as`),
    fixes: [expect.stringContaining(`CREATE ROLE "${capture}" NOLOGIN; GRANT "${capture}" TO "${plain}"`)],
  });
  expect(await db.sql('SELECT 1 FROM pg_roles WHERE rolname = $1', [capture])).toEqual([]);
}, 60_000);

test('a CREATEROLE role makes it (NOLOGIN, no rights) and may then SET ROLE to it without inheriting it', async () => {
  await ensure(creator);
  expect(await db.sql(`SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = $1`, [capture]))
    .toEqual([{ rolcanlogin: false, rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolreplication: false, rolbypassrls: false }]);
  const option = version >= 160000 ? 'SET' : 'MEMBER';
  expect(await db.sql(`SELECT pg_has_role($1, $2, '${option}') AS may_set, pg_has_role($2, $1, 'MEMBER') AS capture_is_member`, [creator, capture]))
    .toEqual([{ may_set: true, capture_is_member: false }]);
  if (version >= 160000) expect(await db.sql(`SELECT pg_has_role($1, $2, 'USAGE') AS inherits`, [creator, capture])).toEqual([{ inherits: false }]);
  await ensure(creator); // again: nothing to do
}, 60_000);

test('a role that may not SET ROLE to the existing role is refused, naming the grant', async () => {
  await db.sql(`CREATE ROLE ${unused} NOLOGIN`);
  await expect(inTransaction(as(plain), (query) => ensureCaptureRole(query, unused))).rejects.toMatchObject({
    code: 'PERMISSION_DENIED',
    message: expect.stringContaining(`("${plain}") may not SET ROLE to "${unused}"`),
    fixes: [expect.stringContaining(version >= 160000 ? `GRANT "${unused}" TO "${plain}" WITH INHERIT FALSE, SET TRUE;` : `GRANT "${unused}" TO "${plain}";`)],
  });
}, 60_000);

test('REVIEW11 R169: a role another role may act as is refused, unless that role is an activator of this database (owns its capture functions)', async () => {
  // creator made capture (a tenant of another database could have): plain, activating here, is refused naming it.
  await expect(ensure(plain)).rejects.toMatchObject({
    code: 'PERMISSION_DENIED',
    message: expect.stringContaining(`the role "${capture}", which the capture serialises rows as, may be used by "${creator}", not an activator of this database`),
    fixes: [expect.stringContaining(`REVOKE "${capture}" FROM "${creator}";`)],
  });
  await db.sql(`CREATE SCHEMA pgactions; CREATE FUNCTION pgactions.rc_0123456789abcdef_capture() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
    ALTER FUNCTION pgactions.rc_0123456789abcdef_capture() OWNER TO ${creator}`);
  try {
    // Now creator has activated here: plain is refused only for want of the grant.
    await expect(ensure(plain)).rejects.toMatchObject({ code: 'PERMISSION_DENIED', message: expect.stringContaining(`("${plain}") may not SET ROLE to "${capture}"`) });
  } finally {
    await db.sql('DROP SCHEMA pgactions CASCADE');
  }
}, 60_000);

test.each([
  ['LOGIN', `ALTER ROLE ${capture} LOGIN`, 'has LOGIN', `ALTER ROLE "${capture}" NOLOGIN;`],
  ['CREATEDB and BYPASSRLS', `ALTER ROLE ${capture} CREATEDB BYPASSRLS`, 'has CREATEDB, BYPASSRLS', `ALTER ROLE "${capture}" NOCREATEDB NOBYPASSRLS;`],
  ['a membership', `GRANT ${other} TO ${capture}`, `is a member of ${other}`, `REVOKE ${other} FROM "${capture}";`],
])('an existing role with %s is refused, whoever activates', async (_what, grant, said, fix) => {
  await db.sql(grant);
  try {
    for (const user of [creator, db.config.user as string]) {
      await expect(inTransaction(user === creator ? as(creator) : db.config, (query) => ensureCaptureRole(query, capture))).rejects.toMatchObject({
        code: 'PERMISSION_DENIED', message: expect.stringContaining(said), fixes: [expect.stringContaining(fix)],
      });
    }
  } finally {
    await db.sql(`ALTER ROLE ${capture} NOLOGIN NOCREATEDB NOBYPASSRLS; REVOKE ${other} FROM ${capture}`);
  }
  await ensure(creator);
}, 60_000);
