/**
 * Bulk reads for table-sync: one REPEATABLE READ READ ONLY transaction runs a prelude (values
 * bound, e.g. txid_current_snapshot() and the keyset cursor via set_config) and then
 * `COPY (SELECT …) TO STDOUT` in the same snapshot. COPY's text rows cost the client a fraction
 * of what DataRow messages parsed into objects cost (table-sync ran at 0.2-0.35× of a plain COPY),
 * and each row reaches the caller as it arrives, so memory is the caller's batch. COPY takes no
 * parameters: whatever varies is bound in the prelude and read back with current_setting().
 */
import { to as copyTo, type CopyToStreamQuery } from 'pg-copy-streams';
import { withDeadline } from './deadline.js';
import { PgActionsError, toPgActionsError } from './errors/index.js';
import { configOf, connect, failureContext } from './execute.js';
import { jsonSafeTypes } from './types.js';

export interface SnapshotCopy {
  /** Runs first in the transaction (its first statement takes the snapshot); its one row is returned. */
  prelude: { text: string; values: readonly unknown[] };
  /** The COPY (SELECT …) TO STDOUT statement, built once the prelude's row is known. */
  copy(prelude: Record<string, unknown>): string;
  /** One row: its fields in COPY text form (unescaped), null for NULL. */
  onRow(fields: (string | null)[]): void;
}

export interface SnapshotCopyResult {
  prelude: Record<string, unknown>;
  rows: number;
  bytes: number;
}

const GRACE_MS = 1000;

export async function copyInSnapshot(connection: unknown, request: SnapshotCopy): Promise<SnapshotCopyResult> {
  const config = configOf(connection);
  const { client } = await connect(config);
  const deadline = config.statementTimeoutMs + GRACE_MS;
  let current = 'BEGIN';
  let discard = false;
  try {
    // A literal formatted from a validated integer: safe to write into SQL.
    await withDeadline(client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT set_config('statement_timeout', '${Math.trunc(config.statementTimeoutMs)}', true)`), deadline);
    current = request.prelude.text;
    const prelude = (await withDeadline(client.query(request.prelude.text, request.prelude.values as unknown[]), deadline)).rows[0] ?? {};
    current = request.copy(prelude);
    const copied = await withDeadline(copyOut(client as never, current, request.onRow, config.maxResultBytes), deadline);
    current = 'COMMIT';
    await withDeadline(client.query('COMMIT'), deadline);
    return { prelude, ...copied };
  } catch (error) {
    discard = true; // a COPY stopped half-way, a timeout, a broken session: never reuse it
    if (error instanceof PgActionsError) throw error;
    throw toPgActionsError(error, { ...failureContext(config, 'statement'), query: current, parameters: current === request.prelude.text ? request.prelude.values : undefined });
  } finally {
    client.release(discard || undefined);
  }
}

/**
 * COPY … TO STDOUT through pg-copy-streams, which reads the socket itself: a few large chunks per
 * batch instead of one parsed message (and Buffer) per row. Each chunk is decoded once and split
 * into rows; a row cut between chunks waits for the next one.
 */
function copyOut(client: { query(stream: CopyToStreamQuery): CopyToStreamQuery }, text: string, onRow: (fields: (string | null)[]) => void, maxBytes: number): Promise<{ rows: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyTo(text));
    let rows = 0;
    let bytes = 0;
    let rest: Buffer | undefined;
    let failed = false;
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      stream.destroy();
      reject(error);
    };
    stream.on('data', (data: Buffer) => {
      if (failed) return;
      bytes += data.length;
      if (bytes > maxBytes) {
        fail(new PgActionsError('RESULT_TOO_LARGE', {
          message: `One batch passed maxResultBytes (${maxBytes} bytes of COPY text); reading stopped.`,
          fixes: ['Lower batchSize (rows per batch).', 'Raise the connection\'s maxResultBytes (at most 256 MiB).'],
        }));
        return;
      }
      const chunk = rest ? Buffer.concat([rest, data]) : data;
      const end = chunk.lastIndexOf(10);
      if (end === -1) {
        rest = chunk;
        return;
      }
      rest = end + 1 < chunk.length ? chunk.subarray(end + 1) : undefined;
      const lines = chunk.toString('utf8', 0, end).split('\n');
      try {
        for (const line of lines) onRow(splitRow(line));
      } catch (error) {
        fail(error);
        return;
      }
      rows += lines.length;
    });
    stream.on('error', fail);
    stream.on('end', () => (failed ? undefined : resolve({ rows, bytes })));
  });
}

/** A COPY text-format line → its fields: tab-separated, \N is NULL, backslash escapes decoded. */
export function splitRow(line: string): (string | null)[] {
  const fields: (string | null)[] = line.split('\t');
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i] as string;
    if (field.charCodeAt(0) !== 92 /* \ */ && field.indexOf('\\') === -1) continue;
    fields[i] = field === '\\N' ? null : unescapeField(field);
  }
  return fields;
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

function unescapeField(field: string): string {
  return field.replace(/\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))/gs, (_all, octal?: string, hex?: string, char?: string) =>
    octal !== undefined ? String.fromCharCode(parseInt(octal, 8)) : hex !== undefined ? String.fromCharCode(parseInt(hex, 16)) : (ESCAPES[char!] ?? char!),
  );
}

/** The parser Query Rows uses for a column of type `oid`, in PostgreSQL's text form (COPY's too). */
export function textParser(oid: number): (text: string) => unknown {
  return jsonSafeTypes.getTypeParser(oid);
}
