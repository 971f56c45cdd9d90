/**
 * Whose schema pgactions is (REVIEW9 R156). Its owner may drop any object in it and put its own in
 * its place, and pg-actions calls into it by name (rc_F_read, rc_F_put, the cursor, the heartbeat
 * table, schema-changes' outbox): so the owner must be trusted:
 * the role running the statement itself, or a superuser. Activation and deactivation refuse any
 * other owner; the statements that call into the schema check it themselves (guarded(), evaluated
 * before the call), so the check and the call see the same owner.
 * The owner is not the only one with power there (REVIEW10 R162): objects keep their owners when the
 * schema changes hands, and so do its grants. So activation, and every read before it calls in, also
 * refuse a schema that grants anything but USAGE to a role that is neither its owner nor a superuser,
 * or holds an object owned by a role that is neither this role, the schema's owner, a superuser nor
 * the database's capture role (which owns rc_F_json and has no rights; or the cluster's shared one,
 * which owns the rc_F_json of activations made before REVIEW11 R169 until they are activated again). No check-then-use: once both hold, only
 * trusted roles can change what is in the schema.
 */
import { execute, isPgActionsError, PgActionsError, quoteIdentifier } from '../connection/index.js';
import type { Query } from '../connection/session.js';
import { CAPTURE_ROLE_SQL, SHARED_CAPTURE_ROLE } from './capture-role.js';
import { SCHEMA } from './outbox-sql.js';

/** Raised inside guarded statements: an int8 input error whose text carries the owner's name. */
const MARKER = 'pg-actions: untrusted owner of schema pgactions:';

/** The owner row (alias r) of the pgactions schema (alias n), qualified so it reads the same under a pinned path. */
const OWNER_FROM = `pg_catalog.pg_namespace snsp JOIN pg_catalog.pg_roles sown ON sown.oid OPERATOR(pg_catalog.=) snsp.nspowner
  WHERE snsp.nspname OPERATOR(pg_catalog.=) '${SCHEMA}'`;

/** True when r (the owner) is trusted by the current role: a superuser, or that role itself. */
const TRUSTED = `(sown.rolsuper OR sown.oid OPERATOR(pg_catalog.=) (SELECT suse.oid FROM pg_catalog.pg_roles suse WHERE suse.rolname OPERATOR(pg_catalog.=) CURRENT_USER))`;

/** Roles other than the schema's owner, this role and superusers (alias sr, its oid `oid`). */
const FOREIGN_ROLE = (oid: string) => `(${oid} OPERATOR(pg_catalog.<>) snsp.nspowner AND NOT COALESCE((SELECT sr.rolsuper OR sr.rolname OPERATOR(pg_catalog.=) CURRENT_USER
  OR sr.rolname OPERATOR(pg_catalog.=) ANY (ARRAY['${SHARED_CAPTURE_ROLE}', ${CAPTURE_ROLE_SQL}]) FROM pg_catalog.pg_roles sr WHERE sr.oid OPERATOR(pg_catalog.=) ${oid}), false))`;

/** Every object kind with an owner that a schema holds, as (kind, name, owner). */
const OBJECTS = [
  ['relation', 'pg_class', 'relname', 'relnamespace', 'relowner'], ['function', 'pg_proc', 'proname', 'pronamespace', 'proowner'],
  ['type', 'pg_type', 'typname', 'typnamespace', 'typowner'], ['operator', 'pg_operator', 'oprname', 'oprnamespace', 'oprowner'],
  ['collation', 'pg_collation', 'collname', 'collnamespace', 'collowner'], ['conversion', 'pg_conversion', 'conname', 'connamespace', 'conowner'],
  ['operator class', 'pg_opclass', 'opcname', 'opcnamespace', 'opcowner'], ['operator family', 'pg_opfamily', 'opfname', 'opfnamespace', 'opfowner'],
  ['text search configuration', 'pg_ts_config', 'cfgname', 'cfgnamespace', 'cfgowner'], ['text search dictionary', 'pg_ts_dict', 'dictname', 'dictnamespace', 'dictowner'],
  ['statistics object', 'pg_statistic_ext', 'stxname', 'stxnamespace', 'stxowner'],
].map(([kind, table, name, namespace, owner]) => `SELECT '${kind}' AS kind, o.${name}::pg_catalog.text AS name, o.${owner} AS owner FROM pg_catalog.${table} o WHERE o.${namespace} OPERATOR(pg_catalog.=) snsp.oid`)
  .join(' UNION ALL ');

/** NULL, or what in pgactions (alias snsp) others could use against this role: grants beyond USAGE, objects of untrusted roles. */
const PLANTED = `(SELECT pg_catalog.string_agg(sp.what, '; ') FROM (
    SELECT pg_catalog.format('the grant of %s on the schema to %s', sa.privilege_type, COALESCE((SELECT pg_catalog.quote_ident(sg.rolname) FROM pg_catalog.pg_roles sg WHERE sg.oid OPERATOR(pg_catalog.=) sa.grantee), 'PUBLIC')) AS what
      FROM pg_catalog.aclexplode(snsp.nspacl) sa WHERE sa.privilege_type OPERATOR(pg_catalog.<>) 'USAGE' AND ${FOREIGN_ROLE('sa.grantee')}
    UNION ALL
    SELECT pg_catalog.format('%s %s owned by %s', so.kind, pg_catalog.quote_ident(so.name), pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(so.owner)))
      FROM (${OBJECTS}) so WHERE ${FOREIGN_ROLE('so.owner')}
    LIMIT 20) sp)`;

/**
 * `value` (an SQL expression of type `type`) when pgactions' owner is trusted, else an error raised
 * before any function it is an argument of runs. The failing branch is not a constant (it names the
 * owner), so the planner cannot fold it and raise when the owner is trusted.
 */
export function guarded(value: string, type: string): string {
  return `(SELECT CASE WHEN ${TRUSTED} THEN ${value}
     ELSE pg_catalog.concat('${MARKER}', sown.rolname)::pg_catalog.int8::${type} END FROM ${OWNER_FROM})`;
}

/** The safe fix first: handing the schema over keeps its objects' owners and its grants (REVIEW10 R162). */
const FIXES = (owner: string) => [
  `When it holds nothing of pg-actions' that you need (look first: \\dn+ ${SCHEMA} and \\d ${SCHEMA}.*, or query pg_class, pg_proc and pg_type for it), as its owner or a superuser: DROP SCHEMA ${SCHEMA} CASCADE; then activate again (pg-actions creates it, owned by the activating role).`,
  `Or, only after removing every object in it that is not the activating role's or a superuser's and revoking every grant but USAGE (REVOKE CREATE ON SCHEMA ${SCHEMA} FROM PUBLIC;): ALTER SCHEMA ${SCHEMA} OWNER TO <the activating role>; (run by ${quoteIdentifier(owner)} or a superuser). A hand-over alone keeps the objects' owners and the grants.`,
];

export function untrustedOwner(owner: string, trigger: string): PgActionsError {
  return new PgActionsError('PERMISSION_DENIED', {
    message: `${trigger}: schema ${SCHEMA} is owned by role ${quoteIdentifier(owner)}, which is neither this role nor a superuser. Its owner can replace the objects pg-actions calls there by name and run code with this role's rights, so pg-actions does not use it.`,
    fixes: FIXES(owner),
  });
}

/** A trusted owner's schema in which other roles can create, or hold objects (REVIEW10 R162). */
export function plantedObjects(owner: string, planted: string, trigger: string): PgActionsError {
  return new PgActionsError('PERMISSION_DENIED', {
    message: `${trigger}: schema ${SCHEMA} holds what other roles than this one, its owner and superusers can use to run code with this role's rights (objects pg-actions would adopt or call by name, or the right to create them): ${planted}. So pg-actions does not use it.`,
    fixes: [
      `When it holds nothing of pg-actions' that you need: DROP SCHEMA ${SCHEMA} CASCADE; (as ${quoteIdentifier(owner)} or a superuser) and activate again.`,
      `Or drop the objects named (as their owners or a superuser) and revoke the grants named (e.g. REVOKE CREATE ON SCHEMA ${SCHEMA} FROM PUBLIC;).`,
    ],
  });
}

/**
 * Refuses (PERMISSION_DENIED) when pgactions exists and its owner is untrusted, or (with `planted`)
 * it grants more than USAGE to or holds objects of untrusted roles; nothing when it is missing.
 */
export async function refuseUntrustedOwner(query: Query, trigger: string, planted = true): Promise<void> {
  const [row] = await query(`SELECT sown.rolname AS owner, ${TRUSTED} AS trusted, ${planted ? PLANTED : "NULL"} AS planted FROM ${OWNER_FROM}`);
  if (row && row.trusted !== true) throw untrustedOwner(String(row.owner), trigger);
  if (planted && row && row.planted !== null) throw plantedObjects(String(row.owner), String(row.planted), trigger);
}

/** refuseUntrustedOwner in a statement of its own on `connection`. */
export async function refuseUntrustedOwnerOn(connection: unknown, trigger: string): Promise<void> {
  await refuseUntrustedOwner(async (text) => (await execute(connection, { text, readOnly: true })).rows, trigger);
}

/** A guarded statement's failure as PERMISSION_DENIED naming the owner; other errors unchanged. */
export function ownerRefusal(error: unknown, trigger: string): unknown {
  if (!isPgActionsError(error) || error.sqlstate !== '22P02') return error;
  const text = [error.message, error.detail, (error.cause as Error | undefined)?.message].join('\n');
  const at = text.indexOf(MARKER);
  if (at < 0) return error;
  const owner = /^(.*)"/.exec(text.slice(at + MARKER.length).split('\n')[0]!)?.[1] ?? text.slice(at + MARKER.length);
  return untrustedOwner(owner, trigger);
}

/**
 * The same check as a PL/pgSQL statement, for code that runs where no host can answer (the capture
 * in the writer's transaction, schema-changes' event triggers, a heartbeat's DO block): it raises
 * 42501 before the function's first statement that names an object in the schema. (The capture
 * runs as the activator, its functions' owner, so CURRENT_USER is the activator there.)
 */
export function ownerCheckPlpgsql(what: string): string {
  return `IF EXISTS (SELECT FROM ${OWNER_FROM} AND NOT ${TRUSTED}) THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format('pg-actions ${what}: schema ${SCHEMA} is owned by role %I, which is neither %I nor a superuser (nor the activating role), so pg-actions does not call into it. Fix: DROP SCHEMA ${SCHEMA} CASCADE when it holds nothing of pg-actions you need, or remove other roles objects and grants in it and ALTER SCHEMA ${SCHEMA} OWNER TO <the activating role> (by its owner or a superuser).',
      (SELECT sown.rolname FROM ${OWNER_FROM}), CURRENT_USER);
  END IF;`;
}

/**
 * ownerCheckPlpgsql, then the check of what other roles left in the schema (REVIEW10 R162: grants
 * beyond USAGE, objects of untrusted roles: PLANTED, the same query refuseUntrustedOwner reads), as
 * PL/pgSQL for a DO block that names an object in the schema with no host step before it: the CDC
 * heartbeat. Its UPDATE of pgactions.<slot>_heartbeat fires whatever triggers that table has, so a
 * table another role made there under that name while the trigger's own did not exist (made before
 * a hand-over, or through a CREATE grant) would run its code as the poller. It raises 42501 before
 * that statement.
 */
export function trustCheckPlpgsql(what: string): string {
  return `${ownerCheckPlpgsql(what)}
  DECLARE planted pg_catalog.text := (SELECT ${PLANTED} FROM ${OWNER_FROM}); BEGIN
    IF planted IS NOT NULL THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format('pg-actions ${what}: schema ${SCHEMA} holds what roles other than %I, its owner and superusers can use to run code with its rights: %s. So pg-actions does not use it. Fix: DROP SCHEMA ${SCHEMA} CASCADE when it holds nothing of pg-actions you need, or drop the objects and revoke the grants named.',
        CURRENT_USER, planted);
    END IF;
  END;`;
}

