/**
 * The role row-changes serialises rows as (REVIEW9 R161): pgactions_capture_<database oid>, one per
 * database, NOLOGIN, with no attribute, no membership and no grant. to_jsonb calls any cast to json
 * the owner of a column's type made; run as the writer (a superuser's migration, say) or as the
 * activator, such a cast runs with their rights. Run as this role it can do nothing: it sees no
 * table and may call nothing of pg-actions'. Only rc_F_json (capture-sql.ts) is this role's, and
 * only the capture functions may call it.
 * One role per database, not one for the cluster (REVIEW11 R169): whoever may act as the role may
 * drop what it owns (DROP OWNED BY), take it (REASSIGN OWNED) or rename it, which stops every captured
 * write that relies on it; with one role for the cluster a tenant of another database that made it
 * (PostgreSQL 16+ gives the creator ADMIN OPTION) could do that to every database. Now only this
 * database's activators (and superusers) may act as its role. Role names are the cluster's and a
 * database's oid is public, so another database's tenant may make the role first: activation refuses
 * a role that any other role may act as. Activations made before serialise as the shared
 * pgactions_capture (SHARED_CAPTURE_ROLE) until activated again (listActivations: outdated).
 * Activation makes the role when the activating role may (a superuser, or CREATEROLE), refuses
 * otherwise naming the one-time set-up, and refuses one that has any right. pg-actions never drops it.
 */
import { PgActionsError, quoteIdentifier } from '../connection/index.js';
import type { Query } from '../connection/session.js';

/** The cluster's one role of earlier versions: activations made before R169's fix still serialise as it. */
export const SHARED_CAPTURE_ROLE = 'pgactions_capture';

/**
 * The name of the capture role of the database whose oid is given: plain [a-z0-9_] (at most 28 bytes
 * of PostgreSQL's 63), so its text is its identifier, safe in SQL text and function bodies unquoted.
 * (Role names starting with pg_ are reserved.)
 */
export function captureRoleName(databaseOid: string): string {
  if (!/^[0-9]{1,10}$/.test(databaseOid)) throw new Error(`not a database oid: ${JSON.stringify(databaseOid)}`);
  return `${SHARED_CAPTURE_ROLE}_${databaseOid}`;
}

/** The current database's capture role's name, as an SQL expression (of type text). */
export const CAPTURE_ROLE_SQL = `('${SHARED_CAPTURE_ROLE}_' OPERATOR(pg_catalog.||) (SELECT cd.oid FROM pg_catalog.pg_database cd WHERE cd.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())::pg_catalog.text)`;

const ROLE_SQL = `SELECT r.rolcanlogin, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
       (SELECT pg_catalog.string_agg(m.roleid::pg_catalog.regrole::pg_catalog.text, ', ') FROM pg_catalog.pg_auth_members m WHERE m.member OPERATOR(pg_catalog.=) r.oid) AS member_of
  FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1::pg_catalog.name`;
const ME_SQL = `SELECT pg_catalog.current_setting('server_version_num')::pg_catalog.int4 AS version, SESSION_USER::pg_catalog.text AS session_user,
       (SELECT d.oid::pg_catalog.text FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()) AS database,
       (SELECT r.rolsuper OR r.rolcreaterole FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) AS can_create`;

const ATTRIBUTES = ['LOGIN', 'SUPERUSER', 'CREATEROLE', 'CREATEDB', 'REPLICATION', 'BYPASSRLS'] as const;
const COLUMNS: Record<(typeof ATTRIBUTES)[number], string> = {
  LOGIN: 'rolcanlogin', SUPERUSER: 'rolsuper', CREATEROLE: 'rolcreaterole', CREATEDB: 'rolcreatedb', REPLICATION: 'rolreplication', BYPASSRLS: 'rolbypassrls',
};

/**
 * The roles other than this session's, its current role, superusers and the owners of this
 * database's capture functions (its earlier activators) that are members of the role $1: any of them
 * could act as it (a tenant of another database that made it first, REVIEW11 R169). Superusers need
 * no membership; PostgreSQL 16+ records the ADMIN OPTION a CREATEROLE creator gets as one.
 */
const MEMBERS_SQL = `SELECT pg_catalog.array_agg(DISTINCT mr.rolname::pg_catalog.text ORDER BY mr.rolname::pg_catalog.text) AS members
  FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles mr ON mr.oid OPERATOR(pg_catalog.=) m.member
 WHERE m.roleid OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1::pg_catalog.name)
   AND mr.rolname OPERATOR(pg_catalog.<>) ALL (ARRAY[SESSION_USER, CURRENT_USER]) AND NOT mr.rolsuper
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace('pgactions')::pg_catalog.oid
                     AND p.proowner OPERATOR(pg_catalog.=) mr.oid AND p.proname OPERATOR(pg_catalog.~) '^rc_[0-9a-f]{16}_capture(_set)?$')`;

/** The one-time set-up a superuser runs when the activating role may not make the role (`role`: as SQL). */
export function captureRoleSetup(activator: string, version: number, role: string): string[] {
  return [
    `CREATE ROLE ${role} NOLOGIN;`,
    version >= 160000 ? `GRANT ${role} TO ${quoteIdentifier(activator)} WITH INHERIT FALSE, SET TRUE;` : `GRANT ${role} TO ${quoteIdentifier(activator)};`,
  ];
}

function refused(message: string, fixes: string[]): PgActionsError {
  return new PgActionsError('PERMISSION_DENIED', { message: `row-changes activation: ${message}`, fixes });
}

/**
 * Makes sure this database's capture role exists, is harmless, nobody but this database's
 * activators may act as it, and this session may SET ROLE to it (to give it rc_F_json). Returns its
 * name. (`name`: another role, for tests.)
 */
export async function ensureCaptureRole(query: Query, name?: string): Promise<string> {
  const [me] = await query(ME_SQL);
  const version = Number(me!.version);
  const sessionUser = String(me!.session_user);
  name ??= captureRoleName(String(me!.database));
  const role = name === captureRoleName(String(me!.database)) ? name : quoteIdentifier(name);
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
  const members = ((await query(MEMBERS_SQL, [name]))[0]?.members as string[] | null) ?? [];
  if (members.length > 0) {
    throw refused(`the role ${role}, which the capture serialises rows as, may be used by ${members.map((member) => quoteIdentifier(member)).join(', ')}, `
      + 'not an activator of this database: such a role (a tenant of another database that made it first, say) could drop or take what the role owns here and stop every captured write.',
    members.map((member) => `REVOKE ${role} FROM ${quoteIdentifier(member)}; (by a superuser; or DROP ROLE ${role}; when it owns nothing yet) Then activate again.`));
  }
  const option = version >= 160000 ? 'SET' : 'MEMBER';
  const can = async (): Promise<boolean> => (await query(`SELECT pg_catalog.pg_has_role(SESSION_USER, $1::pg_catalog.name, '${option}') AS ok`, [name]))[0]!.ok === true;
  if (await can()) return name;
  // PostgreSQL 16+: CREATEROLE grants only roles it has ADMIN on (it gets that on the roles it makes); before, any non-superuser role.
  const [admin] = await query(`SELECT pg_catalog.pg_has_role(CURRENT_USER, $1::pg_catalog.name, 'MEMBER WITH ADMIN OPTION') AS ok`, [name]);
  if (admin?.ok === true || (version < 160000 && me!.can_create === true)) {
    await query(version >= 160000 ? `GRANT ${role} TO SESSION_USER WITH INHERIT FALSE, SET TRUE` : `GRANT ${role} TO SESSION_USER`);
    if (await can()) return name;
  }
  throw refused(`this role (${quoteIdentifier(sessionUser)}) may not SET ROLE to ${role}, which it needs to give that role the function the capture serialises rows with.`,
    [`Once, as a superuser: ${captureRoleSetup(sessionUser, version, role).slice(1).join(' ')} Then activate again.`]);
}

/**
 * Runs `work` as the capture role (SET LOCAL ROLE), with USAGE and CREATE on the pgactions schema
 * for just that long: every grant is taken back before the transaction commits, so nobody ever
 * sees the role with a right.
 */
export async function asCaptureRole(query: Query, schema: string, role: string, work: () => Promise<void>): Promise<void> {
  const [before] = await query(`SELECT pg_catalog.current_setting('role') AS role`);
  await query(`GRANT USAGE, CREATE ON SCHEMA ${schema} TO ${quoteIdentifier(role)}`);
  await query(`SELECT pg_catalog.set_config('role', $1::pg_catalog.text, true)`, [role]);
  await work();
  await query(`SELECT pg_catalog.set_config('role', $1::pg_catalog.text, true)`, [String(before!.role)]);
  await query(`REVOKE USAGE, CREATE ON SCHEMA ${schema} FROM ${quoteIdentifier(role)}`);
}
