/**
 * Installing, finding and removing row-changes' objects. Each change of the installed set runs
 * in one transaction under pg-actions' activation lock (activation-lock.ts), so concurrent activations and deactivations never
 * interleave and a crash leaves either all of an activation or none of it. Leftovers (an
 * activation whose host crashed or forgot it, or a damaged one) are found by name and owner tag.
 */
import { configOf, execute, PgActionsError, quoteIdentifier, quoteQualifiedName } from '../connection/index.js';
import { inTransaction, tablesLock, type Query } from '../connection/session.js';
import { asCaptureRole, CAPTURE_ROLE_SQL, ensureCaptureRole } from './capture-role.js';
import { createTriggerStatements, installStatements, JSON_ARGUMENTS, jsonFunction, jsonStatements, putFunction, triggerNamePattern, triggerNames, VIRTUAL_REFUSED_SQL, DECISION_COLUMNS, decisionSql } from './capture-sql.js';
import { refuseWhenPublished } from './outbox-publications.js';
import { lockActivations, retryingRaces } from './activation-lock.js';
import { namesOf, SCHEMA, type OutboxNames } from './outbox-sql.js';
import { dropSchemaIfEmpty } from './pgactions-schema.js';
import { removeSchemaEvents, schemaEventActivations } from './schema-events.js';

export interface Activation {
  trigger: 'row-changes' | 'schema-changes';
  fingerprint: string;
  /**
   * False when some of its objects are missing (e.g. removed by hand): activate it again (its outbox
   * and position are kept when they are there); remove it only when no flow needs it any more
   * (removing drops the changes not yet read).
   */
  complete: boolean;
  /**
   * True when an earlier version of pg-actions made it (everything of its version is there, what this
   * version adds is not, e.g. row-changes' serialising as a role with no rights: REVIEW9 R161, R157):
   * it works, but keeps its old capture until it is activated again, which keeps its position and
   * events. Never remove it for this. Also true when its serialiser (rc_F_json) is not this database's
   * capture role's (REVIEW11 R169: the cluster's shared pgactions_capture of earlier versions, or handed
   * over or dropped: the capture then refuses writes until it is activated again).
   */
  outdated: boolean;
  /** The objects found, e.g. "table pgactions.rc_…_outbox", "trigger pg_actions_rc_… on public.orders". */
  objects: string[];
}

const TABLE_SQL = `
SELECT c.oid::pg_catalog.int8 AS relid, n.nspname AS schema, c.relname AS name,
       (SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY pg_catalog.array_position(i.indkey::pg_catalog.int2[], a.attnum))
          FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey)
         WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary) AS key_columns,
       c.relkind OPERATOR(pg_catalog.=) 'r' AND NOT c.relispartition
         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h WHERE h.inhrelid OPERATOR(pg_catalog.=) c.oid OR h.inhparent OPERATOR(pg_catalog.=) c.oid) AS per_statement,
       (SELECT pg_catalog.array_agg(a.relid::pg_catalog.oid::pg_catalog.text) FROM pg_catalog.pg_partition_ancestors(c.oid) AS a(relid)
         WHERE a.relid::pg_catalog.oid OPERATOR(pg_catalog.<>) c.oid) AS partition_ancestors
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1::pg_catalog.text)::pg_catalog.oid AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog."char"[])`;

/**
 * The inheritance descendants of a watched table (REVIEW12 R186): inheritance, unlike partitioning,
 * clones no trigger, and an UPDATE or DELETE through the parent changes the rows stored in a child
 * by firing the child's row triggers only. Partitions are left out: they get the partitioned
 * table's trigger cloned onto them. A foreign-table child is left out too: its rows are another
 * server's (rc_F_put's write check cannot see them written).
 */
const DESCENDANTS_SQL = `
WITH RECURSIVE down(relid) AS (
    SELECT h.inhrelid FROM pg_catalog.pg_inherits h WHERE h.inhparent OPERATOR(pg_catalog.=) $1::pg_catalog.oid
  UNION
    SELECT h.inhrelid FROM down d JOIN pg_catalog.pg_inherits h ON h.inhparent OPERATOR(pg_catalog.=) d.relid)
SELECT n.nspname AS schema, c.relname AS name
  FROM down d JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.relid JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.relkind OPERATOR(pg_catalog.=) 'r' AND NOT c.relispartition
 ORDER BY c.oid`;

export async function install(connection: unknown, fingerprint: string, tables: readonly string[], operations: readonly string[]): Promise<void> {
  const names = namesOf(fingerprint);
  const qualified = tables.map((table, i) => quoteQualifiedName(table, `config.tables[${i}]`));
  await retryingRaces(connection, () => inTransaction(connection, async (query) => {
    await refuseWhenPublished(query, 'row-changes');
    await lockActivations(query, true, 'row-changes activation');
    const role = await ensureCaptureRole(query);
    for (const statement of installStatements(names)) await query(statement);
    await addDecisionColumns(query, names);
    await installJson(query, names, role);
    const found = [];
    for (const [i, name] of qualified.entries()) {
      const [table] = await query(TABLE_SQL, [name]);
      if (!table) {
        throw new PgActionsError('UNDEFINED_TABLE', { message: `config.tables[${i}]: no table ${JSON.stringify(tables[i])} is visible to this user`, problems: [`config.tables[${i}] does not exist`] });
      }
      found.push(table);
    }
    const listed = new Set(found.map((table) => String(table.relid)));
    for (const [i, table] of found.entries()) {
      await refuseUncomputable(query, table.relid, `config.tables[${i}]`);
      // What the capture serialises each column as, decided once (capture-sql.ts, decisionSql; REVIEW11 R173),
      // with the capture's search_path: a VIRTUAL column's expression is written out as the capture will read it.
      const [{ path }] = (await query(`SELECT pg_catalog.current_setting('search_path') AS path, pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true)`)) as [{ path: string }];
      await query(
        `INSERT INTO ${names.tables} (relid, key_columns, row_sql, signature) SELECT $1, $2, d.row_sql, d.signature FROM (${decisionSql(jsonFunction(names))}) AS d
         ON CONFLICT (relid) DO UPDATE SET key_columns = EXCLUDED.key_columns, row_sql = EXCLUDED.row_sql, signature = EXCLUDED.signature`,
        [table.relid, table.key_columns],
      );
      await query(`SELECT pg_catalog.set_config('search_path', $1::pg_catalog.text, true)`, [path]);
      // A partition listed with a partitioned table above it (REVIEW12 R191) has that table's trigger cloned
      // onto it: one of its own would clash with the clone (42710), and dropping the clone is refused (2BP01).
      // It stays in rc_F_tables: its changes are reported under its own name, the nearest watched table.
      if (((table.partition_ancestors as unknown[] | null) ?? []).some((relid) => listed.has(String(relid)))) continue;
      const target = `${quoteIdentifier(String(table.schema))}.${quoteIdentifier(String(table.name))}`;
      const descendants = await query(DESCENDANTS_SQL, [table.relid]);
      for (const [place, perStatement] of [[target, table.per_statement === true] as const,
        ...descendants.map((child) => [`${quoteIdentifier(String(child.schema))}.${quoteIdentifier(String(child.name))}`, false] as const)]) {
        // CREATE TRIGGER waits for every open writer of the table, DROP TRIGGER for every reader: bounded (REVIEW7 R140).
        const lock = tablesLock([place]);
        for (const trigger of triggerNames(names)) await query(`DROP TRIGGER IF EXISTS ${quoteIdentifier(trigger)} ON ${place}`, undefined, lock);
        for (const statement of createTriggerStatements(names, place, operations, perStatement)) await query(statement, undefined, lock);
      }
    }
  }, { name: 'row-changes activation', again: 'activate row-changes again' }));
}

/**
 * rc_F_tables of an activation made before R173 lacks the capture's decision columns. Added only when
 * missing: ALTER TABLE takes the table's strongest lock, for which every captured write (rc_F_put reads
 * the table) would queue behind it, so its wait is bounded like CREATE TRIGGER's.
 */
async function addDecisionColumns(query: Query, names: OutboxNames): Promise<void> {
  const [found] = await query(
    `SELECT pg_catalog.count(*)::pg_catalog.int4 AS columns FROM pg_catalog.pg_attribute AS a
      WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1::pg_catalog.text)::pg_catalog.oid
        AND a.attname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.name[]) AND NOT a.attisdropped`,
    [names.tables, DECISION_COLUMNS.map((column) => column.split(' ')[0])],
  );
  if (Number(found?.columns) === DECISION_COLUMNS.length) return;
  const add = DECISION_COLUMNS.map((column) => `ADD COLUMN IF NOT EXISTS ${column}`).join(', ');
  await query(`ALTER TABLE ${names.tables} ${add}`, undefined, tablesLock([names.tables]));
}

/**
 * REVIEW11 R176: a VIRTUAL generated column whose expression the capture would not run as this role
 * (capture-sql.ts, VIRTUAL_REFUSED_SQL: it uses something not built in) is refused here, in the table
 * or any of its partitions or inheritance descendants (pg_inherits holds both: REVIEW12 R186), rather than by every write after activation.
 */
async function refuseUncomputable(query: Query, relid: unknown, field: string): Promise<void> {
  const [refused] = await query(
    `SELECT v.attname AS column, pt.relid::pg_catalog.regclass::pg_catalog.text AS relation
       FROM (WITH RECURSIVE down(relid) AS (SELECT $1::pg_catalog.oid UNION SELECT h.inhrelid FROM down AS d JOIN pg_catalog.pg_inherits AS h ON h.inhparent OPERATOR(pg_catalog.=) d.relid) SELECT down.relid FROM down) AS pt
      CROSS JOIN LATERAL (${VIRTUAL_REFUSED_SQL('pt.relid')}) AS v LIMIT 1`,
    [relid],
  );
  if (!refused) return;
  const column = JSON.stringify(String(refused.column));
  throw new PgActionsError('PERMISSION_DENIED', {
    message: `${field}: the generated column ${column} of ${String(refused.relation)} is VIRTUAL and its expression uses a function or type that is not built in: computing it for the change events would run that with the rights of the activating role, so row-changes does not; make it STORED`,
    problems: [`${field}: the VIRTUAL generated column ${column} of ${String(refused.relation)} uses a function or type that is not built in`],
    fixes: [`Make the column STORED: drop it and add it again as GENERATED ALWAYS AS (…) STORED (PostgreSQL then computes it in the writer's INSERT, as the writer).`, 'Or leave the table out of config.tables.'],
  });
}

/**
 * rc_F_json, made afresh as the capture role (the activator may drop it: it owns the schema), callable
 * by the capture functions' owners. Then PUBLIC's USAGE on pgactions goes, unless an activation made
 * by an earlier version still serialises as the writer (SECURITY INVOKER) and needs it until it is
 * activated again.
 */
async function installJson(query: Query, names: OutboxNames, role: string): Promise<void> {
  const callers = await query(
    `SELECT DISTINCT r.rolname AS role FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) p.proowner
      WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY[$1::pg_catalog.regprocedure, $2::pg_catalog.regprocedure]::pg_catalog.oid[])`,
    [`${names.capture}()`, `${names.captureSet}()`],
  );
  await query(`DROP FUNCTION IF EXISTS ${jsonFunction(names)}${JSON_ARGUMENTS}`);
  await asCaptureRole(query, names.schema, role, async () => {
    for (const statement of jsonStatements(names, callers.map((row) => String(row.role)), role)) await query(statement);
  });
  const [invoker] = await query(
    `SELECT 1 AS found FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace($1::pg_catalog.text)::pg_catalog.oid
        AND p.proname OPERATOR(pg_catalog.~) '^rc_[0-9a-f]{16}_capture(_set)?$' AND NOT p.prosecdef LIMIT 1`,
    [SCHEMA],
  );
  if (!invoker) await query(`REVOKE USAGE ON SCHEMA ${names.schema} FROM PUBLIC`);
}

/** Removes every object of one activation, and the pgactions schema once nothing of ours is left in it. */
export async function remove(connection: unknown, fingerprint: string): Promise<void> {
  const names = namesOf(fingerprint);
  await retryingRaces(connection, () => inTransaction(connection, async (query) => {
    await lockActivations(query, false, 'row-changes deactivation');
    const triggers = await query(
      `SELECT t.tgname AS trigger, n.nspname AS schema, c.relname AS name FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
        JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE t.tgname OPERATOR(pg_catalog.~) $1::pg_catalog.text AND NOT t.tgisinternal`,
      [triggerNamePattern(fingerprint)],
    );
    for (const table of triggers) {
      const target = `${quoteIdentifier(String(table.schema))}.${quoteIdentifier(String(table.name))}`;
      await query(`DROP TRIGGER IF EXISTS ${quoteIdentifier(String(table.trigger))} ON ${target}`, undefined, tablesLock([target]));
    }
    await query(`DROP FUNCTION IF EXISTS ${names.capture}()`);
    await query(`DROP FUNCTION IF EXISTS ${names.captureSet}()`);
    await query(`DROP FUNCTION IF EXISTS ${putFunction(names)}(pg_catalog.oid, pg_catalog.text, pg_catalog.jsonb[], pg_catalog.jsonb[])`);
    await query(`DROP FUNCTION IF EXISTS ${jsonFunction(names)}${JSON_ARGUMENTS}`);
    await query(`DROP FUNCTION IF EXISTS ${names.read}(bigint, integer, interval, boolean)`);
    // Waits for every session reading them (a subscriber's read, a report): bounded, naming them (REVIEW9 R158).
    const tables = await query(`SELECT pg_catalog.array_agg(c.oid::pg_catalog.regclass::pg_catalog.text) AS names FROM pg_catalog.pg_class c
      WHERE c.oid OPERATOR(pg_catalog.=) ANY (ARRAY[pg_catalog.to_regclass($1::pg_catalog.text), pg_catalog.to_regclass($2::pg_catalog.text), pg_catalog.to_regclass($3::pg_catalog.text)]::pg_catalog.oid[])`, [names.outbox, names.cursor, names.tables]);
    const present = (tables[0]?.names as string[] | null) ?? [];
    if (present.length > 0) await query(`DROP TABLE IF EXISTS ${names.outbox}, ${names.cursor}, ${names.tables}`, undefined, tablesLock(present));
    await dropSchemaIfEmpty(query);
  }, { name: 'row-changes deactivation', again: 'deactivate row-changes again' }));
}

const OBJECTS_SQL = `
SELECT substring(o.name from 'rc_([0-9a-f]{16})') AS fingerprint, o.kind, o.name, o.target, o.other_owner FROM (
  SELECT c.relname::pg_catalog.text AS name, 'table' AS kind, NULL::pg_catalog.text AS target, false AS other_owner FROM pg_catalog.pg_class c
   WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace($1::pg_catalog.text)::pg_catalog.oid AND c.relkind OPERATOR(pg_catalog.=) 'r'
  UNION ALL SELECT p.proname::pg_catalog.text, 'function', NULL, pg_catalog.pg_get_userbyid(p.proowner) OPERATOR(pg_catalog.<>) ${CAPTURE_ROLE_SQL} AND p.proname OPERATOR(pg_catalog.~) '_json$'
      FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace($1::pg_catalog.text)::pg_catalog.oid
  UNION ALL SELECT t.tgname::pg_catalog.text, 'trigger', n.nspname::pg_catalog.text OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) c.relname::pg_catalog.text, false FROM pg_catalog.pg_trigger t
     JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    WHERE t.tgname OPERATOR(pg_catalog.~) $2::pg_catalog.text AND NOT t.tgisinternal) AS o
 WHERE o.name OPERATOR(pg_catalog.~) 'rc_[0-9a-f]{16}'
 ORDER BY 1, 2, 3, 4`;

/**
 * What every version since the outbox had; what this one adds (rc_F_put, d061cbf; rc_F_json, REVIEW9 R161).
 * An rc_F_json owned by another role than this database's capture role (the cluster's shared one of
 * versions before REVIEW11 R169) is outdated too.
 */
const PARTS = ['table:outbox', 'table:cursor', 'table:tables', 'function:capture', 'function:capture_set', 'function:read'];
const NEW_PARTS = ['function:put', 'function:json'];

/** Every row-changes and schema-changes (event-trigger mode) activation in the database, complete or not. */
export async function listActivations(connection: unknown): Promise<Activation[]> {
  configOf(connection);
  const { rows } = await execute(connection, { text: OBJECTS_SQL, values: [SCHEMA, triggerNamePattern()], readOnly: true });
  const found = new Map<string, { parts: Set<string>; objects: string[]; triggers: number; otherOwner?: boolean }>();
  for (const row of rows) {
    const fingerprint = String(row.fingerprint);
    const entry = found.get(fingerprint) ?? { parts: new Set<string>(), objects: [], triggers: 0 };
    found.set(fingerprint, entry);
    if (row.other_owner === true) entry.otherOwner = true;
    if (row.kind === 'trigger') {
      entry.triggers++;
      entry.objects.push(`trigger ${String(row.name)} on ${String(row.target)}`);
    } else {
      entry.parts.add(`${String(row.kind)}:${String(row.name).slice(`rc_${fingerprint}_`.length)}`);
      entry.objects.push(`${String(row.kind)} ${SCHEMA}.${String(row.name)}`);
    }
  }
  const rowChanges = [...found].map(([fingerprint, entry]) => {
    const complete = entry.triggers > 0 && PARTS.every((part) => entry.parts.has(part));
    return { trigger: 'row-changes' as const, fingerprint, complete, outdated: complete && (entry.otherOwner === true || !NEW_PARTS.every((part) => entry.parts.has(part))), objects: entry.objects };
  });
  return [...rowChanges, ...(await schemaEventActivations(connection))];
}

/** Removes one activation by fingerprint (from listActivations), e.g. a leftover of a crashed host. */
export async function removeActivation(connection: unknown, fingerprint: string): Promise<void> {
  configOf(connection);
  if (typeof fingerprint !== 'string' || !/^[0-9a-f]{16}$/.test(fingerprint)) {
    throw new PgActionsError('INVALID_INPUT', { message: 'fingerprint must be 16 hexadecimal digits, as listActivations returns it', problems: ['fingerprint is not in the expected format'] });
  }
  await remove(connection, fingerprint);
  await removeSchemaEvents(connection, fingerprint); // nothing to do unless it is a schema-changes activation
}
