/**
 * Runs one statement for a step: pooled connection, values bound, a deadline that cancels on
 * the server, rows streamed under the byte cap, errors mapped to PgActionsError.
 *
 * The deadline is enforced twice: the server's own statement_timeout ends the statement at the
 * deadline, and a client deadline shortly after sends a protocol CancelRequest and discards the
 * connection, so a silent network cannot hang a step either.
 */
import type pg from 'pg';
import { resolveConfig, type ResolvedConfig } from './config.js';
import { needsTypeLookup, parseUnknownArrays } from './array-types.js';
import { probeTls, sendCancel } from './cancel.js';
import { isServerTimeout, TimeoutError, withDeadline } from './deadline.js';
import { PgActionsError, toPgActionsError, type FailureContext } from './errors/index.js';
import { queuedMsOf } from './pool-wait.js';
import { checkout, OUTPUT_FORMAT_FIXES, outputFormatFixes, poolFor, settledTransactionStatus, transactionStatus, type ManagedPool } from './pools.js';
import { preparedCount, StatementRun, type ResultProgress, type StatementOutcome, type StatementPlan } from './statement.js';
import { baselineOf, probeSession, POOLER_CHECK, POOLER_PREPARED_RESET, POOLER_SETTINGS_RESET, TRANSACTION_POOLER_RESET, fallBackIfProbeMissing, keepsNamedStatements, named, probeFor, sessionGuard, sessionReset, sessionUnchanged, setBaseline, type SessionReading, type Sql } from './session-guard.js';
import { FIXED_FORMATS_SQL } from './output-formats.js';
import { forgetSessionLimits, hasSessionLimits, limitsSql, lockTimeoutSql, rememberSessionLimits } from './session-limits.js';
import { sshSecrets } from './ssh-config.js';
import { earlyAnswer, trackTail } from './step-tail.js';
import { jsonSafeTypes } from './types.js';

export interface Statement {
  text: string;
  values?: readonly unknown[];
  /** Run inside BEGIN READ ONLY … ROLLBACK: a statement that writes fails with READ_ONLY_VIOLATION (nothing to commit). */
  readOnly?: boolean;
  /**
   * Command tags the statement must produce (e.g. ['UPDATE']). It runs inside a transaction that
   * is committed only when the tag matches; otherwise it is rolled back and INVALID_INPUT thrown.
   */
  expectCommands?: readonly string[];
  /** Overrides the connection's statementTimeoutMs for this statement. */
  timeoutMs?: number;
  /**
   * With readOnly or expectCommands: how long the statement may wait for each lock (lock_timeout,
   * local to the step's transaction); past it, LOCK_NOT_AVAILABLE instead of waiting out the step.
   */
  lockTimeoutMs?: number;
  /**
   * A trigger's read: timestamptz written in UTC, not the session's TimeZone (set local to the step's
   * transaction), so the same rows give the same text, ids and values whatever the database's, role's
   * or pooler client's TimeZone (REVIEW9 R160, output-formats.ts); bytea in hex likewise, whatever
   * the session's bytea_output (REVIEW10 R167). Never for a user's SQL.
   */
  fixedFormats?: boolean;
  /** Overrides the connection's maxResultBytes for this statement. */
  maxResultBytes?: number;
  /** Used in the INVALID_INPUT message when expectCommands does not match, e.g. "Update Rows". */
  actionName?: string;
  /** Only the count is wanted: returned rows are counted and dropped (RETURNING in a write), so no cap applies. */
  discardRows?: boolean;
  /** Called as a large result arrives (about every MiB), e.g. for a progress line on a terminal. */
  onProgress?: (received: ResultProgress) => void;
}

export type StatementResult = StatementOutcome;

/** How long after the deadline the client stops waiting for the server's own timeout. */
const CLIENT_GRACE_MS = 100;
/** After a client-side cancel, how long to wait for the server's answer before discarding. */
const CANCEL_SETTLE_MS = 1000;
/**
 * After a failed step behind a transaction pooler, while its transaction still holds the server
 * connection (the pooler hands it on at ReadyForQuery 'I'): one simple query, one ReadyForQuery.
 */
const TRANSACTION_POOLER_ERROR_RESET = POOLER_PREPARED_RESET;

/** Per pooled session: the output-format SETs pg-actions made (set again after a RESET ALL). */
const formatFixes = new WeakMap<pg.PoolClient, string[]>();

/**
 * Behind a transaction pooler every step sets all the output formats its parsers read, LOCAL to its
 * transaction: a step may meet any server connection, and what its client was told of them says
 * little. PgBouncer tells each client the settings of its first server connection, and PostgreSQL
 * reports a setting only when it changed since it last reported it: a server connection opened after
 * `ALTER DATABASE … SET IntervalStyle` starts with the new style and tells nobody. (REVIEW4 R30 set
 * only the fixes some client had been told were needed.)
 */
const POOLER_FORMAT_SETS = Object.values(OUTPUT_FORMAT_FIXES).map((sql) => sql.replace(/^SET /, 'SET LOCAL '));

/** SQLSTATE 25001: VACUUM, CREATE DATABASE… "cannot run inside a transaction block" (or a pipeline). */
const CANNOT_RUN_IN_TRANSACTION = '25001';

/** Command tags after which the session is not the one the pool handed out (DISCARD ALL, DEALLOCATE ALL… included). */
const SESSION_CHANGING = /^(SET|RESET|DISCARD|LOAD|PREPARE|DEALLOCATE|LISTEN|DECLARE CURSOR)\b/;

function changesSession(command: string): boolean {
  return SESSION_CHANGING.test(command);
}

const resolved = new WeakMap<object, ResolvedConfig>();

/** Validates and completes a connection configuration, once per configuration object (treat it as immutable). */
export function configOf(config: unknown): ResolvedConfig {
  if (typeof config !== 'object' || config === null) return resolveConfig(config);
  let result = resolved.get(config);
  if (!result) {
    result = resolveConfig(config);
    resolved.set(config, result);
  }
  return result;
}

export function failureContext(config: ResolvedConfig, phase: FailureContext['phase']): FailureContext {
  return {
    phase,
    host: config.host,
    port: config.port,
    user: config.user,
    database: config.database,
    connectTimeoutMs: config.connectTimeoutMs,
    secrets: [config.password, config.sslKey, ...sshSecrets(config)].filter((s): s is string => typeof s === 'string'),
  };
}

/** Checks out a pooled client, or throws the friendly connection error. */
/** Checks out a pooled client within `waitMs` (default: the connect timeout), or throws the friendly error. */
export async function connect(config: ResolvedConfig, waitMs = config.connectTimeoutMs): Promise<{ managed: ManagedPool; client: pg.PoolClient }> {
  const managed = poolFor(config);
  try {
    return { managed, client: await checkout(managed, waitMs) };
  } catch (error) {
    const context = failureContext(config, 'connect');
    if ((error as { code?: string }).code === '28000' && managed.ssl === false) {
      context.serverRequiresTls = (await probeTls(config.host, config.port, undefined, managed.tunnel?.socket)) === true;
    }
    throw toPgActionsError(error, context);
  }
}

/** Failed steps whose statement cannot have left anything (it did not run, or its transaction was rolled back). */
const undone = new WeakSet<object>();

/** A user's BEGIN is committed (empty) by the step's own COMMIT after it, but still refused. */
const OPENS_TRANSACTION = /^(BEGIN|START TRANSACTION)$/;

/** Statements that may commit by themselves (a procedure's or DO block's COMMIT), in an implicit transaction. */
const MAY_COMMIT = /^(CALL|DO)$/;

export async function execute(connection: unknown, statement: Statement): Promise<StatementResult> {
  try {
    return await executeOnce(connection, statement);
  } catch (error) {
    // Behind a pooler that drops named statements one of ours fails at its Bind: run the step again
    // with them unnamed, but only when the statement cannot have committed anything (never run twice a write).
    const cause = (error as { cause?: unknown }).cause;
    if (!undone.has(error as object) || !fallBackIfProbeMissing(poolFor(configOf(connection)).pool, cause)) throw error;
    return await executeOnce(connection, statement);
  }
}

async function executeOnce(connection: unknown, statement: Statement): Promise<StatementResult> {
  const config = configOf(connection);
  const stepTimeoutMs = statement.timeoutMs ?? config.statementTimeoutMs;
  // The deadline covers the whole step, waiting for a free pooled connection included.
  const startedAt = performance.now();
  const { managed, client } = await connect(config, stepTimeoutMs);
  // Time queued behind other steps is taken from the statement's share (connecting a new one is not).
  const timeoutMs = Math.max(1, Math.round(stepTimeoutMs - queuedMsOf(client)));
  const transactional = Boolean(statement.readOnly || statement.expectCommands);
  // A read-only step has nothing to keep: its transaction is rolled back, which undoes every
  // setting, role, LISTEN or cursor its statement made (session-guard.ts).
  const rolledBack = transactional && !statement.expectCommands;
  // Our own server session (no pooler in between): limits as session settings, fixed statements named.
  const ownSession = config.pooler === 'none' && keepsNamedStatements(managed.pool);
  let discard = false;
  let run: StatementRun | undefined;
  /** The step answered before its round trip ended: the tail (step-tail.ts) releases the connection. */
  let handedOff = false;
  /** When the client stops waiting for the round trip (the statement's deadline plus grace). */
  let deadlineAt = 0;
  /** The statement went on after the CancelRequest (it caught query_canceled): its session was cut. */
  let ignoredCancel = false;
  // With session pooling each step has its own pooler connection, closed after it (the pooler
  // resets the server's); with transaction pooling the step's transaction resets the session itself.
  const guarded = sessionGuard.enabled && config.pooler === 'none';
  const transactionPooler = config.pooler === 'transaction';
  // Behind it, a step without expected commands ends with POOLER_CHECK in a transaction of its own
  // (a committed step's is opened after its COMMIT): the costly part of the reset only when needed.
  const poolerChecked = transactionPooler && !statement.expectCommands;
  const resetInStep: readonly string[] = !transactionPooler || rolledBack ? [] : poolerChecked ? [...POOLER_SETTINGS_RESET, 'COMMIT', 'BEGIN'] : TRANSACTION_POOLER_RESET;
  const pool = managed.pool;
  // Every query besides the statement itself gets the same deadline: a silent network must not hang it.
  const send = <R extends pg.QueryResultRow>(sql: string, values?: unknown[]) =>
    withDeadline(client.query<R>(sql, values), timeoutMs + CLIENT_GRACE_MS);
  // Behind a transaction pooler a failed statement leaves its transaction open (ours), so the error
  // path still reaches the same server connection to reset it.
  const ownBegin = transactionPooler && !transactional;
  const sessionTimeoutMs = config.statementTimeoutMs;
  // pg-actions' own session settings, set again after a RESET ALL.
  const reapply = (keep: boolean): Sql[] => [
    ...(formatFixes.get(client) ?? []),
    ...(ownSession ? [named(keep, `session_limits_${Math.trunc(sessionTimeoutMs)}`, limitsSql(client, sessionTimeoutMs, 'session'))] : []),
  ];
  try {
    const before: Sql[] = [];
    if (ownBegin) before.push('BEGIN');
    if (transactional) before.push(statement.readOnly ? named(ownSession, 'begin_read_only', 'BEGIN READ ONLY') : named(ownSession, 'begin', 'BEGIN'));
    // Session-level SETs of pg-actions' own (output formats; on our own session, the step's limits),
    // then the session's baseline, in one round trip: rarely needed. Behind a transaction pooler a
    // round trip of its own may reach another server connection, and the step's RESET ALL undoes it:
    // all the formats are set LOCAL in every step's transaction instead (POOLER_FORMAT_SETS).
    const setup = transactionPooler ? [] : outputFormatFixes(client);
    if (transactionPooler) before.push(...POOLER_FORMAT_SETS);
    if (setup.length) formatFixes.set(client, [...(formatFixes.get(client) ?? []), ...setup]);
    const baselineNeeded = guarded && (setup.length > 0 || baselineOf(client) === undefined);
    // The session keeps the connection's configured limits (anything else borrowing it, e.g. a
    // trigger's install, runs under them); a step with a timeout of its own, or one shortened by
    // its wait for the pool, sets it local to its transaction.
    const setLimits = ownSession && !hasSessionLimits(client, sessionTimeoutMs);
    if (setLimits) setup.push(limitsSql(client, sessionTimeoutMs, 'session'));
    if (baselineNeeded) setBaseline(client, await probeSession(send, setup));
    else if (setup.length) await send(setup.join('; '));
    if (setLimits) rememberSessionLimits(client, sessionTimeoutMs);
    const ownTimeout = !ownSession || timeoutMs !== sessionTimeoutMs;
    if (ownTimeout) before.push(limitsSql(client, timeoutMs, 'local'));
    if (transactional && statement.lockTimeoutMs !== undefined) before.push(lockTimeoutSql(statement.lockTimeoutMs));
    if (statement.fixedFormats) before.push(named(ownSession, 'fixed_formats', FIXED_FORMATS_SQL));
    // A committed step on our own session: settings (custom ones included) and LISTENs reset after the probe.
    const reset: Sql[] = guarded && !rolledBack ? sessionReset(ownSession, reapply(ownSession)) : [];
    // The probe and the pooler's reset run before the read-only step's ROLLBACK: one transaction, not two.
    // A committed step's transaction is committed before its probe and resets: a deferred trigger runs
    // at COMMIT, and could change the session after them (REVIEW3 R12). BEGIN turns the implicit
    // transaction into a block first (COMMIT alone would warn, and log the warning, every step);
    // behind a transaction pooler the reset and the check then run in transactions of their own.
    const commit: Sql[] = transactional ? [] : guarded ? [named(ownSession, 'begin', 'BEGIN'), named(ownSession, 'commit', 'COMMIT')] : ownBegin ? ['COMMIT', 'BEGIN'] : [];
    // Insert/Update/Delete Rows commit (and reset) once the tag is checked: commitIfExpected().
    const after: Sql[] = rolledBack ? (poolerChecked ? [] : [named(ownSession, 'rollback', 'ROLLBACK')]) : statement.expectCommands ? [...resetInStep] : [...reset, ...resetInStep];
    const probe = statement.expectCommands || !guarded ? undefined : probeFor(pool, rolledBack);
    // The probe of a committed step without BEGIN reads its local timeout, which hides the session's:
    // the session's limits are set again after it (by the reset), whatever the statement did to them.
    const reassert = ownSession && ownTimeout && !transactional;
    const tail: Sql[] = poolerChecked ? [rolledBack ? 'ROLLBACK' : 'COMMIT'] : reassert && !reset.length ? [limitsSql(client, sessionTimeoutMs, 'session')] : [];
    // The step answers once its outcome is final: a read-only step's result, a committed step's COMMIT
    // (deferred triggers fail it). The probe, check, resets and ROLLBACK after it only decide whether
    // the session goes back to the pool (finishTail). Not for Insert/Update/Delete Rows (their COMMIT
    // comes in a second round trip), nor without a guard or pooler reset after the statement.
    const commitAt = commit.findIndex((sql) => sqlText(sql) === 'COMMIT');
    const answersEarly = earlyAnswer.enabled && !statement.expectCommands && (guarded || transactionPooler) && (rolledBack || commitAt >= 0);
    const outcomeAtFor = (before: readonly Sql[]) => (rolledBack ? before.length : before.length + 1 + commitAt);
    // Unless the outcome still depends on a later reply: a BEGIN to refuse, array types to look up on this session.
    const settlesEarly = (outcome: StatementOutcome) => !OPENS_TRANSACTION.test(outcome.command) && !needsTypeLookup(managed.pool, outcome);
    const runWith = async (before: readonly Sql[], probe: StatementPlan['probe'], early: boolean): Promise<StatementOutcome> => {
      deadlineAt = performance.now() + timeoutMs + CLIENT_GRACE_MS;
      const current = (run = new StatementRun(
        {
          text: statement.text,
          values: statement.values ?? [],
          before,
          commit,
          after,
          commitsItself: !transactional,
          check: poolerChecked ? POOLER_CHECK : undefined,
          tail,
          probe,
          outcomeAt: early && answersEarly ? outcomeAtFor(before) : undefined,
          settlesEarly,
          maxResultBytes: statement.maxResultBytes ?? config.maxResultBytes,
          discardRows: statement.discardRows ?? false,
          typeParser: (oid) => jsonSafeTypes.getTypeParser(oid),
          onProgress: statement.onProgress,
        },
        () => {
          // Past the cap: drop the session at once (the step fails now, not after the rest of the
          // result streamed in) and stop the statement on the server, which may hold locks or keep
          // computing without writing: the cancel goes on while the step returns (it never rejects).
          discard = true;
          destroy(client);
          void cancel(managed, client);
        },
        () => {
          discard = true;
          destroy(client);
        },
      ));
      client.query(current);
      try {
        return await withDeadline(Promise.race([current.early, current.done]), timeoutMs + CLIENT_GRACE_MS);
      } catch (error) {
        if (!(error instanceof TimeoutError)) throw error;
        const settled = await cancelAndSettle(managed, client, current.done);
        discard = !settled;
        if (!settled) ignoredCancel = true;
        // The statement had finished and nothing failed after it: what the deadline met was its COMMIT
        // (waiting for a synchronous standby: the cancel ends the wait, not the commit) or a late answer.
        // Not "cancelled": the write is, or may be, committed (REVIEW3 R16).
        if (!transactional && current.command !== '' && current.failedAt === undefined) throw commitUnconfirmed(statement, timeoutMs, current.finished);
        throw error;
      }
    };
    let outcome: StatementOutcome;
    try {
      outcome = await runWith(before, probe, true);
    } catch (error) {
      if (run?.failedAt === 'committed') {
        // The probe or a reset failed after the statement's COMMIT: its work stands (reported, never
        // run again), the session is not trusted.
        discard = true;
        outcome = run.result;
      } else {
        if (transactional || (error as { code?: string }).code !== CANNOT_RUN_IN_TRANSACTION || !(await committedNothing(statement.text))) throw error;
        // Our BEGIN (transaction pooler): its ReadyForQuery, awaited within the step's deadline (a stalled
        // connection may never send it: the TimeoutError discards the session, REVIEW12 R182).
        if ((await withDeadline(settledTransactionStatus(client), Math.max(1, deadlineAt - performance.now()))) !== 'I') await send('ROLLBACK');
        // VACUUM, CREATE DATABASE, … refuse to share their implicit transaction with set_config() or
        // the probe, and fail before doing anything: run alone (the client deadline still cancels on
        // the server), then probe the session on its own.
        outcome = await runWith([], undefined, false);
        if (probe) run!.sessionReading = await probeSession(send, reset.map(sqlText));
      }
    }
    if (run!.settledEarly && !run!.finished) {
      await parseUnknownArrays(managed.pool, send, outcome); // no lookup needed: settlesEarly() checked
      handedOff = true;
      const current = run!;
      trackTail(pool, finishTail(current, outcome), () => destroy(client));
      return outcome;
    }
    // POOLER_CHECK found statements made with SQL PREPARE: deallocated on the same server connection,
    // in the transaction the check left open (the statement's own work is already done or committed).
    if (run!.needsReset) discard = !(await send(POOLER_PREPARED_RESET).then(() => true, () => false));
    let reading = run!.sessionReading;
    if (statement.expectCommands) {
      reading = await commitIfExpected(send, outcome, statement, guarded, guarded ? reset.map(sqlText) : resetInStep).catch((error: unknown) => {
        if (!(error instanceof TimeoutError) || !statement.expectCommands!.includes(outcome.command)) throw error;
        // The COMMIT went out and no answer came (a synchronous standby away, or the network): the cancel
        // ends a wait for the standby (the commit stays), the session goes (REVIEW3 R16).
        discard = true;
        void cancel(managed, client);
        throw commitUnconfirmed(statement, timeoutMs, false, error);
      });
    } else if (!run!.needsReset && (transactionStatus(client) !== 'I' || OPENS_TRANSACTION.test(outcome.command))) {
      await refuseOpenTransaction(send, outcome, statement, transactionStatus(client) !== 'I');
    }
    await parseUnknownArrays(managed.pool, send, outcome);
    // Role, settings, temp tables, cursors… would follow this pooled session into later steps. A
    // LISTEN in the step's own transaction is not in effect yet when the probe runs: its tag tells.
    if ((guarded && !sessionUnchanged(client, reading, preparedCount(client))) || changesSession(outcome.command)) discard = true;
    return outcome;
  } catch (error) {
    forgetSessionLimits(client); // the round trip that set them may not have committed
    // Run again only if the failure was at one of ours before the statement ran, or if its transaction
    // (explicit, or implicit without a procedure's COMMIT) was rolled back with the failure.
    const failedAt = run?.failedAt;
    const rerunnable = failedAt === 'before' || (failedAt === 'after' && (transactional || ownBegin || !MAY_COMMIT.test(run!.command)));
    const context: FailureContext = { ...failureContext(config, 'statement'), query: statement.text, parameters: statement.values };
    if (run?.overflowed) context.overflowed = { maxResultBytes: statement.maxResultBytes ?? config.maxResultBytes };
    if (error instanceof TimeoutError || isServerTimeout(error, performance.now() - startedAt, stepTimeoutMs)) context.timedOut = { afterMs: stepTimeoutMs, ignoredCancel };
    // Keep the connection only when the server reported an ordinary ERROR on a live session.
    if (!discard && !leavesSessionUsable(error)) discard = true;
    if (!discard && transactionPooler) {
      // Still on the failed transaction's server connection: end it and release what it took.
      discard = !(await send(TRANSACTION_POOLER_ERROR_RESET).then(() => true, () => false));
    } else if (!discard && transactional) discard = !(await rollback(client));
    // The probe did not run (the statement failed before it); session advisory locks may be held, and
    // a statement that committed by itself (a procedure) may have changed settings: reset them too.
    if (!discard && guarded) {
      const resetSql = sessionReset(false, reapply(false)).map(sqlText);
      discard = !sessionUnchanged(client, await probeSession(send, resetSql).catch(() => undefined), preparedCount(client));
      if (!discard && ownSession) rememberSessionLimits(client, sessionTimeoutMs);
    }
    const mapped = toPgActionsError(error, context);
    if (rerunnable) undone.add(mapped);
    throw mapped;
  } finally {
    if (!handedOff) client.release(discard || undefined);
  }

  /**
   * The rest of an answered step's round trip: the session goes back to the pool only if everything
   * after the statement went through and found it clean; any failure, or the deadline, discards it.
   * Never rejects: nothing here can change the step's outcome.
   */
  async function finishTail(current: StatementRun, outcome: StatementOutcome): Promise<void> {
    let clean = false;
    try {
      await withDeadline(current.done, Math.max(1, deadlineAt - performance.now()));
      // POOLER_CHECK found statements made with SQL PREPARE: deallocated in the transaction it left open.
      if (current.needsReset) await send(POOLER_PREPARED_RESET);
      // A transaction still open cannot be refused any more (settlesEarly() refused the BEGINs): the session goes.
      clean = transactionStatus(client) === 'I' && !changesSession(outcome.command) && !(guarded && !sessionUnchanged(client, current.sessionReading, preparedCount(client)));
    } catch (error) {
      if (error instanceof TimeoutError) destroy(client);
    } finally {
      client.release(clean ? undefined : true);
    }
  }
}

/**
 * Whether a statement refused with 25001 raised it for itself, before doing anything: only then is
 * it run again alone. The same SQLSTATE comes from inside a function or procedure that EXECUTEs
 * VACUUM or CREATE INDEX CONCURRENTLY, after it may have done what a rollback does not undo (a
 * procedure's COMMIT, REVIEW3 R23; nextval(), dblink_exec(), an HTTP call, REVIEW4 R33): that step
 * fails once. An allow-list of the statements that refuse a transaction block, read from the parse tree.
 */
const RUN_ALONE = new Set([
  'VacuumStmt', 'CreatedbStmt', 'DropdbStmt', 'AlterDatabaseStmt', 'CreateTableSpaceStmt', 'DropTableSpaceStmt', 'AlterSystemStmt',
  'ClusterStmt', 'ReindexStmt', 'CreateSubscriptionStmt', 'AlterSubscriptionStmt', 'DropSubscriptionStmt', 'AlterEnumStmt', 'DiscardStmt',
]);
/** Refuse a transaction block only with CONCURRENTLY (CREATE/DROP INDEX, DETACH PARTITION) or as COMMIT/ROLLBACK PREPARED. */
const RUN_ALONE_WHEN = /^(IndexStmt|DropStmt|AlterTableStmt)$/;

async function committedNothing(text: string): Promise<boolean> {
  const { parsePg } = await import('../templating/pg-parser.js'); // loaded on this rare path only
  const tree = parsePg(text);
  if (tree instanceof Error || tree.stmts?.length !== 1) return false;
  const node = (tree.stmts[0]!.stmt ?? {}) as Record<string, unknown>;
  const [kind] = Object.keys(node);
  if (kind === undefined) return false;
  if (RUN_ALONE.has(kind)) return true;
  if (RUN_ALONE_WHEN.test(kind)) return JSON.stringify(node).includes('"concurrent":true');
  return kind === 'TransactionStmt' && /^TRANS_STMT_(COMMIT|ROLLBACK)_PREPARED$/.test(String((node[kind] as { kind?: unknown }).kind));
}

function commitUnconfirmed(statement: Statement, timeoutMs: number, committed: boolean, cause?: unknown): PgActionsError {
  return new PgActionsError('COMMIT_UNCONFIRMED', {
    message: committed
      ? `The statement finished and was committed, but only after the step's timeout of ${timeoutMs} ms (its COMMIT waited for a synchronous standby, or the answer was late). Its write is in the database: do not run the step again.`
      : `The statement finished, but the step's timeout of ${timeoutMs} ms passed before its COMMIT was confirmed (it may be waiting for a synchronous standby). Its write may be committed: check before running the step again.`,
    cause,
    query: statement.text,
    parameters: statement.values,
  });
}

function sqlText(sql: Sql): string {
  return typeof sql === 'string' ? sql : sql.text;
}

function leavesSessionUsable(error: unknown): boolean {
  if (error instanceof PgActionsError) return true; // raised by us after a clean rollback
  const { severity, code } = (error ?? {}) as { severity?: string; code?: string };
  return severity === 'ERROR' && typeof code === 'string' && !code.startsWith('08') && !code.startsWith('57P');
}

type Finish = (sql: 'COMMIT' | 'ROLLBACK') => Promise<unknown>;

/**
 * Commits when the tag matches, then resets the session and reads it, in the same round trip: after
 * the COMMIT, so what deferred triggers did is reset and read too.
 */
async function commitIfExpected(
  send: (sql: string) => Promise<unknown>,
  outcome: StatementOutcome,
  statement: Statement,
  guarded: boolean,
  reset: readonly string[],
): Promise<SessionReading | undefined> {
  const expected = statement.expectCommands!;
  if (expected.includes(outcome.command)) return guarded ? probeSession(send, ['COMMIT', ...reset]) : void (await send(['COMMIT', ...reset].join('; ')));
  const finish = send as Finish;
  await finish('ROLLBACK');
  const kind = outcome.command || 'empty statement';
  throw new PgActionsError('INVALID_INPUT', {
    message: `${statement.actionName ?? 'This action'} only runs ${expected.join(' or ')} statements; this one is ${withArticle(kind)}. It was rolled back: its changes were undone.`,
    problems: [`input.query must be ${expected.map(withArticle).join(' or ')} statement`],
    fixes: ['Use the action that matches the statement (Execute Query runs any statement).'],
    query: statement.text,
    parameters: statement.values,
  });
}

/**
 * A statement such as BEGIN would leave the pooled session inside a transaction, and the next
 * step (of any flow) would run in it: roll back and refuse, so a step always ends committed.
 */
async function refuseOpenTransaction(finish: Finish, outcome: StatementOutcome, statement: Statement, open: boolean): Promise<never> {
  if (open) await finish('ROLLBACK');
  throw new PgActionsError('INVALID_INPUT', {
    message: `${outcome.command} leaves a transaction open after the step. Each step runs as its own transaction, so it was rolled back: its changes were undone.`,
    problems: ['input.query must not open a transaction (BEGIN / START TRANSACTION): a step commits on its own'],
    fixes: [
      'Remove BEGIN / COMMIT: the statement of a step is committed when it succeeds and rolled back when it fails.',
      'To change several tables at once, use one statement (e.g. WITH … INSERT … , UPDATE …) or a database function called from Execute Query.',
    ],
    query: statement.text,
    parameters: statement.values,
  });
}

async function rollback(client: pg.PoolClient): Promise<boolean> {
  try {
    await withDeadline(client.query('ROLLBACK'), CANCEL_SETTLE_MS);
    return true;
  } catch {
    return false;
  }
}

/**
 * Sends a CancelRequest and waits briefly for the statement to end; false if the connection must
 * go. A statement that outlives the cancel has its socket cut and, on a direct connection, its
 * backend terminated from another session (before PostgreSQL 14 nothing else would stop it).
 */
async function cancelAndSettle(managed: ManagedPool, client: pg.PoolClient, done: Promise<unknown>): Promise<boolean> {
  await cancel(managed, client);
  try {
    await withDeadline(done.catch(() => undefined), CANCEL_SETTLE_MS);
    return true;
  } catch {
    destroy(client);
    if (managed.config.pooler === 'none') await terminate(managed, client);
    return false;
  }
}

async function terminate(managed: ManagedPool, client: pg.PoolClient): Promise<void> {
  const { processID } = client as unknown as { processID: number };
  await withDeadline(managed.pool.query('SELECT pg_catalog.pg_terminate_backend($1)', [processID]), CANCEL_SETTLE_MS).catch(() => undefined);
}

/** A CancelRequest for the statement `client` runs, through the pool's TLS and tunnel. */
export function cancel(managed: ManagedPool, client: pg.PoolClient): Promise<boolean> {
  const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
  return sendCancel({ host: managed.config.host, port: managed.config.port, processID, secretKey, ssl: managed.ssl, stream: managed.tunnel?.socket });
}

function destroy(client: pg.PoolClient): void {
  (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
}

/** "a DELETE", "an UPDATE", "an empty statement": a statement's name with its article. */
function withArticle(name: string): string {
  return `${/^[AEIOU]/i.test(name) ? 'an' : 'a'} ${name}`;
}
