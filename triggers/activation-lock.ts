/**
 * pg-actions' activation lock: activations and deactivations of row-changes and schema-changes in
 * one database never interleave (they create and drop the pgactions schema, and replace one
 * activation's objects in place). It is the pgactions schema's own lock, taken by COMMENT ON SCHEMA
 * (SHARE UPDATE EXCLUSIVE, which conflicts with itself), which only the schema's owner may run. It
 * was an advisory lock, whose key any role could hold to make every activation fail (REVIEW7 R137);
 * a role without rights holds this one at most until its own statement fails.
 */
import { execute, isPgActionsError, PgActionsError, quoteIdentifier } from '../connection/index.js';
import { holdersSql, type LockTarget, type Query } from '../connection/session.js';
import { ADVISORY_LOCK, ADVISORY_LOCK_SQL, LOCK_CLASS, SCHEMA, SCHEMA_COMMENT } from './outbox-sql.js';
import { refuseUntrustedOwner } from './schema-owner.js';

/** That lock, as LOCK_NOT_AVAILABLE names it when another session holds it too long. */
export const ACTIVATION_LOCK: LockTarget = {
  what: "pg-actions' activation lock (the pgactions schema's: another activation or deactivation of row-changes or schema-changes in this database is running)",
  holders: holdersSql(
    `l.locktype OPERATOR(pg_catalog.=) 'object'::pg_catalog.text AND l.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass::pg_catalog.oid AND l.objid OPERATOR(pg_catalog.=) '${SCHEMA}'::pg_catalog.regnamespace::pg_catalog.oid`,
  ),
};

/**
 * Takes the lock for the rest of the transaction; `creating` first creates the schema (so the lock
 * exists). Removing without the schema takes no lock (there is nothing to remove). A role that
 * does not own the schema cannot activate (COMMENT ON SCHEMA is refused) but may remove objects of
 * its own: it serialises with the advisory lock of earlier versions. An existing schema whose owner
 * is neither this role nor a superuser is refused (PERMISSION_DENIED, schema-owner.ts: REVIEW9 R156).
 */
export async function lockActivations(query: Query, creating: boolean, trigger: string): Promise<void> {
  if (creating) await query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(SCHEMA)}`);
  await refuseUntrustedOwner(query, trigger, creating); // removal only drops by name: other roles' objects are no danger to it (R162)
  const [schema] = await query(
    "SELECT pg_catalog.pg_has_role(n.nspowner, 'USAGE') AS owned FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
    [SCHEMA],
  );
  if (!schema) return;
  if (schema.owned === true || creating) await query(SCHEMA_COMMENT, undefined, ACTIVATION_LOCK);
  else await query(ADVISORY_LOCK_SQL, [LOCK_CLASS], ADVISORY_LOCK);
}

/**
 * Races the lock cannot cover, because they happen before it can be taken: two first activations
 * creating the schema at once (23505 in the slower one), an activation whose schema a deactivation
 * dropped while it waited (3F000). Running it again then succeeds.
 */
const RACES = new Set(['23505', '3F000']);

export async function retryingRaces<T>(connection: unknown, work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= 3 || !isPgActionsError(error) || !RACES.has(error.sqlstate ?? '')) throw await namingHolders(connection, error);
    }
  }
}

/** LOCK_NOT_AVAILABLE on the activation lock: the message names who holds it (pid, role, application), as the fix's query finds them. */
async function namingHolders(connection: unknown, error: unknown): Promise<unknown> {
  if (!isPgActionsError(error) || error.code !== 'LOCK_NOT_AVAILABLE' || !error.message.includes(ACTIVATION_LOCK.what)) return error;
  const holders = await execute(connection, { text: ACTIVATION_LOCK.holders.replace(/;$/, ''), readOnly: true }).then((result) => result.rows, () => []);
  if (holders.length === 0) return error;
  const named = holders.map((h) => `pid ${String(h.pid)} (role ${String(h.usename)}${h.application_name ? `, application ${JSON.stringify(h.application_name)}` : ''})`);
  return new PgActionsError('LOCK_NOT_AVAILABLE', { message: `${error.message} It is held by ${named.join(', ')}.`, fixes: error.fixes, sqlstate: error.sqlstate, cause: error });
}
