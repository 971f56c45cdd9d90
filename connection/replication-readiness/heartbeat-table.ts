/**
 * What table-changes-cdc's heartbeat table (pgactions.<slot>_heartbeat, written where pgoutput
 * cannot pass logical messages on: before PostgreSQL 14, or with heartbeat 'table') needs: a role
 * that may create it (CREATE on the database for the schema, or on the schema), and no publication
 * that would ship it to subscribers that do not have it. Shared by activation (triggers/replication/
 * heartbeat.ts refuses an explicit 'table', 'auto' goes without it) and diagnoseReplication.
 */
import { quoteIdentifier } from '../identifiers.js';
import { publishByNameFix, publishedBecause, schemaPublications, type ReadRows } from './schema-publications.js';

export const HEARTBEAT_SCHEMA = 'pgactions';
export type HeartbeatChoice = 'auto' | 'message' | 'table';

/** pgoutput passes messages on from 14; before, every choice needs the table. */
export function heartbeatUsesTable(choice: HeartbeatChoice | undefined, serverVersion: number): boolean {
  return choice === 'table' || serverVersion < 140000;
}

export function heartbeatTable(slot: string): string {
  return `${quoteIdentifier(HEARTBEAT_SCHEMA)}.${quoteIdentifier(`${slot}_heartbeat`)}`;
}

export interface HeartbeatTablePlan {
  serverVersion: number;
  /** Why the table cannot be used, and the fixes; undefined when it can. */
  problem?: { why: string; fixes: string[] };
  /** The schema's owner when it is neither this role nor a superuser (REVIEW9 R156: it could replace the table). */
  untrustedOwner?: string;
}

/**
 * `slot` undefined: the table is taken as not existing yet (diagnoseReplication before activation).
 * The table is looked up in pg_class: to_regclass raises 'permission denied for schema' where pgactions
 * belongs to another role (a row-changes activation) and the least-privilege role may not use it (REVIEW4 R41).
 */
export async function heartbeatTablePlan(read: ReadRows, slot: string | undefined): Promise<HeartbeatTablePlan> {
  const [facts] = await read(
    `SELECT pg_catalog.current_setting('server_version_num')::int AS version, $1::pg_catalog.text IS NOT NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE n.nspname OPERATOR(pg_catalog.=) $2::pg_catalog.text AND c.relname OPERATOR(pg_catalog.=) $1::pg_catalog.text) AS exists,
            pg_catalog.current_database() AS database, current_user AS role, pg_catalog.to_regnamespace($2::pg_catalog.text) IS NOT NULL AS schema_exists,
            CASE WHEN pg_catalog.to_regnamespace($2::pg_catalog.text) IS NULL THEN pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE')
                 ELSE pg_catalog.has_schema_privilege($2::pg_catalog.text, 'CREATE') END AS can_create,
            (SELECT r.rolname FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
              WHERE n.nspname OPERATOR(pg_catalog.=) $2::pg_catalog.text AND NOT r.rolsuper AND r.rolname OPERATOR(pg_catalog.<>) CURRENT_USER) AS untrusted_owner`,
    [slot === undefined ? null : `${slot}_heartbeat`, HEARTBEAT_SCHEMA],
  );
  const serverVersion = Number(facts!.version);
  const publications = await schemaPublications(read, HEARTBEAT_SCHEMA);
  const published = publishedBecause(publications, HEARTBEAT_SCHEMA);
  const keepalives = `heartbeat 'auto' (the position then follows the server's keepalives only) or, on PostgreSQL 14+, 'message'.`;
  if (published) return { serverVersion, problem: { why: published, fixes: [`Use ${keepalives}`, publishByNameFix(publications)] } };
  const role = quoteIdentifier(String(facts!.role));
  if (typeof facts!.untrusted_owner === 'string') {
    const owner = quoteIdentifier(facts!.untrusted_owner);
    return {
      serverVersion,
      untrustedOwner: facts!.untrusted_owner,
      problem: {
        why: `schema ${HEARTBEAT_SCHEMA} is owned by role ${owner}, which is neither ${role} nor a superuser (its owner could replace the table and run code as ${role})`,
        fixes: [`ALTER SCHEMA ${HEARTBEAT_SCHEMA} OWNER TO ${role}; (run by ${owner} or a superuser), or DROP SCHEMA ${HEARTBEAT_SCHEMA}; when it holds nothing`, `Or use ${keepalives}`],
      },
    };
  }
  if (facts!.exists || facts!.can_create) return { serverVersion };
  return {
    serverVersion,
    problem: {
      why: `role ${role} cannot create it (it needs CREATE on the database for schema ${HEARTBEAT_SCHEMA}, or on that schema)`,
      fixes: [
        facts!.schema_exists
          ? `GRANT USAGE, CREATE ON SCHEMA ${HEARTBEAT_SCHEMA} TO ${role};`
          : `GRANT CREATE ON DATABASE ${quoteIdentifier(String(facts!.database))} TO ${role}; (or create the schema for it: CREATE SCHEMA ${HEARTBEAT_SCHEMA} AUTHORIZATION ${role};)`,
        `Or use ${keepalives}`,
      ],
    },
  };
}
