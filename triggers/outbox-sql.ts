/**
 * The objects row-changes installs, all in the schema pgactions and named after the
 * activation's fingerprint F (16 hex digits), so they are found again and removed exactly:
 *   pgactions.rc_F_outbox   one row per change, written in the user's transaction
 *   pgactions.rc_F_cursor   exactly one row (unique key on `one`): stamp counter, acknowledged position, pruned position, epoch
 *   pgactions.rc_F_tables   watched tables and their primary-key columns (bound values, no SQL text)
 *   pgactions.rc_F_capture  the trigger function (SECURITY DEFINER: writers need no rights on pgactions)
 *   pgactions.rc_F_read     acknowledge, stamp, prune and read in one call
 *   trigger pg_actions_rc_F  on each watched table; its name is also the NOTIFY channel.
 *
 * Ordering: a change gets its position (pos) when the reader first sees it committed ("stamping",
 * under the cursor row's lock), never at write time. A transaction that commits late is stamped
 * after everything already read, so a cursor on pos never skips it. Within one stamping, changes
 * keep their write order (seq), so two changes of one row always arrive in the order they happened.
 * Only fixed text and identifiers made of [a-z0-9_] go into function bodies.
 */
import { quoteIdentifier } from '../connection/index.js';

export const SCHEMA = 'pgactions'; // (names starting with pg_ are reserved for system schemas)
/** Advisory lock class for our DDL and for the subscriber lease ('pgac'). */
export const LOCK_CLASS = 0x70676163;
const OWNER_TAG = 'pg-actions row-changes';

export interface OutboxNames {
  fingerprint: string;
  schema: string;
  outbox: string;
  cursor: string;
  tables: string;
  capture: string;
  read: string;
  /** Trigger name on each watched table, and the NOTIFY channel. */
  trigger: string;
}

export function namesOf(fingerprint: string): OutboxNames {
  if (!/^[0-9a-f]{16}$/.test(fingerprint)) throw new Error(`bad fingerprint ${fingerprint}`);
  const q = (name: string) => `${quoteIdentifier(SCHEMA)}.${quoteIdentifier(`rc_${fingerprint}_${name}`)}`;
  return {
    fingerprint,
    schema: quoteIdentifier(SCHEMA),
    outbox: q('outbox'),
    cursor: q('cursor'),
    tables: q('tables'),
    capture: q('capture'),
    read: q('read'),
    trigger: `pg_actions_rc_${fingerprint}`,
  };
}

export function lockKey(fingerprint: string): [number, number] {
  return [LOCK_CLASS, Number.parseInt(fingerprint.slice(0, 8), 16) | 0];
}

/** Creates (idempotently) everything but the per-table triggers. */
export function installStatements(n: OutboxNames): string[] {
  const tag = `'${OWNER_TAG} ${n.fingerprint}'`; // fingerprint is [0-9a-f]{16}: safe as literal text
  return [
    `CREATE SCHEMA IF NOT EXISTS ${n.schema}`,
    `COMMENT ON SCHEMA ${n.schema} IS 'pg-actions: objects installed by triggers (row-changes); removed by deactivateTrigger'`,
    `CREATE TABLE IF NOT EXISTS ${n.outbox} (
       seq bigserial PRIMARY KEY, pos bigint, stamped_at timestamptz,
       op text NOT NULL, schema_name text NOT NULL, table_name text NOT NULL,
       key jsonb, new jsonb, old jsonb, written_at timestamptz NOT NULL DEFAULT clock_timestamp())`,
    `CREATE UNIQUE INDEX IF NOT EXISTS ${quoteIdentifier(`rc_${n.fingerprint}_pos`)} ON ${n.outbox} (pos)`,
    `CREATE INDEX IF NOT EXISTS ${quoteIdentifier(`rc_${n.fingerprint}_unstamped`)} ON ${n.outbox} (seq) WHERE pos IS NULL`,
    `CREATE TABLE IF NOT EXISTS ${n.cursor} (
       stamped bigint NOT NULL DEFAULT 0, acked bigint NOT NULL DEFAULT 0, pruned bigint NOT NULL DEFAULT 0,
       epoch text NOT NULL DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 12))`,
    // One cursor row, enforced by a unique key on a column that can only be true. Installs made
    // before that key existed may hold several rows (one per activation): keep the one in use.
    `ALTER TABLE ${n.cursor} ADD COLUMN IF NOT EXISTS one boolean NOT NULL DEFAULT true CHECK (one)`,
    `DELETE FROM ${n.cursor} AS k WHERE EXISTS (SELECT 1 FROM ${n.cursor} AS j WHERE (j.stamped, j.acked, j.ctid) > (k.stamped, k.acked, k.ctid))`,
    `CREATE UNIQUE INDEX IF NOT EXISTS ${quoteIdentifier(`rc_${n.fingerprint}_cursor_one`)} ON ${n.cursor} (one)`,
    `INSERT INTO ${n.cursor} DEFAULT VALUES ON CONFLICT (one) DO NOTHING`,
    `CREATE TABLE IF NOT EXISTS ${n.tables} (relid oid PRIMARY KEY, key_columns text[])`,
    `CREATE OR REPLACE FUNCTION ${n.capture}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  key_columns text[];
  watched oid;
  watched_schema text;
  watched_name text;
  row_new jsonb;
  row_old jsonb;
BEGIN
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
    `CREATE OR REPLACE FUNCTION ${n.read}(after bigint, batch integer, retention interval, shared boolean)
RETURNS TABLE (pos bigint, seq bigint, op text, schema_name text, table_name text, key jsonb, new jsonb, old jsonb,
               written_at timestamptz, epoch text, gap bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
  c record;
  stamped_now bigint;
  pruned_through bigint;
BEGIN
  -- The caller has handled everything up to "after": acknowledge it. The row lock serialises readers.
  UPDATE ${n.cursor} AS k SET acked = greatest(k.acked, after) RETURNING k.* INTO c;
  IF shared THEN after := greatest(after, c.acked); END IF;
  IF after < c.pruned THEN
    RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::jsonb, NULL::jsonb, NULL::jsonb,
                        NULL::timestamptz, c.epoch, c.pruned;
    RETURN;
  END IF;
  WITH fresh AS (SELECT o.seq, row_number() OVER (ORDER BY o.seq) AS rn FROM ${n.outbox} AS o WHERE o.pos IS NULL ORDER BY o.seq LIMIT 100000)
  UPDATE ${n.outbox} AS o SET pos = c.stamped + fresh.rn, stamped_at = now() FROM fresh WHERE o.seq = fresh.seq;
  GET DIAGNOSTICS stamped_now = ROW_COUNT;
  WITH gone AS (DELETE FROM ${n.outbox} AS o WHERE o.pos <= c.acked AND o.stamped_at < now() - retention RETURNING o.pos)
  SELECT max(gone.pos) INTO pruned_through FROM gone;
  UPDATE ${n.cursor} AS k SET stamped = k.stamped + stamped_now, pruned = greatest(k.pruned, coalesce(pruned_through, 0))
   WHERE stamped_now > 0 OR pruned_through IS NOT NULL;
  RETURN QUERY SELECT o.pos, o.seq, o.op, o.schema_name, o.table_name, o.key, o.new, o.old, o.written_at, c.epoch, NULL::bigint
    FROM ${n.outbox} AS o WHERE o.pos > after ORDER BY o.pos LIMIT batch;
END $fn$`,
    ...[n.outbox, n.cursor, n.tables].map((table) => `COMMENT ON TABLE ${table} IS ${tag}`),
    `COMMENT ON FUNCTION ${n.capture}() IS ${tag}`,
    `COMMENT ON FUNCTION ${n.read}(bigint, integer, interval, boolean) IS ${tag}`,
    `REVOKE ALL ON FUNCTION ${n.read}(bigint, integer, interval, boolean) FROM PUBLIC`,
    // Triggers fire without an EXECUTE check; nobody needs to call the SECURITY DEFINER function.
    `REVOKE ALL ON FUNCTION ${n.capture}() FROM PUBLIC`,
  ];
}

export function createTriggerStatement(n: OutboxNames, table: string, operations: readonly string[]): string {
  const events = operations.map((op) => ({ INSERT: 'INSERT', UPDATE: 'UPDATE', DELETE: 'DELETE' })[op]!).join(' OR ');
  return `CREATE TRIGGER ${quoteIdentifier(n.trigger)} AFTER ${events} ON ${table} FOR EACH ROW EXECUTE PROCEDURE ${n.capture}()`;
}

/** The owner tag's SQL LIKE pattern, and the tag of one activation. */
export const OWNER_TAG_PATTERN = `${OWNER_TAG} %`;
export function ownerTag(fingerprint: string): string {
  return `${OWNER_TAG} ${fingerprint}`;
}
