/**
 * What row-changes installs around the shared outbox (outbox-sql.ts): the watched-tables list and
 * the capture functions, and the triggers on each watched table.
 *   pgactions.rc_F_tables       watched tables and their primary-key columns (bound values, no SQL text)
 *   pgactions.rc_F_capture      the row-level trigger function
 *   pgactions.rc_F_capture_set  the statement-level one: a statement's rows from its transition tables,
 *                               handed over in a few large batches (several times cheaper per row)
 *   pgactions.rc_F_put          records the changes the capture functions hand it in the outbox
 *   pgactions.rc_F_json         to_jsonb of a row, as the role pgactions_capture_<database oid>
 *   trigger pg_actions_rc_F     row-level, on each watched partitioned table, partition or inheritance
 *                               parent/child (a statement trigger would miss rows written through a parent
 *                               or straight into a partition)
 *   triggers pg_actions_rc_F_insert / _update / _delete   statement-level, on every other watched table
 *                               (one per operation, as transition tables require), with
 *   trigger pg_actions_rc_F_partition_guard   a row trigger that never fires, so that such a table
 *                               cannot become a partition or inheritance child unnoticed.
 * Only fixed text and identifiers made of [a-z0-9_] go into function bodies.
 *
 * Who runs what: the capture functions are SECURITY DEFINER, owned by the activating role, which
 * writes the outbox; but they never serialise a row themselves. to_jsonb calls any cast to json the
 * owner of a column's type made, and such a cast can be created between any check and the call (a
 * check-then-use race: REVIEW7 R138's refusal was beaten in under a second, REVIEW8 R143), so it must
 * run with rights worth nothing: neither the activator's (R143) nor the writer's (a superuser's
 * INSERT made the type's owner superuser: REVIEW9 R161). So the rows go to rc_F_json, SECURITY
 * DEFINER owned by the database's capture role (capture-role.ts), which has no right at all, not even
 * USAGE on pgactions, and refuses to run as any other role. Nothing else in pgactions is callable by
 * anyone but the activator: a role that may not write a watched table cannot put events for it
 * (REVIEW9 R157), and PUBLIC has no USAGE on pgactions (REVIEW9 R158).
 * Even as that role a cast runs in the writer's session, where it could SET search_path for the
 * rest of it (REVIEW10 R170), so no cast but a superuser's is called at all: columns of types made
 * by other roles, or with a cast to json whose function another role owns (REVIEW12 R181), are
 * written as their text (unsafeColumnsSql); the row, with those columns as text, still goes to rc_F_json.
 */
import { PARSED_FORMATS, quoteIdentifier } from '../connection/index.js';
import { outboxStatements, ownerTag, tableComment, wakeSubscribers, type OutboxNames } from './outbox-sql.js';
import { ownerCheckPlpgsql } from './schema-owner.js';

/**
 * The capture functions' own settings: the search_path, and the formats to_jsonb writes values in,
 * which are otherwise the writer's session's (a database default of extra_float_digits 0 wrote
 * floats with 15 digits, IntervalStyle sql_standard its own intervals: REVIEW7 R126). Dates are
 * written in ISO by to_jsonb whatever DateStyle says; bytea in hex whatever bytea_output says (REVIEW10 R167).
 * plan_cache_mode: the catalog queries below take TG_RELID as a parameter, and PL/pgSQL planned them
 * afresh for every statement (the server judged its custom plans cheaper than the generic one): 2-3 ms
 * a statement for the walk alone (REVIEW11 R173). Their generic plans are index lookups.
 */
const FUNCTION_SETTINGS = `SET search_path = pg_catalog, pg_temp SET extra_float_digits = ${PARSED_FORMATS.extra_float_digits} SET IntervalStyle = ${PARSED_FORMATS.IntervalStyle} SET TimeZone = '${PARSED_FORMATS.TimeZone}' SET bytea_output = ${PARSED_FORMATS.bytea_output} SET DateStyle = '${PARSED_FORMATS.DateStyle}' SET plan_cache_mode = force_generic_plan`;

/** The function the capture functions hand their rows to (it writes the outbox). */
export function putFunction(n: OutboxNames): string {
  return `${n.schema}.${quoteIdentifier(`rc_${n.fingerprint}_put`)}`;
}
const PUT_ARGUMENTS = '(pg_catalog.oid, pg_catalog.text, pg_catalog.jsonb[], pg_catalog.jsonb[])';

/** The function that serialises a row, as the capture role (capture-role.ts). */
export function jsonFunction(n: OutboxNames): string {
  return `${n.schema}.${quoteIdentifier(`rc_${n.fingerprint}_json`)}`;
}
export const JSON_ARGUMENTS = '(pg_catalog.anyelement)';

/**
 * Defence in depth: only the activator (the owner of the capture functions) may call rc_F_put; it
 * also takes events for a table only from a trigger, in a transaction that has written that table
 * that way (the server's per-transaction counters; where counting is off, which only a superuser
 * sets, or for a foreign table, which the counters never count (a postgres_fdw partition: REVIEW12
 * R188), the table's write lock held by this transaction).
 */
const PUT_GUARD = `IF pg_trigger_depth() < 1 OR source IS NULL OR NOT (coalesce(CASE op
       WHEN 'INSERT' THEN pg_stat_get_xact_tuples_inserted(source)
       WHEN 'UPDATE' THEN pg_stat_get_xact_tuples_updated(source)
       WHEN 'DELETE' THEN pg_stat_get_xact_tuples_deleted(source) END, 0) > 0
     OR op IN ('INSERT', 'UPDATE', 'DELETE')
       AND (NOT current_setting('track_counts')::boolean OR (SELECT c.relkind FROM pg_class AS c WHERE c.oid = source) = 'f')
       AND EXISTS (SELECT FROM pg_locks AS l WHERE l.locktype = 'relation' AND l.pid = pg_backend_pid()
                     AND l.database = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
                     AND l.relation = source AND l.mode = 'RowExclusiveLock' AND l.granted)) THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = 'pg-actions row-changes records only the changes its triggers capture, in the transaction that made them';
  END IF;`;

/**
 * REVIEW10 R170: to_jsonb calls a cast to json for a type that is not built in and neither an array
 * nor a composite, and the type's owner may make one at any moment. Such a cast ran in every
 * captured write, in the writer's session, where it could SET search_path for the writer's next
 * statements. So the capture calls no cast but a superuser's: a column is kept away from to_jsonb
 * when any type it reaches (through domains to their base, arrays to their element, composites to
 * their fields) is not built in and is owned by a role that is not a superuser, or has a cast to json
 * whose function is not a superuser's (TYPE_OWNER_IS_SUPERUSER; domains excepted: to_jsonb looks
 * through them), and is written as its type's output text instead (format's %s
 * calls only output functions, which only a superuser can make). No check-then-use: while a
 * statement writes the table its columns cannot change, a built-in type never does, and only a
 * superuser can change a superuser's type or hand it to another role.
 * unsafePrelude sets `obj` (NULL when every column is safe, the common case: a table whose column
 * types are all built in costs one catalog probe) to the SQL of the row's jsonb over the alias c.
 * Activation stores that decision for each watched table, kept while its columns stay the same
 * (SIGNATURE_SQL, REVIEW11 R173); the prelude runs when they changed, and for partitions.
 */
const ROLE_IS_SUPERUSER = (role: string) => `coalesce((SELECT ow.rolsuper FROM pg_catalog.pg_roles AS ow WHERE ow.oid OPERATOR(pg_catalog.=) ${role}), false)`;
/**
 * Whether the type t (pg_type) may go to to_jsonb: it is a superuser's (only a superuser can then make
 * a cast from it or change it) and no cast to json from it calls a function whose owner is not a
 * superuser (REVIEW12 R181). A type handed to a superuser (ALTER TYPE … OWNER TO) keeps the cast its
 * former owner made, and she keeps its function, whose body she can replace at any moment; a superuser
 * may also have made a cast WITH FUNCTION of another role's function: the function's owner decides.
 * No check-then-use: a new cast from the type needs its owner, a superuser, and the function's owner
 * can replace its body but not hand it to a superuser (that takes acting as one). Casts from a domain
 * are never called (PostgreSQL ignores them, and to_jsonb looks through domains: the walk checks the
 * base); those from an array or a composite neither (to_jsonb goes through their elements and fields),
 * but such a cast, which only a superuser can make, makes the column text all the same. One index
 * probe of pg_cast, only for a superuser's type (such a column is decided per statement: R173).
 */
const TYPE_OWNER_IS_SUPERUSER = `(${ROLE_IS_SUPERUSER('t.typowner')} AND NOT EXISTS (SELECT FROM pg_catalog.pg_cast AS k
       JOIN pg_catalog.pg_proc AS p ON p.oid OPERATOR(pg_catalog.=) k.castfunc
      WHERE k.castsource OPERATOR(pg_catalog.=) t.oid AND k.casttarget OPERATOR(pg_catalog.=) 'pg_catalog.json'::pg_catalog.regtype::pg_catalog.oid
        AND k.castmethod OPERATOR(pg_catalog.=) 'f' AND NOT ${ROLE_IS_SUPERUSER('p.proowner')}))`;
/*
 * The walk looks each type up by its oid (OFFSET 0 keeps the lookups inside the LATERAL and the EXISTS,
 * where they are index scans: joined, the planner hashed the whole of pg_type and asked pg_roles about
 * each of its ~600 types, 12-18 ms a statement, REVIEW11 R173), and does not go below a built-in type,
 * whose domains' bases, elements and fields are built in too.
 */
const REACH_SQL = (relid: string) => `WITH RECURSIVE reach(col, typ) AS (
    SELECT a.attname, a.atttypid FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid OPERATOR(pg_catalog.=) ${relid} AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
  UNION
    SELECT rc.col, nx.next FROM reach AS rc CROSS JOIN LATERAL (
        SELECT t.typbasetype FROM pg_catalog.pg_type AS t WHERE t.oid OPERATOR(pg_catalog.=) rc.typ AND t.typtype OPERATOR(pg_catalog.=) 'd'
        UNION ALL SELECT t.typelem FROM pg_catalog.pg_type AS t
         WHERE t.oid OPERATOR(pg_catalog.=) rc.typ AND t.typlen OPERATOR(pg_catalog.=) (-1) AND t.typelem OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
        UNION ALL SELECT f.atttypid FROM pg_catalog.pg_type AS t JOIN pg_catalog.pg_attribute AS f ON f.attrelid OPERATOR(pg_catalog.=) t.typrelid
         WHERE t.oid OPERATOR(pg_catalog.=) rc.typ AND t.typrelid OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
           AND f.attnum OPERATOR(pg_catalog.>) 0 AND NOT f.attisdropped
        OFFSET 0) AS nx(next)
     WHERE rc.typ OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid)`;
const unsafeColumnsSql = (relid: string) => `${REACH_SQL(relid)}
  SELECT DISTINCT rc.col FROM reach AS rc
   WHERE rc.typ OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid AND EXISTS (SELECT FROM pg_catalog.pg_type AS t
     WHERE t.oid OPERATOR(pg_catalog.=) rc.typ AND t.typtype OPERATOR(pg_catalog.<>) 'd' AND NOT ${TYPE_OWNER_IS_SUPERUSER} OFFSET 0)`;
/** Whether a column not written as text reaches a type that is neither built in nor a domain: a superuser's, whose owner may change. */
const unstableSql = (relid: string, unsafe: string) => `${REACH_SQL(relid)}
  SELECT EXISTS (SELECT FROM reach AS rc WHERE rc.typ OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
     AND NOT coalesce(rc.col OPERATOR(pg_catalog.=) ANY (${unsafe}), false)
     AND EXISTS (SELECT FROM pg_catalog.pg_type AS t WHERE t.oid OPERATOR(pg_catalog.=) rc.typ AND t.typtype OPERATOR(pg_catalog.<>) 'd' OFFSET 0))`;

/**
 * One column of the row handed to rc_F_json: the value itself, or the jsonb of its text (a one-dimensional
 * array element by element, by subscript: unnest would spread an array of composites into their fields,
 * REVIEW11 R178), which to_jsonb then takes as it is; a VIRTUAL generated column's (PostgreSQL 18), which
 * the trigger's rows hold as NULL, computed from its expression over the row (REVIEW11 R176;
 * VIRTUAL_GUARD has refused an expression that is not safe to run as the activator). Never to_jsonb of
 * a value here, which would run as the activator any cast to json the checks missed (REVIEW12 R181: one
 * made the cast's author superuser).
 */
const columnJsonSql = (unsafe: string) => `CASE WHEN a.attgenerated OPERATOR(pg_catalog.=) 'v' THEN pg_catalog.format('(%s)', pg_catalog.pg_get_expr(ad.adbin, ad.adrelid))
    WHEN NOT coalesce(a.attname OPERATOR(pg_catalog.=) ANY (${unsafe}), false) THEN pg_catalog.format('c.%I', a.attname)
    WHEN t.typlen OPERATOR(pg_catalog.=) (-1) AND t.typelem OPERATOR(pg_catalog.<>) 0::pg_catalog.oid AND t.typtype OPERATOR(pg_catalog.<>) 'd' THEN pg_catalog.format(
      'CASE WHEN pg_catalog.num_nulls(c.%1$I) OPERATOR(pg_catalog.=) 1 THEN NULL WHEN pg_catalog.array_ndims(c.%1$I) OPERATOR(pg_catalog.>) 1 THEN pg_catalog.to_jsonb(pg_catalog.format(''%%s'', c.%1$I)) '
      'ELSE (SELECT coalesce(pg_catalog.jsonb_agg(CASE WHEN pg_catalog.num_nulls(c.%1$I[g.i]) OPERATOR(pg_catalog.=) 1 THEN NULL ELSE pg_catalog.format(''%%s'', c.%1$I[g.i]) END ORDER BY g.i), ''[]''::pg_catalog.jsonb) '
      'FROM pg_catalog.generate_subscripts(c.%1$I, 1) AS g(i)) END', a.attname)
    ELSE pg_catalog.format('CASE WHEN pg_catalog.num_nulls(c.%1$I) OPERATOR(pg_catalog.=) 0 THEN pg_catalog.to_jsonb(pg_catalog.format(''%%s'', c.%1$I)) END', a.attname) END`;

/**
 * REVIEW11 R176: PostgreSQL 18's VIRTUAL generated columns are computed when read; a trigger's rows
 * and transition tables hold them as NULL. The capture computes them from their expression over the
 * row, as the activator. PostgreSQL 18 refuses in such an expression any function or type that is not
 * built in ("generation expression uses user-defined function"), because every reader of the table
 * runs it with its own rights: so computing it grants the table's owner nothing the activator's own
 * SELECT would not. Should a later version allow them, the expression would run a table owner's
 * function with the activator's rights (the escalation of REVIEW9 R161), so the capture computes only
 * expressions that depend on nothing but the table's columns, collations and operators whose function
 * is built in, and refuses the write otherwise, naming the column and the fix (STORED computes it in
 * the writer's INSERT, as the writer). Activation refuses such a column before (activations.ts).
 */
export const VIRTUAL_REFUSED_SQL = (relid: string) => `SELECT a.attname FROM pg_catalog.pg_attribute AS a
     JOIN pg_catalog.pg_attrdef AS ad ON ad.adrelid OPERATOR(pg_catalog.=) a.attrelid AND ad.adnum OPERATOR(pg_catalog.=) a.attnum
    WHERE a.attrelid OPERATOR(pg_catalog.=) ${relid} AND a.attgenerated OPERATOR(pg_catalog.=) 'v' AND NOT a.attisdropped
      AND EXISTS (SELECT FROM pg_catalog.pg_depend AS d
            WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) ad.oid
              AND NOT (d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid OPERATOR(pg_catalog.=) a.attrelid
                OR d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_collation'::pg_catalog.regclass
                OR d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass
                   AND EXISTS (SELECT FROM pg_catalog.pg_operator AS o WHERE o.oid OPERATOR(pg_catalog.=) d.refobjid
                                 AND o.oprcode::pg_catalog.oid OPERATOR(pg_catalog.<) 16384::pg_catalog.oid)))
    ORDER BY a.attnum LIMIT 1`;
const VIRTUAL_GUARD = `SELECT v.attname INTO refused FROM (${VIRTUAL_REFUSED_SQL('TG_RELID')}) AS v;
    IF refused IS NOT NULL THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format('pg-actions row-changes does not compute the generated column %I of %s: its expression uses a function or type that is not built in, which would run with the rights of the role that activated the trigger. Fix: make the column STORED (drop it and add it again as GENERATED ALWAYS AS (...) STORED), or deactivate the trigger', refused, TG_RELID::pg_catalog.regclass);
    END IF;`;

/**
 * The SQL of a row's jsonb over the alias c: rc_F_json (`json`) of a row of the table's columns, each by
 * columnJsonSql (one call a row, and whatever to_jsonb calls runs as the capture role: REVIEW12 R181);
 * no row when no column is unsafe or VIRTUAL. `s.*`: a bare `s` would be a column named s.
 */
const rowJsonSql = (relid: string, unsafe: string, json: string) => `SELECT '(SELECT ${json}(s.*) FROM (SELECT ' OPERATOR(pg_catalog.||)
           pg_catalog.string_agg(pg_catalog.format('%s AS %I', ${columnJsonSql(unsafe)}, a.attname), ', ' ORDER BY a.attnum) OPERATOR(pg_catalog.||) ') AS s)'
      FROM pg_catalog.pg_attribute AS a JOIN pg_catalog.pg_type AS t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
        LEFT JOIN pg_catalog.pg_attrdef AS ad ON ad.adrelid OPERATOR(pg_catalog.=) a.attrelid AND ad.adnum OPERATOR(pg_catalog.=) a.attnum
     WHERE a.attrelid OPERATOR(pg_catalog.=) ${relid} AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
    HAVING pg_catalog.bool_or(a.attgenerated OPERATOR(pg_catalog.=) 'v' OR a.attname OPERATOR(pg_catalog.=) ANY (${unsafe}))`;

/**
 * REVIEW11 R173: what the capture decided for a table at activation (rc_F_tables.row_sql: rowJsonSql's
 * text, NULL for the whole row to rc_F_json) holds while the table's columns keep their names, types and
 * expressions: SIGNATURE_SQL, one index scan of pg_attribute, stored beside it (rc_F_tables.signature)
 * and compared by every statement, which otherwise decides afresh (unsafePrelude). Only a decision that
 * no later change but the table's own can make unsafe is stored: every column is written as text (which
 * calls output functions only, whoever owns the type then), or reaches nothing but built-in types and
 * domains (a domain's base never changes). A column written by to_jsonb that reaches a superuser's type
 * (hstore, say) is decided per statement, as the type may be handed to another role, or its owner lose
 * SUPERUSER, at any time. A VIRTUAL column's expression is part of its pg_attrdef row (a new oid on
 * ALTER … SET EXPRESSION); activation refused one it would not compute (activations.ts).
 */
export const SIGNATURE_SQL = (relid: string) => `SELECT pg_catalog.array_agg(pg_catalog.format('%s %s %s %s', a.atttypid, a.attgenerated, ad.oid, a.attname) ORDER BY a.attnum)
      FROM pg_catalog.pg_attribute AS a
        LEFT JOIN pg_catalog.pg_attrdef AS ad ON ad.adrelid OPERATOR(pg_catalog.=) a.attrelid AND ad.adnum OPERATOR(pg_catalog.=) a.attnum AND a.attgenerated OPERATOR(pg_catalog.=) 'v'
     WHERE a.attrelid OPERATOR(pg_catalog.=) ${relid} AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped`;

/** At activation ($1: the table's oid): the row's SQL (over rc_F_json, `json`) and, when the decision can be kept, the signature it holds for. */
export const decisionSql = (json: string) => `WITH u AS (SELECT pg_catalog.array_agg(x.col) AS unsafe FROM (${unsafeColumnsSql('$1::pg_catalog.oid')}) AS x(col))
SELECT (${rowJsonSql('$1::pg_catalog.oid', 'u.unsafe', json)}) AS row_sql,
       CASE WHEN NOT (${unstableSql('$1::pg_catalog.oid', 'u.unsafe')}) THEN (${SIGNATURE_SQL('$1::pg_catalog.oid')}) END AS signature
  FROM u`;

/** The columns rc_F_tables has had since R173 (added by activation to an earlier version's table). */
export const DECISION_COLUMNS = ['row_sql pg_catalog.text', 'signature pg_catalog.text[]'] as const;

// The walk runs only for a table with a column that is not safe at first sight (REVIEW11 R173: it cost
// 1.5-2 ms a statement): built in, a domain over a built-in type, or a superuser's base type, enum or
// range (not an array or composite, whose elements and fields may be anyone's); and for a table with a
// VIRTUAL generated column (R176), whose value is computed. `obj` stays NULL when no column needs
// either: the row then goes whole to rc_F_json.
const unsafePrelude = (json: string) => `IF EXISTS (SELECT FROM pg_catalog.pg_attribute AS a JOIN pg_catalog.pg_type AS t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
               WHERE a.attrelid OPERATOR(pg_catalog.=) TG_RELID AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
                 AND (a.attgenerated OPERATOR(pg_catalog.=) 'v' OR a.atttypid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid
                 AND NOT (t.typtype OPERATOR(pg_catalog.=) 'd' AND t.typbasetype OPERATOR(pg_catalog.<) 16384::pg_catalog.oid)
                 AND NOT (t.typtype OPERATOR(pg_catalog.=) ANY ('{b,e,r,m}'::pg_catalog."char"[]) AND t.typelem OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                          AND ${TYPE_OWNER_IS_SUPERUSER}))) THEN
    SELECT pg_catalog.array_agg(u.col) INTO unsafe FROM (${unsafeColumnsSql('TG_RELID')}) AS u(col);
    ${VIRTUAL_GUARD}
    SELECT built.obj INTO obj FROM (${rowJsonSql('TG_RELID', 'unsafe', json)}) AS built(obj);
  END IF;`;

/** Sets obj: the activation's decision while the table's signature holds, else unsafePrelude's. */
const decided = (n: OutboxNames) => `SELECT tb.row_sql, tb.signature INTO obj, kept_for FROM ${n.tables} AS tb WHERE tb.relid OPERATOR(pg_catalog.=) TG_RELID;
  IF kept_for IS NULL OR kept_for OPERATOR(pg_catalog.<>) (${SIGNATURE_SQL('TG_RELID')}) THEN
    obj := NULL;
    ${unsafePrelude(jsonFunction(n))}
  END IF;`;

/** Creates (idempotently) everything but rc_F_json (jsonStatements) and the per-table triggers. */
export function installStatements(n: OutboxNames): string[] {
  const tag = `'${ownerTag(n.fingerprint)}'`; // fingerprint is [0-9a-f]{16}: safe as literal text
  const put = putFunction(n);
  const json = jsonFunction(n);
  return [
    ...outboxStatements(n, tag),
    `CREATE TABLE IF NOT EXISTS ${n.tables} (relid pg_catalog.oid PRIMARY KEY, key_columns pg_catalog.text[])`,
    putFunctionStatement(n, put),
    // The capture functions run as the activator; rc_F_json serialises each image, as the capture role (a NULL array for no image).
    `CREATE OR REPLACE FUNCTION ${n.capture}() RETURNS pg_catalog.trigger LANGUAGE plpgsql SECURITY DEFINER ${FUNCTION_SETTINGS} AS $fn$
DECLARE
  unsafe pg_catalog.name[];
  refused pg_catalog.name;
  obj pg_catalog.text;
  kept_for pg_catalog.text[];
  n pg_catalog.jsonb;
  o pg_catalog.jsonb;
BEGIN
  ${ownerCheckPlpgsql('row-changes capture')}
  ${decided(n)}
  IF obj IS NULL THEN
    PERFORM ${put}(TG_RELID, TG_OP, CASE WHEN TG_OP <> 'DELETE' THEN ARRAY[${json}(NEW)] END, CASE WHEN TG_OP <> 'INSERT' THEN ARRAY[${json}(OLD)] END);
  ELSE
    obj := 'SELECT ' OPERATOR(pg_catalog.||) obj OPERATOR(pg_catalog.||) ' FROM (SELECT ($1).*) AS c'; -- the row's jsonb over $1
    IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN EXECUTE obj INTO n USING NEW; END IF;
    IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN EXECUTE obj INTO o USING OLD; END IF;
    PERFORM ${put}(TG_RELID, TG_OP, CASE WHEN TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN ARRAY[n] END, CASE WHEN TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN ARRAY[o] END);
  END IF;
  RETURN NULL;
END $fn$`,
    // Earlier versions' (REVIEW9 R161): CREATE OR REPLACE keeps the attribute, ALTER sets it.
    `ALTER FUNCTION ${n.capture}() SECURITY DEFINER`,
    captureSetFunction(n, put, json),
    `ALTER FUNCTION ${n.captureSet}() SECURITY DEFINER`,
    tableComment(n.tables, tag),
    `COMMENT ON FUNCTION ${n.capture}() IS ${tag}`,
    `COMMENT ON FUNCTION ${n.captureSet}() IS ${tag}`,
    `COMMENT ON FUNCTION ${put}${PUT_ARGUMENTS} IS ${tag}`,
    // Triggers fire without an EXECUTE check: nobody needs to call the capture functions or rc_F_put
    // (earlier versions granted rc_F_put and USAGE on pgactions to PUBLIC: REVIEW9 R157, R158).
    `REVOKE ALL ON FUNCTION ${n.capture}() FROM PUBLIC`,
    `REVOKE ALL ON FUNCTION ${n.captureSet}() FROM PUBLIC`,
    `REVOKE ALL ON FUNCTION ${put}${PUT_ARGUMENTS} FROM PUBLIC`,
  ];
}

/**
 * rc_F_json(row): to_jsonb of the row, run as the capture role, which owns it (these statements run
 * as that role: capture-role.ts). It refuses to run as any other role, so even if its owner (a cast
 * running as it) made it SECURITY INVOKER, it would not serialise with the activator's rights.
 * Only `callers` (the owners of the capture functions) may call it. The formats come from the
 * capture functions' settings.
 */
export function jsonStatements(n: OutboxNames, callers: readonly string[], role: string): string[] {
  if (!/^[a-z0-9_]+$/.test(role)) throw new Error(`capture role ${JSON.stringify(role)}: only [a-z0-9_] goes into function bodies`);
  const tag = `'${ownerTag(n.fingerprint)}'`;
  const json = jsonFunction(n);
  return [
    `CREATE FUNCTION ${json}(r pg_catalog.anyelement) RETURNS pg_catalog.jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF CURRENT_USER OPERATOR(pg_catalog.<>) '${role}'::pg_catalog.name THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format('pg-actions row-changes serialises rows only as the role ${role}, not as %I: activate the trigger again', CURRENT_USER);
  END IF;
  RETURN pg_catalog.to_jsonb(r);
END $fn$`,
    `COMMENT ON FUNCTION ${json}${JSON_ARGUMENTS} IS ${tag}`,
    `REVOKE ALL ON FUNCTION ${json}${JSON_ARGUMENTS} FROM PUBLIC`,
    ...callers.map((role) => `GRANT EXECUTE ON FUNCTION ${json}${JSON_ARGUMENTS} TO ${quoteIdentifier(role)}`),
  ];
}

/**
 * The watched table's primary key columns as they are now (REVIEW12 R185: a key column renamed, a
 * new primary key, a key added after activation), in key order; null without a primary key.
 */
const CURRENT_KEY_COLUMNS = `SELECT array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum)) INTO key_columns
    FROM pg_index AS i JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
   WHERE i.indrelid = watched AND i.indisprimary`;

/** The key of the row j (jsonb) from key_columns; null for a table without a primary key. */
const ROW_KEY = (j: string) => `CASE WHEN cardinality(key_columns) = 1 THEN jsonb_build_object(key_columns[1], ${j} -> key_columns[1])
            ELSE (SELECT jsonb_object_agg(k, ${j} -> k) FROM unnest(key_columns) AS k) END`;

/**
 * rc_F_put(source, op, new images, old images): the i-th change is (news[i], olds[i]). The
 * changes of a partition of a watched partitioned table (the row trigger is cloned onto it) are
 * reported under the nearest watched ancestor's name and key, as configured.
 */
function putFunctionStatement(n: OutboxNames, put: string): string {
  return `CREATE OR REPLACE FUNCTION ${put}(source pg_catalog.oid, op pg_catalog.text, news pg_catalog.jsonb[], olds pg_catalog.jsonb[]) RETURNS pg_catalog.void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  key_columns text[];
  watched oid;
  watched_schema text;
  watched_name text;
BEGIN
  ${PUT_GUARD}
  SELECT t.relid INTO watched FROM ${n.tables} AS t WHERE t.relid = source;
  IF watched IS NULL THEN
    SELECT t.relid INTO watched
      FROM pg_partition_ancestors(source) WITH ORDINALITY AS a(relid, level) JOIN ${n.tables} AS t ON t.relid = a.relid
     ORDER BY a.level LIMIT 1;
  END IF;
  IF watched IS NULL THEN
    -- An inheritance descendant (REVIEW12 R186): the nearest watched ancestor; of several at one
    -- distance (multiple inheritance), the one reached through the first-listed parents.
    WITH RECURSIVE up(relid, level, path) AS (
        SELECT h.inhparent, 1, ARRAY[h.inhseqno] FROM pg_inherits AS h WHERE h.inhrelid = source
      UNION ALL
        SELECT h.inhparent, u.level + 1, u.path || h.inhseqno FROM up AS u JOIN pg_inherits AS h ON h.inhrelid = u.relid)
    SELECT t.relid INTO watched
      FROM up JOIN ${n.tables} AS t ON t.relid = up.relid
     ORDER BY up.level, up.path LIMIT 1;
  END IF;
  ${CURRENT_KEY_COLUMNS};
  SELECT ns.nspname, c.relname INTO watched_schema, watched_name
    FROM pg_class AS c JOIN pg_namespace AS ns ON ns.oid = c.relnamespace WHERE c.oid = watched;
  IF watched_name IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('pg-actions row-changes does not watch the table %s (activate the trigger again)', source::regclass);
  END IF;
  INSERT INTO ${n.outbox} (op, schema_name, table_name, key, new, old)
  SELECT op, watched_schema, watched_name, ${ROW_KEY('coalesce(e.n, e.o)')}, e.n, e.o
    FROM unnest(news, olds) WITH ORDINALITY AS e(n, o, i) ORDER BY e.i;
  ${wakeSubscribers(n.trigger, 'FOUND')}
END $fn$`;
}

/** A statement's changes go to rc_F_put in batches of at most this many, or about this many bytes. */
const BATCH_ROWS = 1000;
const BATCH_BYTES = 16 * 1024 * 1024;

/**
 * The statement-level capture: the statement's transition table(s), in batches. Every name after
 * the first rc_F_json call is qualified: a cast to json can SET search_path for the rest of the
 * session (a function's SET clause is undone only at its exit), and the loop's expressions are
 * planned again on the new path, as the activator (REVIEW10 R170). An UPDATE's old and
 * new rows are paired by position: the server appends both images of a row to the two transition
 * tables together, so the n-th old row is the n-th new row's.
 */
function captureSetFunction(n: OutboxNames, put: string, json: string): string {
  // `c.*`, not `c`: a bare `c` means the watched table's column when it has one named c.
  // `row` is the row's jsonb over the alias c: rc_F_json's, or %1$s (obj, run by EXECUTE: R170).
  const images = (table: string, row: string) => `(SELECT ${row} AS j, pg_catalog.row_number() OVER () AS i FROM ${table} AS c)`;
  const queries = (row: string) => ({
    INSERT: `SELECT x.j AS n, NULL::pg_catalog.jsonb AS o FROM ${images(TRANSITION_NEW, row)} AS x ORDER BY x.i`,
    DELETE: `SELECT NULL::pg_catalog.jsonb AS n, x.j AS o FROM ${images(TRANSITION_OLD, row)} AS x ORDER BY x.i`,
    UPDATE: `SELECT x.j AS n, y.j AS o FROM ${images(TRANSITION_NEW, row)} AS x JOIN ${images(TRANSITION_OLD, row)} AS y ON y.i OPERATOR(pg_catalog.=) x.i ORDER BY x.i`,
  });
  const each = (query: string) => `FOR r IN ${query} LOOP
      news := pg_catalog.array_append(news, r.n);
      olds := pg_catalog.array_append(olds, r.o);
      bytes := bytes OPERATOR(pg_catalog.+) coalesce(pg_catalog.pg_column_size(r.n), 0) OPERATOR(pg_catalog.+) coalesce(pg_catalog.pg_column_size(r.o), 0);
      IF pg_catalog.cardinality(news) OPERATOR(pg_catalog.>=) ${BATCH_ROWS} OR bytes OPERATOR(pg_catalog.>=) ${BATCH_BYTES} THEN
        PERFORM ${put}(TG_RELID, TG_OP, news, olds);
        news := '{}'; olds := '{}'; bytes := 0;
      END IF;
    END LOOP;`;
  const byOperation = (query: (op: 'INSERT' | 'DELETE' | 'UPDATE') => string) => `IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
      ${each(query('INSERT'))}
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
      ${each(query('DELETE'))}
    ELSE
      ${each(query('UPDATE'))}
    END IF;`;
  const plain = queries(`${json}(c.*)`);
  const dynamic = queries('%1$s'); // no quote in these texts: safe inside '…'
  return `CREATE OR REPLACE FUNCTION ${n.captureSet}() RETURNS pg_catalog.trigger LANGUAGE plpgsql SECURITY DEFINER ${FUNCTION_SETTINGS} AS $fn$
DECLARE
  r record;
  news jsonb[] := '{}';
  olds jsonb[] := '{}';
  bytes bigint := 0;
  unsafe pg_catalog.name[];
  refused pg_catalog.name;
  obj pg_catalog.text;
  kept_for pg_catalog.text[];
BEGIN
  ${ownerCheckPlpgsql('row-changes capture')}
  ${decided(n)}
  IF obj IS NULL THEN
    ${byOperation((op) => plain[op])}
  ELSE
    ${byOperation((op) => `EXECUTE pg_catalog.format('${dynamic[op]}', obj)`)}
  END IF;
  IF pg_catalog.cardinality(news) OPERATOR(pg_catalog.>) 0 THEN PERFORM ${put}(TG_RELID, TG_OP, news, olds); END IF;
  RETURN NULL;
END $fn$`;
}

const TRANSITION_NEW = 'pg_actions_new';
const TRANSITION_OLD = 'pg_actions_old';
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

