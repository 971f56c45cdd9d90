/**
 * Several statements on one pooled session inside one transaction, for work that must be all or
 * nothing and cannot be one statement: installing or removing a trigger's objects. The session is
 * closed afterwards (DDL and locks must not follow it into a later step).
 *
 * Bounded on the server, not only by the client (REVIEW7 R140): the DDL waits for strong locks
 * (CREATE TRIGGER behind any open writer of the table, DROP TRIGGER behind any open reader), and a
 * request the client merely abandoned stayed at the head of the table's lock queue, every later
 * writer (or reader) of the table queued behind it until the blocking transaction ended. So the
 * transaction has the step's statement_timeout (and client_connection_check_interval) and a short
 * lock_timeout: failing fast, with LOCK_NOT_AVAILABLE naming what was locked, is better than
 * queueing in front of the application. Past the client's deadline the statement is cancelled
 * before the session is dropped.
 */
import { isServerTimeout, TimeoutError, withDeadline } from './deadline.js';
import { PgActionsError, toPgActionsError } from './errors/index.js';
import { cancel, configOf, connect, failureContext } from './execute.js';
import { limitsSql, lockTimeoutSql } from './session-limits.js';

/** What a statement locks, named in the error when another session's lock keeps it waiting. */
export interface LockTarget {
  /** As people read it: `the table "public"."orders"`. */
  what: string;
  /** A query listing the sessions that hold it. */
  holders: string;
}

export type Query = (text: string, values?: readonly unknown[], locks?: LockTarget) => Promise<Record<string, unknown>[]>;

/** What the transaction does (`row-changes activation`) and what to do once the lock is free (`activate it again`). */
export interface TransactionTask {
  name: string;
  again: string;
}

const GRACE_MS = 1000;
/** The longest one lock is waited for (half the step's timeout when that is shorter): the DDL needs it only briefly. */
const LOCK_WAIT_MS = 5000;

export function lockWaitMs(statementTimeoutMs: number): number {
  return Math.max(1, Math.min(LOCK_WAIT_MS, Math.floor(statementTimeoutMs / 2)));
}

/** The tables `names` (quoted and qualified, as the server resolves them) as what a statement locks. */
export function tablesLock(names: readonly string[]): LockTarget {
  const relations = names.map((name) => `'${name.replaceAll("'", "''")}'::pg_catalog.regclass::pg_catalog.oid`).join(', ');
  return {
    what: `${names.length === 1 ? 'the table' : 'the tables'} ${names.join(', ')}`,
    holders: holdersSql(`l.relation OPERATOR(pg_catalog.=) ANY (ARRAY[${relations}])`),
  };
}

/**
 * The sessions holding a granted lock that `condition` (over pg_locks `l`) selects. Run as the
 * step's role when a lock wait gives up, and printed in the fix for people to run: every operator
 * names its schema, and `condition` must too (an unqualified `=` of oid and regclass ran a
 * look-alike made in public as the activator: REVIEW10 R164).
 */
export function holdersSql(condition: string): string {
  return `SELECT a.pid, a.usename, a.application_name, a.state, a.xact_start, a.query FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid WHERE l.granted AND ${condition};`;
}

const SOME_TASK: TransactionTask = { name: 'pg-actions', again: 'run the step again' };

export async function inTransaction<T>(connection: unknown, work: (query: Query) => Promise<T>, task = SOME_TASK): Promise<T> {
  const config = configOf(connection);
  const { managed, client } = await connect(config);
  const deadline = config.statementTimeoutMs + GRACE_MS;
  const lockWait = lockWaitMs(config.statementTimeoutMs);
  let current: { text: string; values?: readonly unknown[]; locks?: LockTarget; startedAt: number } = { text: 'BEGIN', startedAt: performance.now() };
  const query: Query = async (text, values, locks) => {
    current = { text, values, locks, startedAt: performance.now() };
    return (await withDeadline(client.query(text, values as unknown[] | undefined), deadline)).rows;
  };
  try {
    await query('BEGIN');
    await query(`${limitsSql(client, config.statementTimeoutMs, 'local')}; ${lockTimeoutSql(lockWait)}`);
    const result = await work(query);
    await query('COMMIT');
    return result;
  } catch (error) {
    if (error instanceof TimeoutError) {
      // The server did not end it in time: cancel it, or its backend would keep waiting for the lock.
      await cancel(managed, client);
    }
    await withDeadline(client.query('ROLLBACK'), GRACE_MS).catch(() => undefined);
    if (error instanceof PgActionsError) throw error;
    if ((error as { code?: unknown } | null)?.code === '55P03') throw lockedOut(task, current.locks, lockWait, error);
    const context = { ...failureContext(config, 'statement'), query: current.text, parameters: current.values };
    if (error instanceof TimeoutError || isServerTimeout(error, performance.now() - current.startedAt, config.statementTimeoutMs)) context.timedOut = { afterMs: config.statementTimeoutMs };
    throw toPgActionsError(error, context);
  } finally {
    client.release(true);
  }
}

function lockedOut(task: TransactionTask, locks: LockTarget | undefined, waitedMs: number, error: unknown): PgActionsError {
  return new PgActionsError('LOCK_NOT_AVAILABLE', {
    message:
      `${task.name}: waited ${waitedMs} ms for a lock on ${locks?.what ?? 'an object it changes'}, held by another session's open transaction, and gave up ` +
      'rather than queue in front of it (every later query needing the object would wait behind the request). Nothing was changed.',
    fixes: [
      `Finish or end the open transaction (commit or roll it back; a session left idle in transaction can be ended with pg_terminate_backend(pid)), then ${task.again}.`,
      ...(locks ? [`Find who holds it: ${locks.holders}`] : []),
    ],
    sqlstate: '55P03',
    cause: error,
  });
}
