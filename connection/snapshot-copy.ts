/**
 * Bulk reads for table-sync, one network round trip per batch: in one REPEATABLE READ READ ONLY
 * transaction, a prelude (values bound, e.g. txid_current_snapshot() and the keyset cursor via
 * set_config) and then `COPY (SELECT …) TO STDOUT` in the same snapshot, written at once with a
 * single Sync. COPY's text rows cost the client far less than DataRow messages parsed into objects,
 * and each row reaches the caller as it arrives, so memory is the caller's batch. COPY takes no
 * parameters: whatever varies is bound in the prelude and read back with current_setting().
 */
import type { Connection, Submittable } from 'pg';
import { TimeoutError, withDeadline } from './deadline.js';
import { PgActionsError, toPgActionsError } from './errors/index.js';
import { configOf, connect, failureContext } from './execute.js';
import { jsonSafeTypes } from './types.js';
import { writeFixed, writePipeline, writeUnnamed, type PgConnection } from './wire.js';
import { setField } from './row-field.js';
import { serverVersion } from './session-limits.js';

export interface CopyColumn {
  name: string;
  oid: number;
}

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
  /** One row, values parsed as Query Rows parses them. */
  onRow(row: Record<string, unknown>): void;
}

export interface SnapshotCopyResult {
  prelude: Record<string, string | null>;
  rows: number;
  bytes: number;
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
    // 57014 after the whole timeout is our statement_timeout (a lock wait, usually), not someone's cancel.
    const timedOut = error instanceof TimeoutError || ((error as { code?: string } | null)?.code === '57014' && performance.now() - startedAt >= config.statementTimeoutMs - 1);
    throw toPgActionsError(error, { ...failureContext(config, 'statement'), ...(timedOut ? { timedOut: { afterMs: config.statementTimeoutMs } } : {}), query: failedPrelude ? request.prelude.text : request.copy, parameters: failedPrelude ? request.prelude.values : undefined });
  } finally {
    client.release(discard || undefined);
  }
}

/** Statements in order: BEGIN, the timeout, the lock, the prelude, COPY, COMMIT. */
const PRELUDE = 3;
const COPY = 4;

class SnapshotCopyRun implements Submittable {
  readonly done: Promise<SnapshotCopyResult>;
  completions = 0;
  private rows = 0;
  private bytes = 0;
  private names: string[] = [];
  private prelude: Record<string, string | null> = {};
  private onLine: ((line: string) => void) | undefined;
  private rest: Buffer | undefined;
  private failure: unknown;
  private resolve!: (result: SnapshotCopyResult) => void;
  private reject!: (error: unknown) => void;

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
    writePipeline(con, () => {
      // Neither SET nor LOCK takes the transaction's snapshot: the prelude does, once the table is locked.
      simple('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      // A literal formatted from a validated integer: safe to write into SQL.
      simple(`SET LOCAL statement_timeout = ${Math.trunc(this.timeoutMs)}`);
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
      this.onLine = rowParser(this.request.columns(this.prelude), this.request.onRow);
    } catch (error) {
      this.fail(error);
    }
  }

  handleCopyData(message: { chunk: Buffer }): void {
    if (this.failure || !this.onLine) return;
    let chunk = message.chunk;
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      this.fail(new PgActionsError('RESULT_TOO_LARGE', {
        message: `One batch passed maxResultBytes (${this.maxBytes} bytes of COPY text); reading stopped.`,
        fixes: ['Lower batchSize (rows per batch).', 'Raise the connection\'s maxResultBytes (at most 256 MiB).'],
      }));
      return;
    }
    try {
      // The server sends one row per CopyData message; anything else is split and joined anyway.
      const last = chunk.length - 1;
      if (!this.rest && chunk[last] === 10 && chunk.indexOf(10) === last) {
        this.onLine(chunk.toString('utf8', 0, last));
        this.rows++;
        return;
      }
      if (this.rest) chunk = Buffer.concat([this.rest, chunk]);
      const end = chunk.lastIndexOf(10);
      this.rest = end + 1 < chunk.length ? chunk.subarray(end + 1) : undefined;
      if (end === -1) return;
      for (const line of chunk.toString('utf8', 0, end).split('\n')) {
        this.onLine(line);
        this.rows++;
      }
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
    if (this.completions <= COPY && !this.failure) this.fail(new Error('the COPY did not complete'));
    this.resolve({ prelude: this.prelude, rows: this.rows, bytes: this.bytes });
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

/**
 * COPY text lines → row objects: fields split on tabs, \N is NULL, backslash escapes decoded (only
 * looked for when the line has a backslash at all), each value parsed by its column's parser.
 * One loop per line and no array per row: this runs for every row of a sync.
 */
export function rowParser(columns: readonly CopyColumn[], onRow: (row: Record<string, unknown>) => void): (line: string) => void {
  const names = columns.map((column) => column.name);
  const asText = jsonSafeTypes.getTypeParser(TEXT_OID);
  const parsers = columns.map((column) => {
    const parse = jsonSafeTypes.getTypeParser(column.oid);
    return parse === asText ? undefined : parse; // undefined: the text as it is
  });
  const last = names.length - 1;
  return (line) => {
    const escaped = line.indexOf('\\') !== -1;
    const row: Record<string, unknown> = {};
    let start = 0;
    for (let i = 0; i <= last; i++) {
      let end = i === last ? line.length : line.indexOf('\t', start);
      if (end === -1) end = line.length;
      const text = line.slice(start, end);
      start = end + 1;
      const value = escaped ? unescapeField(text) : text;
      const parse = parsers[i];
      setField(row, names[i]!, value === null ? null : parse === undefined ? value : parse(value));
    }
    onRow(row);
  };
}

const TEXT_OID = 25;
const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

function unescapeField(field: string): string | null {
  if (field === '\\N') return null;
  if (field.indexOf('\\') === -1) return field;
  return field.replace(/\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))/gs, (_all, octal?: string, hex?: string, char?: string) =>
    octal !== undefined ? String.fromCharCode(parseInt(octal, 8)) : hex !== undefined ? String.fromCharCode(parseInt(hex, 16)) : (ESCAPES[char!] ?? char!),
  );
}
