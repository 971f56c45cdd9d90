/**
 * Bulk reads for table-sync, one network round trip per batch: in one REPEATABLE READ READ ONLY
 * transaction, a prelude (values bound, e.g. txid_current_snapshot() and the keyset cursor via
 * set_config) and then `COPY (SELECT …) TO STDOUT` in the same snapshot, written at once with a
 * single Sync. COPY's text rows cost the client far less than DataRow messages parsed into objects.
 * The rows go from the connection's result gate straight to the row decoder (copy-text.ts), past
 * node-postgres' parser, which keeps them as bytes (at most maxResultBytes) and hands them to the
 * caller once the transaction has ended, in one pass. COPY takes no parameters: whatever varies is bound in the prelude and read back with
 * current_setting().
 */
import type { Connection, Submittable } from 'pg';
import { isServerTimeout, TimeoutError, withDeadline } from './deadline.js';
import { PgActionsError, toPgActionsError } from './errors/index.js';
import { configOf, connect, failureContext } from './execute.js';
import { CopyTextRows, type CopyColumn, type RowHandler } from './copy-text.js';
import { gateOf, type ResultBudget } from './result-gate.js';
import { writeFixed, writePipeline, writeUnnamed, type PgConnection } from './wire.js';
import { LOCAL_FORMAT_SETS } from './output-formats.js';
import { serverVersion } from './session-limits.js';

export type { CopyColumn };

export interface SnapshotCopy {
  /**
   * The table COPY reads (quoted, qualified), locked before the snapshot is taken: TRUNCATE is not
   * MVCC-safe, and one committed between the snapshot and COPY's own lock would leave COPY an
   * empty table to read. Locked first, the batch sees the table either before or after it.
   */
  table: string;
  /** Runs first in the transaction (its first statement takes the snapshot); its one row (as text) is returned. */
  prelude: { text: string; values: readonly unknown[] };
  /** COPY (SELECT …) TO STDOUT. */
  copy: string;
  /** The columns COPY returns, from the prelude's row (it arrives before the first row). */
  columns(prelude: Record<string, string | null>): readonly CopyColumn[];
  /**
   * Each row, values parsed as Query Rows parses them, its index, the batch's row count and its
   * text of the keepText columns: called in order once the whole batch has arrived and the transaction ended.
   */
  onRow: RowHandler;
  /**
   * Columns whose text (as PostgreSQL wrote it, unparsed) each row hands to onRow and the result
   * returns for the last row: exact for every type (a keyset cursor, an id unique per key).
   */
  keepText?: readonly string[];
}

export interface SnapshotCopyResult {
  prelude: Record<string, string | null>;
  rows: number;
  /** Bytes of COPY text. */
  bytes: number;
  /** Columns of each row. */
  columns: number;
  /** The last row's text of request.keepText's columns; undefined without rows. */
  lastText?: (string | null)[];
}

const GRACE_MS = 1000;

export async function copyInSnapshot(connection: unknown, request: SnapshotCopy): Promise<SnapshotCopyResult> {
  const config = configOf(connection);
  const { client } = await connect(config);
  // PostgreSQL 12's LOCK checks privileges on every partition / child, which a role with SELECT on
  // the parent lacks (13+ does not): lock the parent ONLY there, so a TRUNCATE of the whole table
  // still waits for the batch (a TRUNCATE of one partition alone does not, as before 13's rule).
  const run = new SnapshotCopyRun(request, config.statementTimeoutMs, config.maxResultBytes, serverVersion(client) < 130000);
  const startedAt = performance.now();
  let discard = true;
  try {
    client.query(run);
    const result = await withDeadline(run.done, config.statementTimeoutMs + GRACE_MS);
    discard = false;
    return result;
  } catch (error) {
    // A COPY stopped half-way, a timeout, a failed transaction: never reuse the session.
    if (error instanceof PgActionsError) throw error;
    const failedPrelude = run.completions <= PRELUDE;
    const timedOut = error instanceof TimeoutError || isServerTimeout(error, performance.now() - startedAt, config.statementTimeoutMs);
    throw toPgActionsError(error, { ...failureContext(config, 'statement'), ...(timedOut ? { timedOut: { afterMs: config.statementTimeoutMs } } : {}), query: failedPrelude ? request.prelude.text : request.copy, parameters: failedPrelude ? request.prelude.values : undefined });
  } finally {
    client.release(discard || undefined);
  }
}

/** Statements in order: BEGIN, the timeout, the formats, the lock, the prelude, COPY, COMMIT. */
const PRELUDE = 3 + LOCAL_FORMAT_SETS.length;
const COPY = PRELUDE + 1;

class SnapshotCopyRun implements Submittable {
  readonly done: Promise<SnapshotCopyResult>;
  completions = 0;
  private bytes = 0;
  private names: string[] = [];
  private prelude: Record<string, string | null> = {};
  private decoder: CopyTextRows | undefined;
  private failure: unknown;
  private resolve!: (result: SnapshotCopyResult) => void;
  private reject!: (error: unknown) => void;
  /** Armed on the connection's result gate: the COPY's rows come to piece() from the socket. */
  private readonly budget: ResultBudget = {
    limit: Number.MAX_SAFE_INTEGER, // maxBytes is counted on the COPY text by piece() itself
    used: 0,
    rows: 0,
    completed: 0,
    onOverflow: () => undefined,
    copySink: (data, start, end, last) => this.piece(data, start, end, last),
  };
  private disarm: (() => void) | undefined;

  constructor(
    private readonly request: SnapshotCopy,
    private readonly timeoutMs: number,
    private readonly maxBytes: number,
    private readonly lockParentOnly = false,
  ) {
    this.done = new Promise((resolve, reject) => ((this.resolve = resolve), (this.reject = reject)));
  }

  submit(connection: Connection): void {
    const con = connection as unknown as PgConnection;
    const simple = (text: string) => writeFixed(con, text);
    const gate = gateOf(connection);
    if (gate) {
      gate.arm(this.budget);
      this.disarm = () => gate.disarm(this.budget);
    }
    writePipeline(con, () => {
      // Neither SET nor LOCK takes the transaction's snapshot: the prelude does, once the table is locked.
      simple('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      // A literal formatted from a validated integer: safe to write into SQL. Then the output formats
      // the COPY text parser reads, whatever the database's or role's defaults: behind a declared
      // pooler no step has set them on this session (REVIEW6 R111, R117). SETs: a SELECT would take
      // the snapshot before the lock.
      simple(`SET LOCAL statement_timeout = ${Math.trunc(this.timeoutMs)}`);
      for (const format of LOCAL_FORMAT_SETS) simple(format);
      simple(`LOCK TABLE ${this.lockParentOnly ? 'ONLY ' : ''}${this.request.table} IN ACCESS SHARE MODE`);
      writeUnnamed(con, this.request.prelude.text, this.request.prelude.values);
      simple(this.request.copy);
      simple('COMMIT');
    }, (error) => this.fail(error));
  }

  handleRowDescription(message: { fields: { name: string }[] }): void {
    this.names = message.fields.map((field) => field.name);
  }

  handleDataRow(message: { fields: (string | null)[] }): void {
    if (this.completions !== PRELUDE) return;
    this.prelude = Object.fromEntries(this.names.map((name, i) => [name, message.fields[i] ?? null]));
    try {
      this.decoder = new CopyTextRows(this.request.columns(this.prelude), this.request.onRow, this.request.keepText);
    } catch (error) {
      this.fail(error);
    }
  }

  /** Without a result gate (not a pooled client) the rows come through node-postgres' parser. */
  handleCopyData(message: { chunk: Buffer }): void {
    this.piece(message.chunk, 0, message.chunk.length, true);
  }

  private piece(data: Buffer, start: number, end: number, last: boolean): void {
    if (this.failure || !this.decoder) return;
    this.bytes += end - start;
    if (this.bytes > this.maxBytes) {
      this.fail(new PgActionsError('RESULT_TOO_LARGE', {
        message: `One batch passed maxResultBytes (${this.maxBytes} bytes of COPY text); reading stopped.`,
        fixes: ['Lower batchSize (rows per batch).', 'Raise the connection\'s maxResultBytes (at most 256 MiB).'],
      }));
      return;
    }
    try {
      this.decoder.piece(data, start, end, last);
    } catch (error) {
      this.fail(error);
    }
  }

  handleCommandComplete(): void {
    this.completions++;
  }

  handleError(error: unknown): void {
    this.fail(error);
  }

  handleReadyForQuery(): void {
    this.disarm?.();
    if (this.completions <= COPY && !this.failure) this.fail(new Error('the COPY did not complete'));
    if (!this.failure) {
      try {
        this.decoder?.flush(); // the rows reach onRow once the batch is whole and committed
      } catch (error) {
        this.fail(error);
      }
    }
    this.resolve({ prelude: this.prelude, rows: this.decoder?.rows ?? 0, bytes: this.bytes, columns: this.decoder?.columns ?? 0, lastText: this.decoder?.lastText });
  }

  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}

  private fail(error: unknown): void {
    if (this.failure) return;
    this.failure = error;
    this.reject(error);
  }
}
