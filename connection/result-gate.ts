/**
 * Sits between the socket and node-postgres' protocol parser and reads only message headers.
 * Each DataRow is charged what it will cost in memory (its bytes plus a per-row and a per-column
 * overhead, so 1,500 NULL columns are not free) before the parser sees a byte of it: past the
 * budget nothing more is forwarded, so a value larger than the cap never becomes a Buffer that
 * the parser grows to hold it, nor a JavaScript string (which past 512 MiB throws inside the
 * socket's data handler and ends the process). In discard mode DataRows are dropped unparsed.
 */

import { relayParserInput } from './parser-relay.js';

/** Measured on Node 20 (bench/): a row object and its slot in the rows array, and one property per column. */
export const ROW_OVERHEAD_BYTES = 96;
export const COLUMN_OVERHEAD_BYTES = 64;

/** What a statement may receive; `used` grows as rows pass the gate (and as parsers charge extra). */
export interface ResultBudget {
  limit: number;
  used: number;
  rows: number;
  /** Drop the rows of the statement at this position in the round trip unparsed (only the count is wanted). */
  discardRowsOf?: number;
  /** Rows of the statements before this position (set_config() and the like) are dropped unparsed and free. */
  firstCounted?: number;
  /** Rows of the statements after this position (the probe, the session reset) pass free of charge. */
  lastCounted?: number;
  /** Statements of the round trip completed so far (CommandComplete or EmptyQueryResponse seen). */
  completed: number;
  /** Called once, synchronously, when `used` passes `limit`. No further bytes reach the parser. */
  onOverflow: () => void;
  /**
   * COPY … TO STDOUT rows straight from the socket: each CopyData message's payload, in pieces
   * (`last` on its final piece), instead of through node-postgres' parser, which would make a
   * Buffer and a message object per row. Charged as before; nothing of them is forwarded.
   */
  copySink?: (data: Buffer, start: number, end: number, last: boolean) => void;
}

const DATA_ROW = 0x44; // 'D'
const COPY_DATA = 0x64; // 'd': COPY … TO STDOUT rows, charged like DataRows
const READY_FOR_QUERY = 0x5a; // 'Z'
const COMMAND_COMPLETE = 0x43; // 'C'
const EMPTY_QUERY = 0x49; // 'I'
const HEADER = 7; // code, int32 length, and for a DataRow its int16 column count
/**
 * Error, notice and notification texts come from the server (a RAISE NOTICE of 560 MB once ended
 * the process inside pg-protocol). One larger than this reaches the parser cut to this size,
 * its fields kept in order and the cut one marked, so its SQLSTATE and the start of its message survive.
 */
export const MAX_SERVER_TEXT_BYTES = 16 * 1024;
const SERVER_TEXT = new Set([0x45 /* 'E' error */, 0x4e /* 'N' notice */, 0x41 /* 'A' notification */]);
export const TRUNCATION_MARK = ' … [truncated by pg-actions]';

export class ResultGate {
  /** Applies to responses not read by a StatementRun (pg's own queries): a crash guard only. */
  private readonly fallback: ResultBudget;
  private budget: ResultBudget;
  /** The start of a header cut by the end of the last chunk, held back until it is complete. */
  private pending: Buffer | undefined;
  /** Bytes of the current message still to pass (forward, or skip when `skipping`). */
  private remaining = 0;
  private skipping = false;
  /** The current message is a CopyData payload going to this sink (budget.copySink). */
  private sink: ResultBudget['copySink'];
  /** The head of an oversize error/notice being skipped; forwarded shortened when it ends. */
  private cutHead: Buffer[] | undefined;
  private cutHeadBytes = 0;
  private tripped = false;

  constructor(hardLimit: number, onHardLimit: () => void) {
    this.fallback = { limit: hardLimit, used: 0, rows: 0, completed: 0, onOverflow: onHardLimit };
    this.budget = this.fallback;
  }

  /** The budget applies to every DataRow until disarm(). */
  arm(budget: ResultBudget): void {
    this.budget = budget;
  }

  disarm(budget: ResultBudget): void {
    if (this.budget === budget) this.budget = this.fallback;
  }

  /** Extra memory a parser is about to allocate (e.g. JSON structure); false once over the limit. */
  charge(budget: ResultBudget, bytes: number): boolean {
    budget.used += bytes;
    if (budget.used <= budget.limit) return true;
    this.trip(budget);
    return false;
  }

  /** Scans one socket chunk and hands the parser the parts it may read. */
  filter(chunk: Buffer, forward: (piece: Buffer) => void): void {
    if (this.tripped) return;
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let offset = 0;
    let start = 0; // first byte not yet forwarded or skipped
    const flush = (end: number) => {
      if (end > start) forward(data.subarray(start, end));
    };
    while (offset < data.length) {
      if (this.remaining > 0) {
        const step = Math.min(this.remaining, data.length - offset);
        if (this.skipping) {
          flush(offset);
          start = offset + step;
          if (this.cutHead) this.keepHead(data.subarray(offset, offset + step));
          else if (this.sink) this.sink(data, offset, offset + step, step === this.remaining);
        }
        offset += step;
        this.remaining -= step;
        if (this.remaining === 0 && this.cutHead) forward(this.shortened());
        continue;
      }
      const code = data[offset]!;
      if (data.length - offset < (code === DATA_ROW ? HEADER : 5)) {
        flush(offset);
        this.pending = Buffer.from(data.subarray(offset));
        return;
      }
      const length = data.readUInt32BE(offset + 1);
      this.skipping = false;
      this.sink = undefined;
      if (code === DATA_ROW) {
        const { completed, discardRowsOf, firstCounted = 0, lastCounted } = this.budget;
        this.skipping = discardRowsOf === completed || completed < firstCounted;
        const free = lastCounted !== undefined && completed > lastCounted;
        if (!this.admit(length, data.readUInt16BE(offset + 5), free)) return flush(offset);
      } else if (code === COMMAND_COMPLETE || code === EMPTY_QUERY) {
        this.budget.completed++;
      } else if (code === COPY_DATA) {
        if (!this.charge(this.budget, 1 + length + ROW_OVERHEAD_BYTES)) return flush(offset);
        if (this.budget.copySink) {
          // The 5 header bytes are skipped here (they are in this chunk); the payload goes to the sink.
          this.sink = this.budget.copySink;
          this.skipping = true;
          flush(offset);
          offset += 5;
          start = offset;
          this.remaining = length - 4;
          if (this.remaining === 0) this.sink(data, offset, offset, true);
          continue;
        }
      } else if (SERVER_TEXT.has(code) && length + 1 > MAX_SERVER_TEXT_BYTES) {
        this.skipping = true;
        this.cutHead = [];
        this.cutHeadBytes = 0;
      } else if (code === READY_FOR_QUERY && this.budget === this.fallback) {
        this.fallback.used = 0;
      }
      this.remaining = 1 + length;
    }
    flush(offset);
  }

  private keepHead(piece: Buffer): void {
    const room = MAX_SERVER_TEXT_BYTES - this.cutHeadBytes;
    if (room <= 0) return;
    const kept = Buffer.from(piece.subarray(0, room));
    this.cutHead!.push(kept);
    this.cutHeadBytes += kept.length;
  }

  /** The kept head re-framed as a whole message: complete fields as sent, the cut one marked, then the terminator. */
  private shortened(): Buffer {
    const head = Buffer.concat(this.cutHead!);
    this.cutHead = undefined;
    const code = head[0]!;
    const parts: Buffer[] = [];
    if (code === 0x41) {
      // NotificationResponse: pid, channel, payload; the payload (at most 8000 bytes from a real server) is what is cut.
      parts.push(head.subarray(5), Buffer.from(`${TRUNCATION_MARK}\0`));
    } else {
      let at = 5;
      while (at < head.length && head[at] !== 0) {
        const end = head.indexOf(0, at + 1);
        if (end < 0) {
          parts.push(head.subarray(at), Buffer.from(`${TRUNCATION_MARK}\0`));
          break;
        }
        parts.push(head.subarray(at, end + 1));
        at = end + 1;
      }
      parts.push(Buffer.from([0]));
    }
    const body = Buffer.concat(parts);
    const header = Buffer.alloc(5);
    header[0] = code;
    header.writeUInt32BE(body.length + 4, 1);
    return Buffer.concat([header, body]);
  }

  private admit(length: number, columns: number, free: boolean): boolean {
    const budget = this.budget;
    budget.rows++;
    if (this.skipping || free) return true;
    return this.charge(budget, 1 + length + ROW_OVERHEAD_BYTES + columns * COLUMN_OVERHEAD_BYTES);
  }

  private trip(budget: ResultBudget): void {
    if (this.tripped) return;
    this.tripped = true;
    budget.onOverflow();
  }
}

const gates = new WeakMap<object, ResultGate>();

/** The gate installed on a node-postgres Connection, if any. */
export function gateOf(connection: object): ResultGate | undefined {
  return gates.get(connection);
}

/**
 * Puts a gate in front of a node-postgres Connection's parser: its attachListeners(stream) is
 * given a relay that emits only what the gate forwards. Call before the client connects.
 */
export function installGate(connection: object, hardLimit: number): ResultGate {
  const gate = new ResultGate(hardLimit, () => (connection as { stream: { destroy(): void } }).stream.destroy());
  relayParserInput(connection, (chunk, forward) => gate.filter(chunk, forward));
  gates.set(connection, gate);
  return gate;
}
