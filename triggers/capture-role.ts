/**
 * The role row-changes serialises rows as (REVIEW9 R161): pgactions_capture, NOLOGIN, with no
 * attribute, no membership and no grant. to_jsonb calls any cast to json the owner of a column's
 * type made; run as the writer (a superuser's migration, say) or as the activator, such a cast
 * runs with their rights. Run as this role it can do nothing: it sees no table and may call
 * nothing of pg-actions'. Only rc_F_json (capture-sql.ts) is this role's, and only the capture
 * functions may call it. The role is the cluster's (roles are), made once, and never dropped.
 * Activation makes it when the activating role may (a superuser, or CREATEROLE), and refuses
 * otherwise naming the one-time set-up, and refuses one that has any right.
 */
import { PgActionsError, quoteIdentifier } from '../connection/index.js';
import type { Query } from '../connection/session.js';

/** (Role names starting with pg_ are reserved.) */
export const CAPTURE_ROLE = 'pgactions_capture';

const ROLE_SQL = `SELECT r.rolcanlogin, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
       (SELECT pg_catalog.string_agg(m.roleid::pg_catalog.regrole::pg_catalog.text, ', ') FROM pg_catalog.pg_auth_members m WHERE m.member OPERATOR(pg_catalog.=) r.oid) AS member_of
  FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1::pg_catalog.name`;
const ME_SQL = `SELECT pg_catalog.current_setting('server_version_num')::pg_catalog.int4 AS version, SESSION_USER::pg_catalog.text AS session_user,
       (SELECT r.rolsuper OR r.rolcreaterole FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) AS can_create`;

const ATTRIBUTES = ['LOGIN', 'SUPERUSER', 'CREATEROLE', 'CREATEDB', 'REPLICATION', 'BYPASSRLS'] as const;
const COLUMNS: Record<(typeof ATTRIBUTES)[number], string> = {
  LOGIN: 'rolcanlogin', SUPERUSER: 'rolsuper', CREATEROLE: 'rolcreaterole', CREATEDB: 'rolcreatedb', REPLICATION: 'rolreplication', BYPASSRLS: 'rolbypassrls',
};

/** The one-time set-up a superuser runs when the activating role may not make the role. */
export function captureRoleSetup(activator: string, version: number, role = CAPTURE_ROLE): string[] {
  return [
    `CREATE ROLE ${role} NOLOGIN;`,
    version >= 160000 ? `GRANT ${role} TO ${quoteIdentifier(activator)} WITH INHERIT FALSE, SET TRUE;` : `GRANT ${role} TO ${quoteIdentifier(activator)};`,
  ];
}

function refused(message: string, fixes: string[]): PgActionsError {
  return new PgActionsError('PERMISSION_DENIED', { message: `row-changes activation: ${message}`, fixes });
}

/**
 * Makes sure the capture role exists, is harmless, and that this session may SET ROLE to it (to
 * give it rc_F_json). (`name`: another role, for tests: the cluster's one is shared by everyone.)
 */
export async function ensureCaptureRole(query: Query, name = CAPTURE_ROLE): Promise<void> {
  const role = name === CAPTURE_ROLE ? CAPTURE_ROLE : quoteIdentifier(name);
  const [me] = await query(ME_SQL);
  const version = Number(me!.version);
  const sessionUser = String(me!.session_user);
  let [found] = await query(ROLE_SQL, [name]);
  if (!found) {
    if (me!.can_create !== true) {
      throw refused(`the role ${role} that the capture serialises rows as (so that a cast to json made by the owner of a column's type runs with no rights) does not exist, and this role may not create roles.`,
        [`Once, as a superuser: ${captureRoleSetup(sessionUser, version, role).join(' ')} Then activate again.`]);
    }
    await query(`CREATE ROLE ${role} NOLOGIN`);
    [found] = await query(ROLE_SQL, [name]);
  }
  const rights = ATTRIBUTES.filter((attribute) => found![COLUMNS[attribute]] === true);
  if (rights.length > 0 || found!.member_of) {
    throw refused(`the role ${role}, which the capture serialises rows as, must have no rights, but it ${[
      rights.length > 0 ? `has ${rights.join(', ')}` : '', found!.member_of ? `is a member of ${String(found!.member_of)}` : ''].filter(Boolean).join(' and ')}.`,
    [
      ...(rights.length > 0 ? [`ALTER ROLE ${role} ${rights.map((right) => `NO${right}`).join(' ')}; (by a superuser)`] : []),
      ...(found!.member_of ? [`REVOKE ${String(found!.member_of)} FROM ${role}; (by a superuser)`] : []),
    ]);
  }
  const option = version >= 160000 ? 'SET' : 'MEMBER';
  const can = async () => (await query(`SELECT pg_catalog.pg_has_role(SESSION_USER, $1::pg_catalog.name, '${option}') AS ok`, [name]))[0]!.ok === true;
  if (await can()) return;
  // PostgreSQL 16+: CREATEROLE grants only roles it has ADMIN on (it gets that on the roles it makes); before, any non-superuser role.
  const [admin] = await query(`SELECT pg_catalog.pg_has_role(CURRENT_USER, $1::pg_catalog.name, 'MEMBER WITH ADMIN OPTION') AS ok`, [name]);
  if (admin?.ok === true || (version < 160000 && me!.can_create === true)) {
    await query(version >= 160000 ? `GRANT ${role} TO SESSION_USER WITH INHERIT FALSE, SET TRUE` : `GRANT ${role} TO SESSION_USER`);
    if (await can()) return;
  }
  throw refused(`this role (${quoteIdentifier(sessionUser)}) may not SET ROLE to ${role}, which it needs to give that role the function the capture serialises rows with.`,
    [`Once, as a superuser: ${captureRoleSetup(sessionUser, version, role).slice(1).join(' ')} Then activate again.`]);
}

/**
 * Runs `work` as the capture role (SET LOCAL ROLE), with USAGE and CREATE on the pgactions schema
 * for just that long: every grant is taken back before the transaction commits, so nobody ever
 * sees the role with a right.
 */
export async function asCaptureRole(query: Query, schema: string, work: () => Promise<void>): Promise<void> {
  const [before] = await query(`SELECT pg_catalog.current_setting('role') AS role`);
  await query(`GRANT USAGE, CREATE ON SCHEMA ${schema} TO ${CAPTURE_ROLE}`);
  await query(`SELECT pg_catalog.set_config('role', $1::pg_catalog.text, true)`, [CAPTURE_ROLE]);
  await work();
  await query(`SELECT pg_catalog.set_config('role', $1::pg_catalog.text, true)`, [String(before!.role)]);
  await query(`REVOKE USAGE, CREATE ON SCHEMA ${schema} FROM ${CAPTURE_ROLE}`);
}
