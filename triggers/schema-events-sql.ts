/**
 * What schema-changes installs in event-trigger mode, around the shared outbox (outbox-sql.ts,
 * prefix sc), all named after the activation's fingerprint F:
 *   pgactions.sc_F_watch    the watched schemas (bound values, no SQL text)
 *   pgactions.sc_F_known    each watched table's schema, name and columns as last seen: what an
 *                           ALTER changed from, and what a DROP removed (the catalog no longer has it)
 *   pgactions.sc_F_on_ddl   ddl_command_end: tables created, altered (columns, rename, moved) → outbox
 *   pgactions.sc_F_on_drop  sql_drop: tables dropped → outbox
 *   event triggers pg_actions_sc_F_ddl and pg_actions_sc_F_drop calling them (superuser only).
 * The functions are SECURITY DEFINER (whoever runs DDL needs no rights on pgactions) and write in
 * the DDL's own transaction: a rolled-back CREATE TABLE leaves no event. Only fixed text and
 * identifiers made of [a-z0-9_] go into function bodies.
 */
import { quoteIdentifier } from '../connection/index.js';
import { namesOf, outboxStatements, ownerTag, SCHEMA, wakeSubscribers, type OutboxNames } from './outbox-sql.js';
import { ownerCheckPlpgsql } from './schema-owner.js';

export interface SchemaEventNames extends OutboxNames {
  watch: string;
  known: string;
  onDdl: string;
  onDrop: string;
  /** Event trigger names (database-wide, not in a schema). */
  ddlTrigger: string;
  dropTrigger: string;
}

export function schemaEventNames(fingerprint: string): SchemaEventNames {
  const outbox = namesOf(fingerprint, 'sc');
  const q = (name: string) => `${quoteIdentifier(SCHEMA)}.${quoteIdentifier(`sc_${fingerprint}_${name}`)}`;
  return {
    ...outbox,
    watch: q('watch'),
    known: q('known'),
    onDdl: q('on_ddl'),
    onDrop: q('on_drop'),
    ddlTrigger: `${outbox.trigger}_ddl`,
    dropTrigger: `${outbox.trigger}_drop`,
  };
}

/** A relation's columns as the event shows them: [{ name, type }] in column order. */
const COLUMNS_OF = (relid: string) => `coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('name', a.attname::pg_catalog.text, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
       FROM pg_catalog.pg_attribute AS a WHERE a.attrelid OPERATOR(pg_catalog.=) ${relid} AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped), '[]'::pg_catalog.jsonb)`;

/** Watched tables now, from the catalog: the starting point of sc_F_known ($1: the schemas). */
export function knownSnapshotStatement(n: SchemaEventNames): string {
  return `INSERT INTO ${n.known} (relid, schema_name, table_name, columns)
SELECT c.oid, ns.nspname, c.relname, ${COLUMNS_OF('c.oid')}
  FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS ns ON ns.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog."char"[]) AND ns.nspname::pg_catalog.text OPERATOR(pg_catalog.=) ANY (SELECT w.schema_name FROM ${n.watch} AS w)
ON CONFLICT (relid) DO NOTHING`;
}

/**
 * Our own tables gone (dropped by hand): the user's DDL must not fail because of it. It goes
 * through unrecorded, with a warning; listActivations shows the activation as incomplete.
 */
const DAMAGED = (n: SchemaEventNames) => `EXCEPTION WHEN undefined_table THEN
  RAISE WARNING 'pg-actions schema-changes ${n.fingerprint}: its tables are missing, so this DDL was not recorded (remove the activation with removeActivation and activate again)';`;

export function schemaEventStatements(n: SchemaEventNames): string[] {
  const tag = `'${ownerTag(n.fingerprint, 'schema-changes')}'`; // fingerprint is [0-9a-f]{16}: safe as literal text
  return [
    ...outboxStatements(n, tag),
    `CREATE TABLE IF NOT EXISTS ${n.watch} (schema_name pg_catalog.text PRIMARY KEY)`,
    `CREATE TABLE IF NOT EXISTS ${n.known} (relid pg_catalog.oid PRIMARY KEY, schema_name pg_catalog.text NOT NULL, table_name pg_catalog.text NOT NULL, columns pg_catalog.jsonb NOT NULL)`,
    `CREATE OR REPLACE FUNCTION ${n.onDdl}() RETURNS pg_catalog.event_trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r record;
  was record;
  changed boolean := false;
BEGIN
  ${ownerCheckPlpgsql('schema-changes')}
  FOR r IN
    SELECT c.oid AS relid, ns.nspname::pg_catalog.text AS schema_name, c.relname::pg_catalog.text AS table_name, ${COLUMNS_OF('c.oid')} AS columns,
           c.relkind IN ('r', 'p') AND ns.nspname IN (SELECT w.schema_name FROM ${n.watch} AS w) AS watched
      FROM (SELECT DISTINCT d.objid FROM pg_event_trigger_ddl_commands() AS d WHERE d.classid = 'pg_class'::pg_catalog.regclass) AS d
      JOIN pg_class AS c ON c.oid = d.objid JOIN pg_namespace AS ns ON ns.oid = c.relnamespace
     ORDER BY c.oid
  LOOP
    SELECT k.schema_name, k.table_name, k.columns INTO was FROM ${n.known} AS k WHERE k.relid = r.relid;
    IF NOT FOUND THEN
      CONTINUE WHEN NOT r.watched;
      INSERT INTO ${n.outbox} (op, schema_name, table_name, new) VALUES ('CREATE_TABLE', r.schema_name, r.table_name, r.columns);
      INSERT INTO ${n.known} (relid, schema_name, table_name, columns) VALUES (r.relid, r.schema_name, r.table_name, r.columns);
    ELSIF NOT r.watched THEN
      -- Moved out of the watched schemas: gone from them, as a drop is.
      INSERT INTO ${n.outbox} (op, schema_name, table_name, new) VALUES ('DROP_TABLE', was.schema_name, was.table_name, was.columns);
      DELETE FROM ${n.known} AS k WHERE k.relid = r.relid;
    ELSIF (was.schema_name, was.table_name, was.columns) IS DISTINCT FROM (r.schema_name, r.table_name, r.columns) THEN
      INSERT INTO ${n.outbox} (op, schema_name, table_name, new, old) VALUES ('ALTER_TABLE', r.schema_name, r.table_name, r.columns, was.columns);
      UPDATE ${n.known} AS k SET schema_name = r.schema_name, table_name = r.table_name, columns = r.columns WHERE k.relid = r.relid;
    ELSE
      CONTINUE;
    END IF;
    changed := true;
  END LOOP;
  ${wakeSubscribers(n.trigger, 'changed')}
${DAMAGED(n)}
END $fn$`,
    `CREATE OR REPLACE FUNCTION ${n.onDrop}() RETURNS pg_catalog.event_trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r record;
  changed boolean := false;
BEGIN
  ${ownerCheckPlpgsql('schema-changes')}
  FOR r IN
    SELECT k.relid, k.schema_name, k.table_name, k.columns
      FROM pg_event_trigger_dropped_objects() AS d JOIN ${n.known} AS k ON k.relid = d.objid
     WHERE d.classid = 'pg_class'::pg_catalog.regclass AND d.objsubid = 0
     ORDER BY k.relid
  LOOP
    INSERT INTO ${n.outbox} (op, schema_name, table_name, new) VALUES ('DROP_TABLE', r.schema_name, r.table_name, r.columns);
    DELETE FROM ${n.known} AS k WHERE k.relid = r.relid;
    changed := true;
  END LOOP;
  ${wakeSubscribers(n.trigger, 'changed')}
${DAMAGED(n)}
END $fn$`,
    ...[n.watch, n.known].map((table) => `COMMENT ON TABLE ${table} IS ${tag}`),
    ...[n.onDdl, n.onDrop].map((fn) => `COMMENT ON FUNCTION ${fn}() IS ${tag}`),
    ...[n.onDdl, n.onDrop].map((fn) => `REVOKE ALL ON FUNCTION ${fn}() FROM PUBLIC`),
    `DROP EVENT TRIGGER IF EXISTS ${quoteIdentifier(n.ddlTrigger)}`,
    `CREATE EVENT TRIGGER ${quoteIdentifier(n.ddlTrigger)} ON ddl_command_end EXECUTE PROCEDURE ${n.onDdl}()`,
    `DROP EVENT TRIGGER IF EXISTS ${quoteIdentifier(n.dropTrigger)}`,
    `CREATE EVENT TRIGGER ${quoteIdentifier(n.dropTrigger)} ON sql_drop EXECUTE PROCEDURE ${n.onDrop}()`,
    `COMMENT ON EVENT TRIGGER ${quoteIdentifier(n.ddlTrigger)} IS ${tag}`,
    `COMMENT ON EVENT TRIGGER ${quoteIdentifier(n.dropTrigger)} IS ${tag}`,
  ];
}

/** Removes exactly this activation's objects (event triggers first, so dropping the rest records nothing). */
export function schemaEventRemovals(n: SchemaEventNames): string[] {
  return [
    `DROP EVENT TRIGGER IF EXISTS ${quoteIdentifier(n.ddlTrigger)}`,
    `DROP EVENT TRIGGER IF EXISTS ${quoteIdentifier(n.dropTrigger)}`,
    `DROP FUNCTION IF EXISTS ${n.onDdl}()`,
    `DROP FUNCTION IF EXISTS ${n.onDrop}()`,
    `DROP FUNCTION IF EXISTS ${n.read}(bigint, integer, interval, boolean)`,
    `DROP TABLE IF EXISTS ${n.outbox}, ${n.cursor}, ${n.watch}, ${n.known}`,
  ];
}
