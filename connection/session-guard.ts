/**
 * A step leaves no trace on its pooled session. A probe pipelined in the step's own round trip
 * (so it reads the same server session even behind a transaction-mode pooler) releases session
 * advisory locks and reports what a reset cannot undo: temp objects, prepared statements (and
 * whether pg-actions' own are all still there), role and session authorization. A session that
 * differs from how it started is discarded, never reused.
 *
 * Settings are reset, not read: no list of settings can be complete, and custom placeholders
 * (`app.tenant_id`, set with set_config() for row-level security) cannot even be listed. So a
 * committed step RESETs ALL settings, UNLISTENs and CLOSEs ALL cursors in its own transaction,
 * after the probe (written with the statement: no extra round trip), and sets pg-actions' own
 * session settings again; a failed step does the same in its error path. RESET ALL leaves role
 * and session authorization alone: the probe checks them. Each costs the server about 1 µs when
 * there is nothing to undo (RESET ALL only visits settings changed in the session), where reading
 * the settings cost 30 µs and a cursor or LISTEN check 2–4 µs each.
 *
 * A read-only step needs less: its transaction is rolled back, not committed (it has nothing to
 * keep), and a rollback undoes every setting, role, LISTEN and holdable cursor the statement
 * made, while a read-only transaction cannot create temp objects. Only what outlives a rollback
 * is probed there: session advisory locks (released) and prepared statements.
 */
import type pg from 'pg';

/** Named statements pg-actions parses once per connection (pooler 'none'): a step costs them a bind, not a parse and plan. */
export const NAME_PREFIX = 'pg_actions_';
const PROBE_NAME = `${NAME_PREFIX}session_probe`;
/** More prepared statements than pg-actions makes on one session (about a dozen): that session is not reused. */
const PROBE_ROW_LIMIT = 64;

/**
 * One read of the session's prepared statements (the view's function, not the view: no rewrite to
 * plan where the probe is parsed every time): how many were made with SQL PREPARE (in a function
 * or DO block too: from_sql), and how many of pg-actions' own are still there. pg-actions' own
 * are made with the protocol's Parse, so none of the user's can hide or stand in for them; a
 * statement can DEALLOCATE them (in a DO block too), and a later step would then fail at their
 * Bind, after its statement ran.
 */
const PREPARED = `(SELECT pg_catalog.count(*) FILTER (WHERE from_sql) AS from_sql,
    pg_catalog.count(*) FILTER (WHERE NOT from_sql AND pg_catalog.left(name, ${NAME_PREFIX.length}) OPERATOR(pg_catalog.=) '${NAME_PREFIX}') AS own
  FROM pg_catalog.pg_prepared_statement()) AS prepared`;

/**
 * One row: [advisory locks released (void), objects left ('t'/'f'), own statements, identity]. What
 * the reset written after it undoes (every setting, LISTEN, cursors) is not read. Catalog names and
 * operators are schema-qualified: the statement may have changed search_path (a named statement is
 * analysed again under the new one) or created look-alike temp objects, and an operator with an
 * exact signature anywhere on the path wins over pg_catalog's that needs a cast (REVIEW4 R44).
 */
export const SESSION_PROBE = `SELECT pg_catalog.pg_advisory_unlock_all() AS unlocked,
    (pg_catalog.pg_my_temp_schema() OPERATOR(pg_catalog.<>) 0 OR prepared.from_sql OPERATOR(pg_catalog.>) 0) AS objects,
  prepared.own::int AS own,
  pg_catalog.concat_ws(' ', current_user, session_user) AS settings
  FROM ${PREPARED}`;

/**
 * After a read-only step's rollback: what a rollback does not undo. A read-only transaction cannot
 * create temp objects, but a session that has some must not serve it (they shadow real tables).
 */
export const READ_ONLY_PROBE = `SELECT pg_catalog.pg_advisory_unlock_all() AS unlocked,
    (pg_catalog.pg_my_temp_schema() OPERATOR(pg_catalog.<>) 0 OR prepared.from_sql OPERATOR(pg_catalog.>) 0) AS objects, prepared.own::int AS own FROM ${PREPARED}`;

/**
 * A read-only step's probe on a session with pg-actions' named statements: unnamed, so parsed after
 * the statement and trusted (no statement can stand in for it, REVIEW3 R24), and one scan of the
 * prepared statements, a row each (at most PROBE_ROW_LIMIT), counted by the client (readProbeRow):
 * cheaper for the server than the named probe plus the unnamed forgery check it replaces (one scan
 * and one statement less: 14–28 µs of server CPU per step measured, docs/performance.md). Advisory locks
 * are released with the first row; no row at all means pg-actions' own statements are gone, and the
 * session is discarded (which releases them too).
 */
export const READ_ONLY_PROBE_ROWS = `SELECT pg_catalog.pg_advisory_unlock_all() AS unlocked, pg_catalog.pg_my_temp_schema() OPERATOR(pg_catalog.<>) 0 AS temp, p.from_sql, p.name
  FROM pg_catalog.pg_prepared_statement() p LIMIT ${PROBE_ROW_LIMIT}`;

/**
 * Written after a committed step's probe, in its transaction (or sent after a failed step): every
 * setting back to the session's start (custom placeholders included), no LISTEN, and no sequence
 * state (currval()/lastval() would give the next step, of any flow, this step's ids); `reapply` sets
 * pg-actions' own session settings again (output formats, limits).
 */
export function sessionReset(keep: boolean, reapply: readonly Sql[]): Sql[] {
  return [named(keep, 'reset_all', 'RESET ALL'), named(keep, 'unlisten_all', 'UNLISTEN *'), named(keep, 'close_all', 'CLOSE ALL'), named(keep, 'discard_sequences', 'DISCARD SEQUENCES'), ...reapply];
}

/**
 * Pools whose connections cannot keep a named statement from one transaction to the next (a
 * transaction-mode pooler without prepared-statement support, e.g. PgBouncer < 1.21): the probe
 * is sent unnamed there, parsed every time.
 */
const unnamedPools = new WeakSet<object>();

export type Sql = string | { text: string; name?: string };

/** Whether this pool's connections keep the statements pg-actions names (its own server sessions). */
export function keepsNamedStatements(pool: object): boolean {
  return !unnamedPools.has(pool);
}

/** `text` as a statement parsed once per connection (on sessions that keep them), else as plain SQL. */
export function named(keep: boolean, name: string, text: string): Sql {
  return keep ? { text, name: NAME_PREFIX + name } : text;
}

/**
 * Any named statement can be replaced by a statement that runs before its Bind (DEALLOCATE, then SQL
 * PREPARE of the same name, in a DO block): the named probe could read a forged clean session and
 * the named RESET ALL do nothing. Only text parsed after the step's statement can be trusted, so
 * this one is sent unnamed after the named probe, and its one row is what counts: whether any
 * statement made with SQL PREPARE is left (a replacement is one), and how many of pg-actions' own
 * (protocol-level, which SQL cannot make) are still there. A forged probe that DEALLOCATEs itself
 * while it runs leaves no SQL-prepared statement, but the real one it replaced is gone: `own` is
 * short of what pg-actions parsed (REVIEW4 R29). Either discards the session. The function, not
 * its view: the cheapest text to parse and plan every step.
 */
export const FORGERY_CHECK = `SELECT pg_catalog.count(*) FILTER (WHERE NOT p.from_sql AND pg_catalog.left(p.name, ${NAME_PREFIX.length}) OPERATOR(pg_catalog.=) '${NAME_PREFIX}') AS own,
  pg_catalog.bool_or(p.from_sql) AS forged FROM pg_catalog.pg_prepared_statement() p`;

/** The check's row (as text): its count of pg-actions' own statements, or undefined when something was forged. */
export function ownCountOf(checkRow: readonly (string | null)[]): number | undefined {
  return checkRow[1] === 't' ? undefined : Number(checkRow[0]);
}

export interface Probe {
  text: string;
  /** A row per prepared statement (READ_ONLY_PROBE_ROWS), read with readProbeRow(). */
  rows?: boolean;
  name?: string;
  /** Unnamed SQL written right after a named probe (FORGERY_CHECK): its row overrules the probe's. */
  check?: string;
}

export function probeFor(pool: object, readOnly = false): Probe {
  const text = readOnly ? READ_ONLY_PROBE : SESSION_PROBE;
  if (unnamedPools.has(pool)) return { text };
  return readOnly ? { text: READ_ONLY_PROBE_ROWS, rows: true } : { text, name: PROBE_NAME, check: FORGERY_CHECK };
}

/**
 * One of pg-actions' named statements was missing (26000) or already there (42P05): each transaction
 * may meet another server connection (an undeclared pooler), or a statement deallocated them. The
 * caller has checked that the failure was at the Bind of one of ours (not the user's statement,
 * whose error may name anything) and that the user's statement cannot have committed anything.
 * Use unnamed statements on this pool from now on.
 */
export function fallBackIfProbeMissing(pool: object, error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  if ((code !== '26000' && code !== '42P05') || !message?.includes(NAME_PREFIX)) return false;
  unnamedPools.add(pool);
  return true;
}

/**
 * Statements made with SQL PREPARE, deallocated one by one: DEALLOCATE ALL would also drop those a
 * pooler with prepared-statement support (PgBouncer >= 1.21) keeps for its clients.
 */
export const DEALLOCATE_SQL_PREPARED = `DO $pg_actions$ DECLARE s pg_catalog.text; BEGIN
  FOR s IN SELECT name FROM pg_catalog.pg_prepared_statements WHERE from_sql LOOP EXECUTE 'DEALLOCATE ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(s); END LOOP;
END $pg_actions$`;

/**
 * Behind a transaction-mode pooler the next transaction may run on another server connection, so
 * discarding ours after the fact cleans nothing: the step's own transaction undoes what any
 * statement can leave (written after it, before Sync; DISCARD ALL itself cannot run in a transaction).
 * These are cheap when there is nothing to undo; deallocating SQL-prepared statements is not (a DO
 * block, parsed and compiled every time: POOLER_CHECK decides whether it is needed).
 */
export const POOLER_SETTINGS_RESET = ['RESET ALL', 'RESET SESSION AUTHORIZATION', 'RESET ROLE', 'CLOSE ALL', 'UNLISTEN *', 'DISCARD TEMP', 'DISCARD SEQUENCES'] as const;

export const TRANSACTION_POOLER_RESET = [...POOLER_SETTINGS_RESET, 'SELECT pg_catalog.pg_advisory_unlock_all()', DEALLOCATE_SQL_PREPARED] as const;

/**
 * Written last in a step's explicit transaction behind a transaction pooler: releases session
 * advisory locks, and fails (invalid input for an integer) only when a statement made with SQL
 * PREPARE is on the server session. Then the transaction is left open (aborted) when the server
 * answers, so the pooler keeps the server connection linked, and the owner deallocates them
 * there (POOLER_PREPARED_RESET). The failing value is read from the function scan: the planner
 * cannot fold it into an error when there is none.
 */
export const POOLER_CHECK = `SELECT pg_catalog.pg_advisory_unlock_all(),
  (SELECT pg_catalog.concat('pg-actions: a prepared statement is left: ', name)::pg_catalog.int4 FROM pg_catalog.pg_prepared_statement() WHERE from_sql LIMIT 1)`;

/** After a failed POOLER_CHECK, in its aborted transaction (one simple query): roll back, release, deallocate. */
export const POOLER_PREPARED_RESET = ['ROLLBACK', 'SELECT pg_catalog.pg_advisory_unlock_all()', 'DISCARD SEQUENCES', DEALLOCATE_SQL_PREPARED].join('; ');

/** Switched off only by bench/, to measure what the guard costs a step. */
export const sessionGuard = { enabled: true };

export interface SessionReading {
  objects: boolean;
  /** How many of pg-actions' own named statements the session has. */
  own?: number;
  /** Absent after a read-only step: its rollback undid any change. */
  settings?: string;
  /** Rows read so far from a probe with a row per prepared statement. */
  rows?: number;
}

/** From the probe's row as text (a DataRow) or as parsed by pg (objects a boolean). */
export function readingOf(fields: readonly unknown[]): SessionReading {
  const objects = fields[1] === 't' || fields[1] === true;
  const own = fields[2] === undefined || fields[2] === null ? undefined : Number(fields[2]);
  if (fields.length < 4) return { objects, own };
  return { objects, own, settings: String(fields[3] ?? '') };
}

/** Adds one row of READ_ONLY_PROBE_ROWS (text fields) to the reading taken so far. */
export function readProbeRow(reading: SessionReading | undefined, fields: readonly (string | null)[]): SessionReading {
  const [, temp, fromSql, name] = fields;
  const next = reading ?? { objects: false, own: 0, rows: 0 };
  next.rows = (next.rows ?? 0) + 1;
  if (temp === 't' || fromSql === 't' || next.rows >= PROBE_ROW_LIMIT) next.objects = true;
  else if (name?.startsWith(NAME_PREFIX)) next.own = (next.own ?? 0) + 1;
  return next;
}

type Send = (sql: string) => Promise<unknown>;

/** Runs `setup` (fixed SQL) and the probe in one round trip; returns the probe's reading. */
export async function probeSession(send: Send, setup: readonly string[] = []): Promise<SessionReading> {
  const results = (await send([...setup, SESSION_PROBE].join('; '))) as { rows: Record<string, unknown>[] } | { rows: Record<string, unknown>[] }[];
  const last = Array.isArray(results) ? results[results.length - 1]! : results;
  const row = last.rows[0]!;
  return readingOf([row.unlocked, row.objects, row.own, row.settings]);
}

/** How each pooled session looked when it was first used, by pg-actions' own settings included. */
const baselines = new WeakMap<pg.PoolClient, string>();

export function baselineOf(client: pg.PoolClient): string | undefined {
  return baselines.get(client);
}

export function setBaseline(client: pg.PoolClient, reading: SessionReading): void {
  baselines.set(client, reading.settings ?? '');
}

/** Forget the baseline after pg-actions changed a setting itself (it is taken again next time). */
export function forgetBaseline(client: pg.PoolClient): void {
  baselines.delete(client);
}

/** Whether the session may go back to the pool. */
export function sessionUnchanged(client: pg.PoolClient, reading: SessionReading | undefined, ownStatements?: number): boolean {
  if (!sessionGuard.enabled) return true;
  if (!reading || reading.objects) return false;
  if (ownStatements !== undefined && reading.own !== undefined && reading.own !== ownStatements) return false;
  if (reading.settings === undefined) return true; // read-only step: rolled back
  const baseline = baselines.get(client);
  return baseline !== undefined && baseline === reading.settings;
}
