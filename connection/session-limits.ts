/**
 * A step's server-side limits: statement_timeout at the step's deadline and, from PostgreSQL 14,
 * client_connection_check_interval (the backend checks every second that the client is still
 * there, so a statement that ignores the cancel ends once its connection is cut).
 *
 * On a server session pg-actions owns (pooler 'none') they are SESSION settings, set once per
 * pooled connection and again only when a step needs another timeout: a step sends no statement
 * for them. A committed step resets every setting after its statement and sets them again (a
 * statement's set_config() in a function is a change like any other); a read-only step's rollback
 * undoes any change to them. Behind a pooler they are local to the step's own transaction instead (a
 * pooler refuses them as startup parameters and would hand a session SET to other clients).
 * Literals formatted from validated integers: safe to write into SQL.
 */
import type pg from 'pg';
import { PARSED_FORMATS } from './output-formats.js';

const CLIENT_CHECK_INTERVAL_MS = 1000;

const UNITS = [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000]] as const;

/** What current_setting() shows for a setting in milliseconds, e.g. 60000 → "1min", 1500 → "1500ms". */
export function showMilliseconds(ms: number): string {
  if (ms === 0) return '0';
  for (const [unit, size] of UNITS) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

export function serverVersion(client: pg.PoolClient): number {
  return Number.parseInt((client as unknown as { reported?: Map<string, string> }).reported?.get('server_version') ?? '', 10);
}

/** `SELECT set_config(…)` for the step's limits, local to its transaction or for the session. */
export function limitsSql(client: pg.PoolClient, timeoutMs: number, scope: 'local' | 'session'): string {
  const local = scope === 'local';
  // With the limits, exact floats: extra_float_digits 0 or less (a database or role default some
  // set-ups keep) makes the server write 15 digits, and distinct values come back equal (REVIEW6
  // R111). Not reported by the server like DateStyle, so set wherever the limits are.
  const timeout = `pg_catalog.set_config('statement_timeout', '${Math.trunc(timeoutMs)}', ${local}), pg_catalog.set_config('extra_float_digits', '${PARSED_FORMATS.extra_float_digits}', ${local})`;
  return serverVersion(client) >= 14
    ? `SELECT ${timeout}, pg_catalog.set_config('client_connection_check_interval', '${CLIENT_CHECK_INTERVAL_MS}', ${local})`
    : `SELECT ${timeout}`;
}

/** A step's own lock_timeout, local to its transaction (the rollback or commit ends it). */
export function lockTimeoutSql(lockTimeoutMs: number): string {
  return `SELECT pg_catalog.set_config('lock_timeout', '${Math.max(1, Math.trunc(lockTimeoutMs))}', true)`;
}

/** The probe's reading of limits set to `timeoutMs`. */
export function limitsReading(client: pg.PoolClient, timeoutMs: number): string {
  const timeout = showMilliseconds(Math.trunc(timeoutMs));
  return serverVersion(client) >= 14 ? `${timeout} ${showMilliseconds(CLIENT_CHECK_INTERVAL_MS)}` : timeout;
}

/** Per pooled session pg-actions owns: the limits it set as session settings (as the probe reads them). */
const sessionLimits = new WeakMap<pg.PoolClient, string>();

/** Whether the session already has these limits as its own settings. */
export function hasSessionLimits(client: pg.PoolClient, timeoutMs: number): boolean {
  const current = sessionLimits.get(client);
  return current !== undefined && current === limitsReading(client, timeoutMs);
}

export function rememberSessionLimits(client: pg.PoolClient, timeoutMs: number): void {
  sessionLimits.set(client, limitsReading(client, timeoutMs));
}

/** Unknown after a failed round trip: set them again before the next step. */
export function forgetSessionLimits(client: pg.PoolClient): void {
  sessionLimits.delete(client);
}
