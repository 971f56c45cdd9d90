/**
 * The outbox shared by row-changes (prefix rc) and schema-changes' event-trigger mode (sc), in the
 * schema pgactions and named after the activation's fingerprint F (16 hex digits), so they are
 * found again and removed exactly:
 *   pgactions.P_F_outbox   one row per change, written in the user's transaction
 *   pgactions.P_F_cursor   exactly one row (unique key on `one`): stamp counter, acknowledged position, pruned position, epoch,
 *                          the subscribers' lease
 *   pgactions.P_F_read     acknowledge, stamp, prune and read in one call
 *   pg_actions_P_F         the NOTIFY channel that wakes subscribers.
 * What writes into the outbox is each trigger's own: capture-sql.ts, schema-events-sql.ts.
 *
 * Ordering: a change gets its position (pos) when the reader first sees it committed ("stamping",
 * under the cursor row's lock), never at write time. A transaction that commits late is stamped
 * after everything already read, so a cursor on pos never skips it. Within one stamping, changes
 * keep their write order (seq), so two changes of one row always arrive in the order they happened.
 * Only fixed text and identifiers made of [a-z0-9_] go into function bodies.
 */
import { quoteIdentifier } from '../connection/index.js';
import { holdersSql, type LockTarget } from '../connection/session.js';

export const SCHEMA = 'pgactions'; // (names starting with pg_ are reserved for system schemas)
/** Advisory lock class of earlier versions' DDL lock ('pgac'), still taken by a role that does not own the pgactions schema (activation-lock.ts). */
export const LOCK_CLASS = 0x70676163;
/** Takes our DDL lock ($1: LOCK_CLASS) for the transaction. */
export const ADVISORY_LOCK_SQL = 'SELECT pg_catalog.pg_advisory_xact_lock($1::pg_catalog.int4, 0)';
/** That lock, as LOCK_NOT_AVAILABLE names it when another session holds it too long. */
export const ADVISORY_LOCK: LockTarget = {
  what: "pg-actions' advisory activation lock (another activation or deactivation of row-changes or schema-changes in this database is running, or a session holds the advisory lock)",
  holders: holdersSql(
    `l.locktype OPERATOR(pg_catalog.=) 'advisory'::pg_catalog.text AND l.classid OPERATOR(pg_catalog.=) '${LOCK_CLASS}'::pg_catalog.oid AND l.objid OPERATOR(pg_catalog.=) '0'::pg_catalog.oid`,
  ),
};
/** Also takes pg-actions' activation lock (activation-lock.ts). */
export const SCHEMA_COMMENT = `COMMENT ON SCHEMA ${quoteIdentifier(SCHEMA)} IS 'pg-actions: objects installed by triggers (row-changes); removed by deactivateTrigger'`;
const OWNER_TAG = 'pg-actions';

/** rc: row-changes; sc: schema-changes (event-trigger mode), which uses the outbox and cursor parts only. */
export type OutboxPrefix = 'rc' | 'sc';

export interface OutboxNames {
  fingerprint: string;
  prefix: OutboxPrefix;
  schema: string;
  outbox: string;
  cursor: string;
  tables: string;
  capture: string;
  captureSet: string;
  read: string;
  /** Trigger name on each watched table, and the NOTIFY channel. */
  trigger: string;
}

export function namesOf(fingerprint: string, prefix: OutboxPrefix = 'rc'): OutboxNames {
  if (!/^[0-9a-f]{16}$/.test(fingerprint)) throw new Error(`bad fingerprint ${fingerprint}`);
  const q = (name: string) => `${quoteIdentifier(SCHEMA)}.${quoteIdentifier(`${prefix}_${fingerprint}_${name}`)}`;
  return {
    fingerprint,
    prefix,
    schema: quoteIdentifier(SCHEMA),
    outbox: q('outbox'),
    cursor: q('cursor'),
    tables: q('tables'),
    capture: q('capture'),
    captureSet: q('capture_set'),
    read: q('read'),
    trigger: `pg_actions_${prefix}_${fingerprint}`,
  };
}

/**
 * The outbox, its cursor and the read function (acknowledge, stamp, prune, read): shared by
 * row-changes and schema-changes' event-trigger mode. `tag` is the owner tag as SQL literal text.
 */
export function outboxStatements(n: OutboxNames, tag: string): string[] {
  const index = (suffix: string) => quoteIdentifier(`${n.prefix}_${n.fingerprint}_${suffix}`);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${n.schema}`,
    SCHEMA_COMMENT,
    `CREATE TABLE IF NOT EXISTS ${n.outbox} (
       seq bigserial PRIMARY KEY, pos bigint, stamped_at pg_catalog.timestamptz,
       op pg_catalog.text NOT NULL, schema_name pg_catalog.text NOT NULL, table_name pg_catalog.text NOT NULL,
       key pg_catalog.jsonb, new pg_catalog.jsonb, old pg_catalog.jsonb, written_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp())`,
    whenMissing(indexMissing(n, 'pos'), `CREATE UNIQUE INDEX IF NOT EXISTS ${index('pos')} ON ${n.outbox} (pos)`),
    whenMissing(indexMissing(n, 'unstamped'), `CREATE INDEX IF NOT EXISTS ${index('unstamped')} ON ${n.outbox} (seq) WHERE pos IS NULL`),
    `CREATE TABLE IF NOT EXISTS ${n.cursor} (
       stamped bigint NOT NULL DEFAULT 0, acked bigint NOT NULL DEFAULT 0, pruned bigint NOT NULL DEFAULT 0,
       epoch pg_catalog.text NOT NULL DEFAULT pg_catalog.substr(pg_catalog.md5(pg_catalog.random()::pg_catalog.text OPERATOR(pg_catalog.||) pg_catalog.clock_timestamp()::pg_catalog.text), 1, 12))`,
    leaseColumnsStatement(n),
    // One cursor row, enforced by a unique key on a column that can only be true. Installs made
    // before that key existed may hold several rows (one per activation): keep the one in use.
    whenMissing(columnsMissing(n, ['one']), `ALTER TABLE ${n.cursor} ADD COLUMN IF NOT EXISTS one boolean NOT NULL DEFAULT true CHECK (one)`),
    whenMissing(indexMissing(n, 'cursor_one'), `DELETE FROM ${n.cursor} AS k WHERE EXISTS (SELECT 1 FROM ${n.cursor} AS j WHERE ROW(j.stamped, j.acked, j.ctid) OPERATOR(pg_catalog.>) ROW(k.stamped, k.acked, k.ctid))`),
    whenMissing(indexMissing(n, 'cursor_one'), `CREATE UNIQUE INDEX IF NOT EXISTS ${index('cursor_one')} ON ${n.cursor} (one)`),
    // A replica identity, so the cursor's UPDATEs still work once a publication FOR ALL TABLES is
    // created after activation (the other tables have primary keys): outbox-publications.ts.
    whenMissing(`NOT EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) '${n.cursor}'::pg_catalog.regclass AND i.indisreplident
        AND i.indexrelid OPERATOR(pg_catalog.=) '${n.schema}.${index('cursor_one')}'::pg_catalog.regclass)`,
      `ALTER TABLE ${n.cursor} REPLICA IDENTITY USING INDEX ${index('cursor_one')}`),
    `INSERT INTO ${n.cursor} (stamped) SELECT 0 WHERE NOT EXISTS (SELECT FROM ${n.cursor})`,
    readFunctionStatement(n),
    ...[n.outbox, n.cursor].map((table) => tableComment(table, tag)),
    ...readFunctionGrants(n, tag),
  ];
}

/** The owner tag on a table, set only when it differs (COMMENT takes SHARE UPDATE EXCLUSIVE, which waits for a VACUUM). */
export function tableComment(table: string, tag: string): string {
  return whenMissing(`coalesce(pg_catalog.obj_description('${table}'::pg_catalog.regclass, 'pg_class') OPERATOR(pg_catalog.<>) ${tag}, true)`, `COMMENT ON TABLE ${table} IS ${tag}`);
}

/**
 * `ddl` only when `missing` (an SQL condition) holds: activating again changes nothing that is
 * there, so it takes no lock it does not need (ALTER TABLE's ACCESS EXCLUSIVE, CREATE INDEX's SHARE
 * lock even with IF NOT EXISTS, which would stall every writer behind it: REVIEW9 R158). Activations
 * are serialised by pg-actions' activation lock, so nothing changes between the check and the DDL.
 */
function whenMissing(missing: string, ddl: string): string {
  return `DO $when$ BEGIN IF ${missing} THEN EXECUTE $ddl$${ddl}$ddl$; END IF; END $when$`;
}
function indexMissing(n: OutboxNames, suffix: string): string {
  return `pg_catalog.to_regclass('${n.schema}.${quoteIdentifier(`${n.prefix}_${n.fingerprint}_${suffix}`)}') IS NULL`;
}
function columnsMissing(n: OutboxNames, columns: readonly string[]): string {
  return `(SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) '${n.cursor}'::pg_catalog.regclass
      AND a.attname OPERATOR(pg_catalog.=) ANY ('{${columns.join(',')}}'::pg_catalog.name[]) AND NOT a.attisdropped) OPERATOR(pg_catalog.<) ${columns.length}`;
}

/**
 * The subscriber lease (outbox-subscription.ts), in the cursor row: only roles with rights on
 * pg-actions' tables can take it (an advisory lock's key, computable from names anyone reads in
 * pg_class, let any role hold it: REVIEW7 R137). `leader` is the holder's random id, leader_pid and
 * leader_started its LISTEN session's backend (a standby takes over at once when that backend is
 * gone), lease_until when it lapses unless renewed (a holder that vanished without its backend
 * ending, e.g. behind a session-mode pooler, or that stopped renewing).
 */
function leaseColumnsStatement(n: OutboxNames): string {
  return whenMissing(columnsMissing(n, ['leader', 'leader_pid', 'leader_started', 'lease_until']), `ALTER TABLE ${n.cursor} ADD COLUMN IF NOT EXISTS leader pg_catalog.text, ADD COLUMN IF NOT EXISTS leader_pid integer,
     ADD COLUMN IF NOT EXISTS leader_started pg_catalog.timestamptz, ADD COLUMN IF NOT EXISTS lease_until pg_catalog.timestamptz`);
}

/** SQLSTATE of a shared read refused because another subscriber holds the lease. */
export const LEASE_LOST_SQLSTATE = 'PGAL1';

function readFunctionStatement(n: OutboxNames): string {
  return `CREATE OR REPLACE FUNCTION ${n.read}(after bigint, batch integer, retention interval, shared boolean)
RETURNS TABLE (pos bigint, seq bigint, op pg_catalog.text, schema_name pg_catalog.text, table_name pg_catalog.text, key pg_catalog.jsonb, new pg_catalog.jsonb, old pg_catalog.jsonb,
               written_at pg_catalog.timestamptz, epoch pg_catalog.text, gap bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
  c record;
  stamped_now bigint;
  pruned_through bigint;
  me text;
BEGIN
  -- The caller has handled everything up to "after": acknowledge it. The row lock serialises readers.
  UPDATE ${n.cursor} AS k SET acked = greatest(k.acked, after) RETURNING k.* INTO c;
  IF shared THEN
    -- A subscriber reads (and acknowledges) only while it holds the lease, checked under the row lock: one that lost it
    -- without noticing (lapsed, taken over) is refused, the whole call undone. One of an older version (no id) is
    -- refused while a lease is live.
    me := nullif(current_setting('pgactions.leader', true), '');
    IF (me IS NOT NULL AND c.leader IS DISTINCT FROM me) OR (me IS NULL AND c.leader IS NOT NULL AND c.lease_until > clock_timestamp()) THEN
      RAISE EXCEPTION USING ERRCODE = '${LEASE_LOST_SQLSTATE}', MESSAGE = 'pg-actions: another subscriber of this activation holds its lease, so this one does not read';
    END IF;
    after := greatest(after, c.acked);
  END IF;
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
END $fn$`;
}

function readFunctionGrants(n: OutboxNames, tag: string): string[] {
  return [
    `COMMENT ON FUNCTION ${n.read}(bigint, integer, interval, boolean) IS ${tag}`,
    `REVOKE ALL ON FUNCTION ${n.read}(bigint, integer, interval, boolean) FROM PUBLIC`,
  ];
}

/**
 * What an activation made by an older version lacks for the lease: its columns, and the read
 * function that refuses a subscriber not holding it (a subscriber adds them before it leads).
 */
export function leaseUpgradeStatements(n: OutboxNames, tag: string): string[] {
  return [leaseColumnsStatement(n), readFunctionStatement(n), ...readFunctionGrants(n, tag)];
}

/** $1: the subscriber's id, $2: the lease's length in seconds. Returns a row when the caller holds the lease. */
export function takeLeaseSql(n: OutboxNames): string {
  return `UPDATE ${n.cursor} AS k SET leader = $1::pg_catalog.text, leader_pid = pg_catalog.pg_backend_pid(),
       leader_started = (SELECT a.backend_start FROM pg_catalog.pg_stat_activity a WHERE a.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()),
       lease_until = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $2::pg_catalog.float8)
 WHERE k.leader IS NULL OR k.leader OPERATOR(pg_catalog.=) $1::pg_catalog.text OR k.lease_until IS NULL
    OR k.lease_until OPERATOR(pg_catalog.<) pg_catalog.clock_timestamp()
    OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid OPERATOR(pg_catalog.=) k.leader_pid
                    AND (a.backend_start IS NULL OR a.backend_start OPERATOR(pg_catalog.=) k.leader_started))
RETURNING true AS held`;
}

/** Extends the caller's lease ($1 its id, $2 seconds); no row when it is no longer the holder. */
export function renewLeaseSql(n: OutboxNames): string {
  return `UPDATE ${n.cursor} AS k SET lease_until = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $2::pg_catalog.float8)
 WHERE k.leader OPERATOR(pg_catalog.=) $1::pg_catalog.text RETURNING true AS held`;
}

/** Gives the lease up ($1 the holder's id): a standby takes over at its next attempt. */
export function releaseLeaseSql(n: OutboxNames): string {
  return `UPDATE ${n.cursor} AS k SET leader = NULL, leader_pid = NULL, leader_started = NULL, lease_until = NULL WHERE k.leader OPERATOR(pg_catalog.=) $1::pg_catalog.text`;
}

/** The owner tag's SQL LIKE pattern, and the tag of one activation. */
export const OWNER_TAG_PATTERN = `${OWNER_TAG} row-changes %`;
export function ownerTag(fingerprint: string, trigger: 'row-changes' | 'schema-changes' = 'row-changes'): string {
  return `${OWNER_TAG} ${trigger} ${fingerprint}`;
}

/**
 * Subscribers read the outbox every intervalSeconds anyway: the NOTIFY only wakes them sooner, so it
 * never fails a write. Not when the queue is half full (REVIEW12 R180: any role can fill the cluster's
 * queue by holding a LISTEN session in an open transaction; a full queue fails every COMMIT that
 * notifies), and not in a session that set pg_actions.notify to off (R192: PostgreSQL refuses to
 * PREPARE TRANSACTION after a NOTIFY, so two-phase-commit writers turn it off).
 */
export const wakeSubscribers = (channel: string, when: string) =>
  `IF ${when} AND pg_notification_queue_usage() < 0.5 AND current_setting('pg_actions.notify', true) IS DISTINCT FROM 'off' THEN
    PERFORM pg_notify('${channel}', '');
  END IF;`;
