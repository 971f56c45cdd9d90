/**
 * Whose schema pgactions is (REVIEW9 R156). Its owner may drop any object in it and put its own in
 * its place, and pg-actions calls into it by name (rc_F_read, rc_F_put, the cursor, the heartbeat
 * table, schema-changes' outbox): so the owner must be trusted:
 * the role running the statement itself, or a superuser. Activation and deactivation refuse any
 * other owner; the statements that call into the schema check it themselves (guarded(), evaluated
 * before the call), so the check and the call see the same owner.
 */
import { execute, isPgActionsError, PgActionsError, quoteIdentifier } from '../connection/index.js';
import type { Query } from '../connection/session.js';
import { SCHEMA } from './outbox-sql.js';

/** Raised inside guarded statements: an int8 input error whose text carries the owner's name. */
const MARKER = 'pg-actions: untrusted owner of schema pgactions:';

/** The owner row (alias r) of the pgactions schema (alias n), qualified so it reads the same under a pinned path. */
const OWNER_FROM = `pg_catalog.pg_namespace snsp JOIN pg_catalog.pg_roles sown ON sown.oid OPERATOR(pg_catalog.=) snsp.nspowner
  WHERE snsp.nspname OPERATOR(pg_catalog.=) '${SCHEMA}'`;

/** True when r (the owner) is trusted by the current role: a superuser, or that role itself. */
const TRUSTED = `(sown.rolsuper OR sown.oid OPERATOR(pg_catalog.=) (SELECT suse.oid FROM pg_catalog.pg_roles suse WHERE suse.rolname OPERATOR(pg_catalog.=) CURRENT_USER))`;

/**
 * `value` (an SQL expression of type `type`) when pgactions' owner is trusted, else an error raised
 * before any function it is an argument of runs. The failing branch is not a constant (it names the
 * owner), so the planner cannot fold it and raise when the owner is trusted.
 */
export function guarded(value: string, type: string): string {
  return `(SELECT CASE WHEN ${TRUSTED} THEN ${value}
     ELSE pg_catalog.concat('${MARKER}', sown.rolname)::pg_catalog.int8::${type} END FROM ${OWNER_FROM})`;
}

export function untrustedOwner(owner: string, trigger: string): PgActionsError {
  return new PgActionsError('PERMISSION_DENIED', {
    message: `${trigger}: schema ${SCHEMA} is owned by role ${quoteIdentifier(owner)}, which is neither this role nor a superuser. Its owner can replace the objects pg-actions calls there by name and run code with this role's rights, so pg-actions does not use it.`,
    fixes: [
      `ALTER SCHEMA ${SCHEMA} OWNER TO <the activating role>; (run by ${quoteIdentifier(owner)} or a superuser)`,
      `Or, when it holds nothing you need, DROP SCHEMA ${SCHEMA}; and activate again (pg-actions creates it, owned by the activating role)`,
    ],
  });
}

/** Refuses (PERMISSION_DENIED) when pgactions exists and its owner is untrusted; nothing when it is missing. */
export async function refuseUntrustedOwner(query: Query, trigger: string): Promise<void> {
  const [row] = await query(`SELECT sown.rolname AS owner, ${TRUSTED} AS trusted FROM ${OWNER_FROM}`);
  if (row && row.trusted !== true) throw untrustedOwner(String(row.owner), trigger);
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
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format('pg-actions ${what}: schema ${SCHEMA} is owned by role %I, which is neither %I nor a superuser (nor the activating role), so pg-actions does not call into it. Fix: ALTER SCHEMA ${SCHEMA} OWNER TO <the activating role> (by its owner or a superuser), or DROP SCHEMA ${SCHEMA} when it holds nothing.',
      (SELECT sown.rolname FROM ${OWNER_FROM}), CURRENT_USER);
  END IF;`;
}
