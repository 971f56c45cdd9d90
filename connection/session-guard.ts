/**
 * A step leaves no trace on its pooled session. A probe pipelined in the step's own round trip
 * and transaction (so it reads the same server session even behind a transaction-mode pooler)
 * releases session advisory locks and reports what else a statement can leave behind: temp
 * objects, prepared statements, holdable cursors, LISTENs, and the settings that change what
 * later statements see or may do (role, search_path, float digits…). Whatever a statement did
 * (SET, set_config() in a function, EXECUTE 'SET ROLE …' in a DO block), the probe sees the
 * result. A session that differs from how it started is discarded, never reused.
 * statement_timeout is not watched: every step sets its own, local to its transaction.
 */
import type pg from 'pg';

/** Settings that alter results, rights, limits or behaviour of a later statement on the session. */
const WATCHED_SETTINGS = [
  'search_path', 'extra_float_digits', 'bytea_output', 'DateStyle', 'IntervalStyle', 'TimeZone', 'lc_monetary',
  'lc_numeric', 'lc_time', 'standard_conforming_strings', 'xmloption', 'xmlbinary', 'array_nulls', 'transform_null_equals',
  'default_text_search_config', 'session_replication_role', 'row_security', 'lock_timeout',
  'idle_in_transaction_session_timeout', 'transaction_timeout', 'default_transaction_read_only',
  'default_transaction_isolation', 'default_transaction_deferrable', 'synchronous_commit', 'client_min_messages',
  'temp_tablespaces', 'default_tablespace', 'check_function_bodies', 'work_mem', 'maintenance_work_mem',
  'temp_file_limit', 'plan_cache_mode', 'jit', 'enable_seqscan', 'enable_indexscan',
  'max_parallel_workers_per_gather', 'application_name', 'client_encoding',
] as const;

/** The probe is a named statement, parsed once per connection: it costs a step a bind, not a parse and plan. */
const PROBE_NAME = 'pg_actions_session_probe';

/**
 * One row: [advisory locks released (void), objects left ('t'/'f'), identity and settings]. Catalog names are
 * schema-qualified: the statement may have changed search_path or created look-alike temp objects.
 * current_setting(…, true) is NULL for a setting this server version does not have.
 */
export const SESSION_PROBE = `SELECT pg_catalog.pg_advisory_unlock_all() AS unlocked,
    (pg_catalog.pg_my_temp_schema() <> 0
         OR EXISTS (SELECT FROM pg_catalog.pg_prepared_statements WHERE name <> '${PROBE_NAME}')
         OR EXISTS (SELECT FROM pg_catalog.pg_cursors WHERE is_holdable)
         OR EXISTS (SELECT FROM pg_catalog.pg_listening_channels())) AS objects,
  pg_catalog.concat_ws(e'\\x1f', current_user, session_user, ${WATCHED_SETTINGS.map((name) => `pg_catalog.current_setting('${name}', true)`).join(', ')}) AS settings`;

/**
 * Pools whose connections cannot keep a named statement from one transaction to the next (a
 * transaction-mode pooler without prepared-statement support, e.g. PgBouncer < 1.21): the probe
 * is sent unnamed there, parsed every time.
 */
const unnamedPools = new WeakSet<object>();

export function probeFor(pool: object): { text: string; name?: string } {
  return unnamedPools.has(pool) ? { text: SESSION_PROBE } : { text: SESSION_PROBE, name: PROBE_NAME };
}

/**
 * The named probe was missing (26000) or already there (42P05): each transaction may meet another
 * server connection. Use the unnamed probe on this pool from now on.
 */
export function fallBackIfProbeMissing(pool: object, error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  if ((code !== '26000' && code !== '42P05') || !message?.includes(PROBE_NAME)) return false;
  unnamedPools.add(pool);
  return true;
}

/**
 * Behind a transaction-mode pooler the next transaction may run on another server connection, so
 * discarding ours after the fact cleans nothing: the step's own transaction undoes what any
 * statement can leave (written after it, before Sync; DISCARD ALL itself cannot run in a transaction).
 */
export const TRANSACTION_POOLER_RESET = [
  'RESET ALL',
  'RESET SESSION AUTHORIZATION',
  'RESET ROLE',
  'CLOSE ALL',
  'UNLISTEN *',
  'DISCARD TEMP',
  'SELECT pg_catalog.pg_advisory_unlock_all()',
] as const;

/** Switched off only by bench/, to measure what the guard costs a step. */
export const sessionGuard = { enabled: true };

export interface SessionReading {
  objects: boolean;
  settings: string;
}

/** From the probe's row as text (a DataRow) or as parsed by pg (objects a boolean). */
export function readingOf(fields: readonly unknown[]): SessionReading {
  return { objects: fields[1] === 't' || fields[1] === true, settings: String(fields[2] ?? '') };
}

type Send = (sql: string) => Promise<unknown>;

/** Runs `setup` (fixed SQL) and the probe in one round trip; returns the probe's reading. */
export async function probeSession(send: Send, setup: readonly string[] = []): Promise<SessionReading> {
  const results = (await send([...setup, SESSION_PROBE].join('; '))) as { rows: Record<string, unknown>[] } | { rows: Record<string, unknown>[] }[];
  const last = Array.isArray(results) ? results[results.length - 1]! : results;
  const row = last.rows[0]!;
  return readingOf([row.unlocked, row.objects, row.settings]);
}

/** How each pooled session looked when it was first used, by pg-actions' own settings included. */
const baselines = new WeakMap<pg.PoolClient, string>();

export function baselineOf(client: pg.PoolClient): string | undefined {
  return baselines.get(client);
}

export function setBaseline(client: pg.PoolClient, reading: SessionReading): void {
  baselines.set(client, reading.settings);
}

/** Forget the baseline after pg-actions changed a setting itself (it is taken again next time). */
export function forgetBaseline(client: pg.PoolClient): void {
  baselines.delete(client);
}

/** Whether the session may go back to the pool. */
export function sessionUnchanged(client: pg.PoolClient, reading: SessionReading | undefined): boolean {
  if (!sessionGuard.enabled) return true;
  if (!reading || reading.objects) return false;
  const baseline = baselines.get(client);
  return baseline !== undefined && baseline === reading.settings;
}
