/**
 * Is this database ready for change data capture (logical replication with pgoutput)? Reads the
 * server's settings, the role's privileges, free slots and WAL senders, WAL retention, an
 * existing slot and publication, and each chosen table; every problem comes with a code and the
 * exact SQL or setting that fixes it (self-hosted, Amazon RDS, Google Cloud SQL).
 */
import { execute } from '../execute.js';
import { quoteIdentifier } from '../identifiers.js';
import type { ReplicationCheck } from './check.js';
import { replicaIdentityCheck, tableFacts, type TableFacts } from './diagnose-tables.js';
import { HEARTBEAT_SCHEMA, heartbeatTablePlan, heartbeatUsesTable, type HeartbeatChoice } from './heartbeat-table.js';

export type { ReplicationCheck, ReplicationCheckCode } from './check.js';

export interface ReplicationDiagnosis {
  /** No failed check (warnings allowed). */
  ready: boolean;
  serverVersion: string;
  user: string;
  database: string;
  checks: ReplicationCheck[];
  /** The least-privilege role set-up for change capture of these tables. */
  setup: string[];
}

export interface DiagnoseOptions {
  tables: readonly string[];
  /** A publication to use (created by an administrator) or that the trigger will create. */
  publication?: string;
  /** The trigger's slot, when it may exist already. */
  slot?: string;
  /** The trigger's heartbeat setting (default 'auto'): what its heartbeat table needs is checked when it uses one. */
  heartbeat?: HeartbeatChoice;
}

interface ServerFacts {
  version: string;
  version_num: number;
  wal_level: string;
  max_slots: number;
  used_slots: number;
  max_senders: number;
  used_senders: number;
  user: string;
  database: string;
  superuser: boolean;
  replication: boolean;
  rds_replication: boolean;
  can_create: boolean;
  keep_size_mb: number | null;
}

const SERVER_SQL = `SELECT pg_catalog.current_setting('server_version') AS version, pg_catalog.current_setting('server_version_num')::int AS version_num,
  pg_catalog.current_setting('wal_level') AS wal_level,
  pg_catalog.current_setting('max_replication_slots')::int AS max_slots, (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots)::int AS used_slots,
  pg_catalog.current_setting('max_wal_senders')::int AS max_senders,
  (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type OPERATOR(pg_catalog.=) 'walsender')::int AS used_senders,
  current_user AS "user", pg_catalog.current_database() AS database, r.rolsuper AS superuser, r.rolreplication AS replication,
  EXISTS (SELECT 1 FROM pg_catalog.pg_roles g WHERE g.rolname OPERATOR(pg_catalog.=) 'rds_replication' AND pg_catalog.pg_has_role(current_user, g.oid, 'MEMBER')) AS rds_replication,
  pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE') AS can_create,
  (SELECT setting::int FROM pg_catalog.pg_settings WHERE name OPERATOR(pg_catalog.=) 'max_slot_wal_keep_size') AS keep_size_mb
  FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user`;

export async function diagnoseReplication(connection: unknown, options: DiagnoseOptions): Promise<ReplicationDiagnosis> {
  const server = (await execute(connection, { text: SERVER_SQL, readOnly: true })).rows[0] as unknown as ServerFacts;
  const slot = options.slot ? await slotFacts(connection, options.slot) : undefined;
  const publication = options.publication ? await publicationFacts(connection, options.publication) : undefined;
  const tables = await tableFacts(connection, options.tables);
  const leftovers = await leftoverSlots(connection, options.slot);
  const heartbeat = await heartbeatChecks(connection, server, options);
  const role = quoteIdentifier(server.user);
  const checks = [
    ...serverChecks(server, role, slot),
    ...slotChecks(server, slot, options.slot),
    ...publicationChecks(server, publication, options.publication, tables),
    ...tables.flatMap((table) => tableChecks(table, role)),
    ...leftovers,
    ...heartbeat,
  ];
  return {
    ready: checks.every((check) => check.level !== 'failed'),
    serverVersion: server.version,
    user: server.user,
    database: server.database,
    checks,
    setup: leastPrivilegeSetup(server.database, tables, options.publication),
  };
}

function serverChecks(server: ServerFacts, role: string, slot: SlotFacts | undefined): ReplicationCheck[] {
  const checks: ReplicationCheck[] = [];
  if (server.wal_level !== 'logical') {
    checks.push({
      code: 'WAL_LEVEL_NOT_LOGICAL',
      level: 'failed',
      message: `wal_level is "${server.wal_level}"; logical replication needs "logical" (changing it needs a server restart).`,
      fixes: [
        "Self-hosted: ALTER SYSTEM SET wal_level = 'logical'; then restart PostgreSQL.",
        'Amazon RDS / Aurora: set rds.logical_replication = 1 in the DB (cluster) parameter group, then reboot the instance.',
        'Google Cloud SQL: set the database flag cloudsql.logical_decoding = on (the instance restarts).',
        'Azure Database for PostgreSQL: set the server parameter wal_level = logical, then restart.',
      ],
    });
  }
  if (!server.superuser && !server.replication && !server.rds_replication) {
    checks.push({
      code: 'NO_REPLICATION_PRIVILEGE',
      level: 'failed',
      message: `Role "${server.user}" may not open replication connections (it has no REPLICATION attribute).`,
      fixes: [`ALTER ROLE ${role} WITH REPLICATION;`, `Amazon RDS: GRANT rds_replication TO ${role};`, `Google Cloud SQL: ALTER USER ${role} WITH REPLICATION; (as cloudsqlsuperuser)`],
    });
  }
  if (!slot && server.used_slots >= server.max_slots) {
    checks.push({
      code: 'NO_FREE_REPLICATION_SLOT',
      level: 'failed',
      message: `All ${server.max_slots} replication slots (max_replication_slots) are taken.`,
      fixes: [
        'Drop a slot nobody uses: SELECT slot_name, active, database FROM pg_catalog.pg_replication_slots; then SELECT pg_catalog.pg_drop_replication_slot(\'<slot_name>\');',
        `Or raise the limit: ALTER SYSTEM SET max_replication_slots = ${server.max_slots + 4}; then restart PostgreSQL.`,
      ],
    });
  }
  if (server.used_senders >= server.max_senders) {
    checks.push({
      code: 'NO_FREE_WAL_SENDER',
      level: 'failed',
      message: `All ${server.max_senders} WAL senders (max_wal_senders) are in use.`,
      fixes: [`ALTER SYSTEM SET max_wal_senders = ${server.max_senders + 4}; then restart PostgreSQL.`, 'Or stop a replication consumer nobody needs: SELECT pid, application_name FROM pg_catalog.pg_stat_replication;'],
    });
  }
  if (server.keep_size_mb === null || server.keep_size_mb < 0) {
    checks.push({
      code: 'WAL_RETENTION_UNBOUNDED',
      level: 'warning',
      message:
        server.keep_size_mb === null
          ? `PostgreSQL ${server.version} cannot cap the WAL a slot retains (max_slot_wal_keep_size needs 13+): a consumer that stops can fill the disk.`
          : 'max_slot_wal_keep_size is -1: a slot whose consumer stops retains WAL without limit and can fill the disk.',
      fixes: server.keep_size_mb === null
        ? ['Monitor pg_catalog.pg_replication_slots and drop the slot of a consumer that is gone; upgrade to PostgreSQL 13+ to cap it.']
        : ["ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; SELECT pg_catalog.pg_reload_conf();  (a slot past the cap is lost: the trigger then stops with an error and needs a re-snapshot)"],
    });
  }
  return checks;
}

interface SlotFacts {
  slot_name: string;
  plugin: string | null;
  slot_type: string;
  database: string | null;
  active: boolean;
  wal_status?: string | null;
  safe_wal_size?: number | string | null;
}

async function slotFacts(connection: unknown, name: string): Promise<SlotFacts | undefined> {
  const { rows } = await execute(connection, { text: 'SELECT pg_catalog.to_jsonb(s) AS slot FROM pg_catalog.pg_replication_slots s WHERE slot_name OPERATOR(pg_catalog.=) $1::pg_catalog.name', values: [name], readOnly: true });
  return rows[0]?.slot as SlotFacts | undefined;
}

function slotChecks(server: ServerFacts, slot: SlotFacts | undefined, name: string | undefined): ReplicationCheck[] {
  if (!slot || !name) return [];
  const drop = `SELECT pg_catalog.pg_drop_replication_slot(${literal(name)});`;
  if (slot.slot_type !== 'logical' || slot.plugin !== 'pgoutput' || slot.database !== server.database) {
    return [{
      code: 'SLOT_NOT_USABLE',
      level: 'failed',
      message: `Slot "${name}" exists but is a ${slot.slot_type} slot${slot.plugin ? ` of plugin ${slot.plugin}` : ''} in database ${slot.database ?? '(none)'}; change capture needs a logical pgoutput slot in ${server.database}.`,
      fixes: [`Drop it if nothing else uses it: ${drop}`, 'Or choose another slot name.'],
    }];
  }
  if (slot.wal_status === 'lost') {
    return [{
      code: 'SLOT_LOST',
      level: 'failed',
      message: `Slot "${name}" is lost: the server removed WAL it still needed (max_slot_wal_keep_size), so changes were dropped.`,
      fixes: [`Drop it: ${drop}`, 'Then activate the trigger again and re-snapshot the tables (table-sync): the changes in between cannot be recovered.'],
    }];
  }
  if (slot.wal_status === 'unreserved') {
    return [{
      code: 'SLOT_AT_RISK',
      level: 'warning',
      message: `Slot "${name}" is about to be lost: it retains more WAL than max_slot_wal_keep_size (safe_wal_size ${String(slot.safe_wal_size)} bytes).`,
      fixes: ['Start its consumer now so it catches up, or raise max_slot_wal_keep_size.'],
    }];
  }
  return [];
}

interface PublicationFacts {
  all_tables: boolean;
  /** [schema, name] of each published table. */
  tables: [string, string][];
}

async function publicationFacts(connection: unknown, name: string): Promise<PublicationFacts | undefined> {
  const { rows } = await execute(connection, {
    text: `SELECT p.puballtables AS all_tables,
             coalesce((SELECT pg_catalog.json_agg(pg_catalog.json_build_array(t.schemaname, t.tablename)) FROM pg_catalog.pg_publication_tables t WHERE t.pubname OPERATOR(pg_catalog.=) p.pubname), '[]') AS tables
             FROM pg_catalog.pg_publication p WHERE p.pubname OPERATOR(pg_catalog.=) $1::pg_catalog.name`,
    values: [name],
    readOnly: true,
  });
  return rows[0] as PublicationFacts | undefined;
}

function publicationChecks(server: ServerFacts, publication: PublicationFacts | undefined, name: string | undefined, tables: TableFacts[]): ReplicationCheck[] {
  const found = tables.filter((t) => t.found);
  if (name && publication) {
    const missing = publication.all_tables ? [] : found.filter((t) => !publication.tables.some(([schema, name]) => schema === t.schema && name === t.name));
    if (missing.length === 0) return [];
    return [{
      code: 'PUBLICATION_MISSING_TABLES',
      level: 'failed',
      message: `Publication "${name}" does not publish ${missing.map((t) => t.qualified).join(', ')}.`,
      fixes: [`ALTER PUBLICATION ${quoteIdentifier(name)} ADD TABLE ${missing.map((t) => t.qualified).join(', ')};  (as the tables' owner)`],
    }];
  }
  const notOwned = found.filter((t) => !t.owned);
  const create = `CREATE PUBLICATION ${quoteIdentifier(name ?? 'pg_actions_cdc')} FOR TABLE ${found.map((t) => t.qualified).join(', ') || '<table>'};`;
  if (name) {
    return [{
      code: 'PUBLICATION_NOT_FOUND',
      level: 'failed',
      message: `Publication "${name}" does not exist.`,
      fixes: [`As the tables' owner: ${create}`],
    }];
  }
  if (server.can_create && notOwned.length === 0) return [];
  return [{
    code: 'CANNOT_CREATE_PUBLICATION',
    level: 'failed',
    message: !server.can_create
      ? `Role "${server.user}" may not create a publication in ${server.database} (no CREATE privilege on the database).`
      : `Only a table's owner may publish it; "${server.user}" does not own ${notOwned.map((t) => t.qualified).join(', ')}.`,
    fixes: [`Have the tables' owner create it: ${create} and set the trigger's "publication" to its name.`],
  }];
}

function tableChecks(table: TableFacts, role: string): ReplicationCheck[] {
  if (!table.found) {
    return [{ code: 'TABLE_NOT_FOUND', level: 'failed', message: `No table ${JSON.stringify(table.input)} is visible to this role.`, fixes: ['Check the name (schema.table), and GRANT USAGE ON SCHEMA <schema> TO ' + role + ';'] }];
  }
  const checks: ReplicationCheck[] = [];
  const identity = replicaIdentityCheck(table);
  if (identity) checks.push(identity);
  if (!table.can_select) {
    checks.push({
      code: 'NO_SELECT_PRIVILEGE',
      level: 'failed',
      message: `Role may not read ${table.qualified} (needed to snapshot it).`,
      fixes: [`GRANT SELECT ON ${table.qualified} TO ${role};`],
    });
  }
  return checks;
}

/**
 * table-changes-cdc's heartbeat table (before 14, or heartbeat 'table'): an explicit 'table' that
 * cannot be used fails activation; 'auto' goes without it, and quiet tables then pin WAL while
 * other databases write (the position follows keepalives only).
 */
async function heartbeatChecks(connection: unknown, server: ServerFacts, options: DiagnoseOptions): Promise<ReplicationCheck[]> {
  if (!heartbeatUsesTable(options.heartbeat, server.version_num)) return [];
  const plan = await heartbeatTablePlan(async (text, values) => (await execute(connection, { text, values, readOnly: true })).rows, options.slot);
  if (!plan.problem) return [];
  const table = `${HEARTBEAT_SCHEMA}.${options.slot ?? '<slot>'}_heartbeat`;
  const explicit = options.heartbeat === 'table';
  return [{
    code: 'HEARTBEAT_TABLE_UNAVAILABLE',
    level: explicit ? 'failed' : 'warning',
    message: explicit
      ? `heartbeat 'table' would be refused at activation: its table ${table} cannot be used: ${plan.problem.why}.`
      : `PostgreSQL ${server.version} passes no heartbeat message on (14+ does), and the heartbeat table ${table} cannot be used: ${plan.problem.why}. The trigger runs without it; while the captured tables are quiet, its slot retains the WAL other databases write.`,
    fixes: plan.problem.fixes,
  }];
}

function leastPrivilegeSetup(database: string, tables: TableFacts[], publication: string | undefined): string[] {
  const names = tables.filter((t) => t.found).map((t) => t.qualified);
  const list = names.join(', ') || '<schema>.<table>';
  const schemas = [...new Set(tables.filter((t) => t.found).map((t) => quoteIdentifier(t.schema)))];
  return [
    "CREATE ROLE cdc_reader LOGIN REPLICATION PASSWORD '<new password>';",
    `GRANT CONNECT ON DATABASE ${quoteIdentifier(database)} TO cdc_reader;`,
    ...(schemas.length ? schemas : ['<schema>']).map((schema) => `GRANT USAGE ON SCHEMA ${schema} TO cdc_reader;`),
    `GRANT SELECT ON ${list} TO cdc_reader;`,
    `-- as the tables' owner (then set the trigger's publication to this name):`,
    `CREATE PUBLICATION ${quoteIdentifier(publication ?? 'pg_actions_cdc')} FOR TABLE ${list};`,
  ];
}

/**
 * Slots named like ours (pg_actions_…) that nobody reads: a crashed activation, or a trigger removed
 * without deactivateTrigger. Each retains WAL until dropped.
 */
async function leftoverSlots(connection: unknown, current: string | undefined): Promise<ReplicationCheck[]> {
  const { rows } = await execute(connection, {
    text: `SELECT slot_name FROM pg_catalog.pg_replication_slots WHERE slot_name OPERATOR(pg_catalog.~~) 'pg\\_actions\\_%' AND NOT active
             AND database OPERATOR(pg_catalog.=) pg_catalog.current_database() AND ($1::pg_catalog.name IS NULL OR slot_name OPERATOR(pg_catalog.<>) $1::pg_catalog.name) ORDER BY 1`,
    values: [current ?? null],
    readOnly: true,
  });
  return rows.map(({ slot_name: name }) => ({
    code: 'LEFTOVER_SLOT' as const,
    level: 'warning' as const,
    message: `Slot "${String(name)}" was made by pg-actions and nobody reads it: it retains WAL until it is dropped.`,
    fixes: [`If no trigger uses it any more (deactivateTrigger drops it too): SELECT pg_catalog.pg_drop_replication_slot(${literal(String(name))});`],
  }));
}

/** A string literal for fix SQL shown to people (never sent by pg-actions). */
export function literal(text: string): string {
  return "'" + text.replace(/'/g, "''") + "'";
}
