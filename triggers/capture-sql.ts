/**
 * What row-changes installs around the shared outbox (outbox-sql.ts): the watched-tables list and
 * the capture functions, and the triggers on each watched table.
 *   pgactions.rc_F_tables       watched tables and their primary-key columns (bound values, no SQL text)
 *   pgactions.rc_F_capture      the row-level trigger function (SECURITY DEFINER: writers need no rights on pgactions)
 *   pgactions.rc_F_capture_set  the statement-level one: a statement's rows from its transition tables
 *                               in one INSERT … SELECT and one NOTIFY (several times cheaper per row)
 *   trigger pg_actions_rc_F     row-level, on each watched partitioned table, partition or inheritance
 *                               parent/child (a statement trigger would miss rows written through a parent
 *                               or straight into a partition)
 *   triggers pg_actions_rc_F_insert / _update / _delete   statement-level, on every other watched table
 *                               (one per operation, as transition tables require), with
 *   trigger pg_actions_rc_F_partition_guard   a row trigger that never fires, so that such a table
 *                               cannot become a partition or inheritance child unnoticed.
 * Only fixed text and identifiers made of [a-z0-9_] go into function bodies.
 */
import { PARSED_FORMATS, quoteIdentifier } from '../connection/index.js';
import { untrustedCastFunction } from './cast-trust.js';
import { outboxStatements, ownerTag, type OutboxNames } from './outbox-sql.js';

/**
 * The capture functions' own settings: the search_path, and the formats to_jsonb writes values in,
 * which are otherwise the writer's session's (a database default of extra_float_digits 0 wrote
 * floats with 15 digits, IntervalStyle sql_standard its own intervals: REVIEW7 R126). Dates are
 * written in ISO by to_jsonb whatever DateStyle says.
 */
const FUNCTION_SETTINGS = `SET search_path = pg_catalog, pg_temp SET extra_float_digits = ${PARSED_FORMATS.extra_float_digits} SET IntervalStyle = ${PARSED_FORMATS.IntervalStyle}`;

/**
 * The capture runs as the role that activated the trigger (SECURITY DEFINER), and to_jsonb calls a
 * cast to json that the owner of a user type made (CREATE CAST needs only the type): the table's
 * owner could run any code with the activator's rights at each write (REVIEW7 R138). Such a cast on
 * any type a column's value reaches (through domains, arrays and composite fields; the only kind
 * to_jsonb looks a cast up for) refuses the write, naming it, instead. The catalog is walked only
 * when such a cast exists at all (pg_cast is small; one pass).
 */
const UNTRUSTED = untrustedCastFunction('c');
const REFUSE_JSON_CASTS = `IF EXISTS (SELECT FROM pg_cast AS c WHERE c.casttarget IN (114, 3802) AND c.castmethod = 'f' AND c.castsource >= 16384 AND ${UNTRUSTED}) THEN
    SELECT string_agg(format_type(c.castsource, NULL) || ' AS ' || format_type(c.casttarget, NULL), ', ') INTO json_casts
      FROM (WITH RECURSIVE reach(type) AS (
              SELECT a.atttypid FROM pg_attribute AS a WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
            UNION
              SELECT n.type FROM reach AS r JOIN pg_type AS t ON t.oid = r.type
               CROSS JOIN LATERAL (SELECT t.typbasetype WHERE t.typtype = 'd'
                                   UNION ALL SELECT t.typelem WHERE t.typelem <> 0 AND t.typlen = -1
                                   UNION ALL SELECT f.atttypid FROM pg_attribute AS f WHERE f.attrelid = t.typrelid AND t.typrelid <> 0 AND f.attnum > 0 AND NOT f.attisdropped) AS n(type))
            SELECT DISTINCT type FROM reach) AS r
      JOIN pg_cast AS c ON c.castsource = r.type AND c.casttarget IN (114, 3802) AND c.castmethod = 'f' AND c.castsource >= 16384 AND ${UNTRUSTED};
    IF json_casts IS NOT NULL THEN
      RAISE EXCEPTION USING ERRCODE = '42501',
        MESSAGE = format('pg-actions row-changes will not capture this change to %I.%I: a column''s type has a cast to json (%s) whose function would run with the rights of the role that activated the trigger', TG_TABLE_SCHEMA, TG_TABLE_NAME, json_casts),
        HINT = 'Drop the cast (DROP CAST (<type> AS json)), or stop watching the table.';
    END IF;
  END IF;`;

/** Creates (idempotently) everything but the per-table triggers. */
export function installStatements(n: OutboxNames): string[] {
  const tag = `'${ownerTag(n.fingerprint)}'`; // fingerprint is [0-9a-f]{16}: safe as literal text
  return [
    ...outboxStatements(n, tag),
    `CREATE TABLE IF NOT EXISTS ${n.tables} (relid pg_catalog.oid PRIMARY KEY, key_columns pg_catalog.text[])`,
    `CREATE OR REPLACE FUNCTION ${n.capture}() RETURNS pg_catalog.trigger LANGUAGE plpgsql SECURITY DEFINER ${FUNCTION_SETTINGS} AS $fn$
DECLARE
  key_columns text[];
  watched oid;
  watched_schema text;
  watched_name text;
  row_new jsonb;
  row_old jsonb;
  json_casts text;
BEGIN
  ${REFUSE_JSON_CASTS}
  SELECT t.relid, t.key_columns INTO watched, key_columns FROM ${n.tables} AS t WHERE t.relid = TG_RELID;
  IF watched IS NULL THEN
    -- A partition of a watched partitioned table (the trigger is cloned onto it): report the
    -- nearest watched ancestor, by its name and key, as configured.
    SELECT t.relid, t.key_columns INTO watched, key_columns
      FROM pg_partition_ancestors(TG_RELID) WITH ORDINALITY AS a(relid, level) JOIN ${n.tables} AS t ON t.relid = a.relid
     ORDER BY a.level LIMIT 1;
    SELECT ns.nspname, c.relname INTO watched_schema, watched_name
      FROM pg_class AS c JOIN pg_namespace AS ns ON ns.oid = c.relnamespace WHERE c.oid = watched;
  END IF;
  IF TG_OP <> 'DELETE' THEN row_new := to_jsonb(NEW); END IF;
  IF TG_OP <> 'INSERT' THEN row_old := to_jsonb(OLD); END IF;
  INSERT INTO ${n.outbox} (op, schema_name, table_name, key, new, old)
  VALUES (TG_OP, coalesce(watched_schema, TG_TABLE_SCHEMA), coalesce(watched_name, TG_TABLE_NAME),
          (SELECT jsonb_object_agg(k, coalesce(row_new, row_old) -> k) FROM unnest(key_columns) AS k), row_new, row_old);
  PERFORM pg_notify(TG_NAME, '');
  RETURN NULL;
END $fn$`,
    captureSetFunction(n),
    `COMMENT ON TABLE ${n.tables} IS ${tag}`,
    `COMMENT ON FUNCTION ${n.capture}() IS ${tag}`,
    `COMMENT ON FUNCTION ${n.captureSet}() IS ${tag}`,
    // Triggers fire without an EXECUTE check; nobody needs to call the SECURITY DEFINER function.
    `REVOKE ALL ON FUNCTION ${n.capture}() FROM PUBLIC`,
    `REVOKE ALL ON FUNCTION ${n.captureSet}() FROM PUBLIC`,
  ];
}

/** The key of the row r.j (jsonb) from key_columns; null for a table without a primary key. */
const ROW_KEY = `CASE WHEN cardinality(key_columns) = 1 THEN jsonb_build_object(key_columns[1], r.j -> key_columns[1])
            ELSE (SELECT jsonb_object_agg(k, r.j -> k) FROM unnest(key_columns) AS k) END`;

/**
 * The statement-level capture: one INSERT … SELECT of the statement's transition table(s) and one
 * NOTIFY. An UPDATE's old and new rows are paired by position: the server appends both images
 * of a row to the two transition tables together, so the n-th old row is the n-th new row's.
 */
function captureSetFunction(n: OutboxNames): string {
  // `c.*`, not `c`: a bare `c` means the watched table's column when it has one named c.
  const images = (table: string) => `(SELECT to_jsonb(c.*) AS j, row_number() OVER () AS i FROM ${table} AS c)`;
  return `CREATE OR REPLACE FUNCTION ${n.captureSet}() RETURNS pg_catalog.trigger LANGUAGE plpgsql SECURITY DEFINER ${FUNCTION_SETTINGS} AS $fn$
DECLARE
  key_columns text[];
  json_casts text;
BEGIN
  ${REFUSE_JSON_CASTS}
  SELECT t.key_columns INTO key_columns FROM ${n.tables} AS t WHERE t.relid = TG_RELID;
  IF TG_OP = 'INSERT' THEN
    INSERT INTO ${n.outbox} (op, schema_name, table_name, key, new)
    SELECT 'INSERT', TG_TABLE_SCHEMA, TG_TABLE_NAME, ${ROW_KEY}, r.j FROM ${images(TRANSITION_NEW)} AS r ORDER BY r.i;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO ${n.outbox} (op, schema_name, table_name, key, old)
    SELECT 'DELETE', TG_TABLE_SCHEMA, TG_TABLE_NAME, ${ROW_KEY}, r.j FROM ${images(TRANSITION_OLD)} AS r ORDER BY r.i;
  ELSE
    INSERT INTO ${n.outbox} (op, schema_name, table_name, key, new, old)
    SELECT 'UPDATE', TG_TABLE_SCHEMA, TG_TABLE_NAME, ${ROW_KEY}, r.j, o.j
      FROM ${images(TRANSITION_NEW)} AS r JOIN ${images(TRANSITION_OLD)} AS o ON o.i = r.i ORDER BY r.i;
  END IF;
  IF FOUND THEN PERFORM pg_notify(left(TG_NAME, ${CHANNEL_LENGTH}), ''); END IF;
  RETURN NULL;
END $fn$`;
}

const TRANSITION_NEW = 'pg_actions_new';
const TRANSITION_OLD = 'pg_actions_old';
/** "pg_actions_rc_" and 16 hex digits: the statement triggers' names start with the channel. */
const CHANNEL_LENGTH = 'pg_actions_rc_'.length + 16;
const PER_STATEMENT: Record<string, { suffix: string; referencing: string }> = {
  INSERT: { suffix: '_insert', referencing: `NEW TABLE AS ${TRANSITION_NEW}` },
  UPDATE: { suffix: '_update', referencing: `OLD TABLE AS ${TRANSITION_OLD} NEW TABLE AS ${TRANSITION_NEW}` },
  DELETE: { suffix: '_delete', referencing: `OLD TABLE AS ${TRANSITION_OLD}` },
};
/**
 * Beside the statement triggers: a row trigger with a transition table that never fires (WHEN
 * false). PostgreSQL refuses to make a table with such a trigger a partition or an inheritance
 * child ("trigger … prevents table … from becoming a partition"), where the statement triggers
 * would miss rows written through the parent; re-activating then installs the row-level capture.
 */
const GUARD_SUFFIX = '_partition_guard';
const SUFFIXES = [...Object.values(PER_STATEMENT).map(({ suffix }) => suffix), GUARD_SUFFIX];

/** Every name a trigger of this activation may have on a table (to drop them all before creating). */
export function triggerNames(n: OutboxNames): string[] {
  return [n.trigger, ...SUFFIXES.map((suffix) => n.trigger + suffix)];
}

/** A regular expression matching the names of every activation's triggers (or one's, given its fingerprint). */
export function triggerNamePattern(fingerprint = '[0-9a-f]{16}'): string {
  return `^pg_actions_rc_${fingerprint}(${SUFFIXES.join('|')})?$`;
}

/** `perStatement`: an ordinary table (no partitions, no inheritance), where statement triggers see every row. */
export function createTriggerStatements(n: OutboxNames, table: string, operations: readonly string[], perStatement: boolean): string[] {
  const known = operations.map((op) => ({ INSERT: 'INSERT', UPDATE: 'UPDATE', DELETE: 'DELETE' })[op]!);
  if (!perStatement) {
    return [`CREATE TRIGGER ${quoteIdentifier(n.trigger)} AFTER ${known.join(' OR ')} ON ${table} FOR EACH ROW EXECUTE PROCEDURE ${n.capture}()`];
  }
  const statementTriggers = known.map((op) => {
    const { suffix, referencing } = PER_STATEMENT[op]!;
    return `CREATE TRIGGER ${quoteIdentifier(n.trigger + suffix)} AFTER ${op} ON ${table} REFERENCING ${referencing} FOR EACH STATEMENT EXECUTE PROCEDURE ${n.captureSet}()`;
  });
  const first = known[0]!;
  return [
    ...statementTriggers,
    `CREATE TRIGGER ${quoteIdentifier(n.trigger + GUARD_SUFFIX)} AFTER ${first} ON ${table} REFERENCING ${PER_STATEMENT[first]!.referencing} FOR EACH ROW WHEN (false) EXECUTE PROCEDURE ${n.captureSet}()`,
  ];
}

