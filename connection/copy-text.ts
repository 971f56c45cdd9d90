/**
 * COPY … TO STDOUT text rows → row objects, values parsed as Query Rows parses them. The server
 * sends one row per CopyData message ("messages sent from the backend will always correspond to
 * single data rows", protocol docs). A batch's messages are gathered as bytes (no JS object per
 * row while they arrive, only each row's end and whether it has a backslash) and decoded at once by
 * flush(): an ASCII batch is read as one string, its fields cut from it; values of 13 characters or
 * more, which V8 would keep as slices pinning the whole batch's text, are read from the bytes on
 * their own. A batch with other characters is decoded line by line. Decoding each row as it
 * arrived cost a Buffer → string call per row and kept each row's objects alive across the
 * scavenges the rest of the batch triggered: table-sync was bound by the garbage collector.
 */
import { resultParser } from './result-types.js';
import { setField } from './row-field.js';

/** A column and its type as Query Rows sees it (result-types.ts): oid is a domain's base type; element, an unknown array's element type. */
export interface CopyColumn {
  name: string;
  oid: number;
  element?: number | null;
}

const NEWLINE = 10;
const BACKSLASH = 92;
/** V8 copies substrings shorter than this; longer ones are slices that keep their parent alive. */
const SLICE_MIN_LENGTH = 13;
const FIRST_BYTES = 64 * 1024;
/** Pieces shorter than this are copied byte by byte: cheaper than Buffer#copy's view and native call. */
const SHORT_PIECE = 64;

/**
 * A decoded row, its index and the batch's row count, and its text of the `keepText` columns as
 * PostgreSQL wrote it (unparsed, null: NULL): an array refilled for the next row, read it during the call.
 */
export type RowHandler = (row: Record<string, unknown>, index: number, count: number, keyText: readonly (string | null)[]) => void;

export class CopyTextRows {
  /** Rows received (whole messages). */
  rows = 0;
  /** Rows decoded by flush(). */
  private flushed = 0;
  readonly columns: number;
  private readonly names: string[];
  /** undefined: the text as it is. */
  private readonly parsers: (((text: string) => unknown) | undefined)[];
  /** The batch's COPY text so far: whole lines, then the start of a message still arriving. */
  private text: Buffer = Buffer.allocUnsafe(0);
  private used = 0;
  /** Where the message still arriving starts in `text`. */
  private messageStart = 0;
  /** Per row since the last flush: 1 when its text has a backslash (escapes to decode). */
  private escaped = new Uint8Array(1024);
  /** Per row since the last flush: where its line ends in `text` (its newline). */
  private ends = new Int32Array(1024);
  /** The message still arriving has a backslash. */
  private backslash = false;
  /** No byte above 0x7f since the last flush. */
  private ascii = true;
  /** Per column: its place in `keepText` (whose text, as PostgreSQL wrote it, each row hands to onRow), or -1. */
  private readonly slots: Int32Array;
  /** The row being decoded's text of the `keepText` columns (null: NULL): one array, refilled per row. */
  private readonly texts: (string | null)[];
  /** The last decoded row's text of the `keepText` columns (null: NULL), unparsed: exact for every type. */
  lastText: (string | null)[] | undefined;

  constructor(columns: readonly CopyColumn[], private readonly onRow: RowHandler, keepText: readonly string[] = []) {
    this.names = columns.map((column) => column.name);
    this.columns = columns.length;
    this.slots = new Int32Array(columns.length).fill(-1);
    keepText.forEach((name, slot) => {
      const at = this.names.indexOf(name);
      if (at === -1) throw new Error(`COPY returns no column ${JSON.stringify(name)}`);
      this.slots[at] = slot;
    });
    this.texts = keepText.map(() => null);
    this.parsers = columns.map((column) => resultParser({ base: column.oid, element: column.element ?? null }));
  }

  /**
   * Part of one CopyData message's payload: data[start, end); `last` when the message ends there.
   * Copied: the pieces come from socket buffers that are reused.
   */
  piece(data: Buffer, start: number, end: number, last: boolean): void {
    const length = end - start;
    if (this.used + length > this.text.length) this.grow(this.used + length);
    const text = this.text;
    let backslash = false;
    let high = 0;
    if (length < SHORT_PIECE) {
      let at = this.used;
      for (let i = start; i < end; i++) {
        const byte = data[i]!;
        if (byte === BACKSLASH) backslash = true;
        high |= byte;
        text[at++] = byte;
      }
    } else {
      data.copy(text, this.used, start, end);
      for (let i = start; i < end; i++) {
        const byte = data[i]!;
        if (byte === BACKSLASH) backslash = true;
        high |= byte;
      }
    }
    if (backslash) this.backslash = true;
    if (high > 0x7f) this.ascii = false;
    this.used += length;
    if (!last) return;
    if (this.used === this.messageStart) return; // an empty message: no row
    if (text[this.used - 1] !== NEWLINE) {
      this.used = this.messageStart;
      this.backslash = false;
      throw new Error('a COPY row did not end with a newline');
    }
    const row = this.rows - this.flushed;
    if (row === this.escaped.length) {
      const escaped = new Uint8Array(row * 2);
      escaped.set(this.escaped);
      this.escaped = escaped;
      const ends = new Int32Array(row * 2);
      ends.set(this.ends);
      this.ends = ends;
    }
    this.escaped[row] = this.backslash ? 1 : 0;
    this.ends[row] = this.used - 1;
    this.backslash = false;
    this.messageStart = this.used;
    this.rows++;
  }

  private grow(least: number): void {
    const grown = Buffer.allocUnsafe(Math.max(least, FIRST_BYTES, this.text.length * 2));
    this.text.copy(grown, 0, 0, this.used);
    this.text = grown;
  }

  /**
   * Decodes every whole row received since the last flush into onRow, in order: fields split on
   * tabs, \N is NULL, backslash escapes decoded (only in rows that have a backslash), each value
   * parsed by its column's parser.
   */
  flush(): void {
    const end = this.messageStart;
    if (end === 0) return;
    const bytes = this.text;
    const { escaped, ends } = this;
    const rows = this.rows - this.flushed;
    this.flushed = this.rows;
    // latin1 maps each byte to one character: when no byte is above 0x7f the text is ASCII and
    // its characters stand where its bytes do.
    const ascii = this.ascii && this.used === end; // (a message still arriving may have cleared it: then decode by line)
    const all = ascii ? bytes.toString('latin1', 0, end) : '';
    let lineStart = 0;
    for (let i = 0; i < rows; i++) {
      const lineEnd = ends[i]!;
      const row = ascii ? this.row(all, bytes, lineStart, lineEnd, escaped[i] === 1) : this.row(bytes.toString('utf8', lineStart, lineEnd), undefined, 0, -1, escaped[i] === 1);
      lineStart = lineEnd + 1;
      this.onRow(row, i, rows, this.texts);
    }
    if (rows > 0 && this.texts.length > 0) this.lastText = this.texts.slice();
    const rest = this.used - end;
    if (rest > 0) bytes.copy(bytes, 0, end, this.used);
    this.used = rest;
    this.messageStart = 0;
    this.ascii = rest === 0; // what is left of a message still arriving was not looked at again
    if (rest === 0 && bytes.length > FIRST_BYTES) this.text = Buffer.allocUnsafe(0); // a batch's bytes are not kept past it
  }

  /**
   * The row of line[start, end) (end -1: the whole line). With `bytes` (an ASCII batch, where
   * line is the batch's text) a long value is read from the bytes, not sliced from the batch.
   */
  private row(line: string, bytes: Buffer | undefined, start: number, end: number, escaped: boolean): Record<string, unknown> {
    const { names, parsers, slots } = this;
    if (end === -1) end = line.length;
    const row: Record<string, unknown> = {};
    const last = names.length - 1;
    for (let i = 0; i <= last; i++) {
      let fieldEnd = i === last ? end : line.indexOf('\t', start);
      if (fieldEnd === -1 || fieldEnd > end) fieldEnd = end;
      const raw = bytes !== undefined && fieldEnd - start >= SLICE_MIN_LENGTH ? bytes.toString('latin1', start, fieldEnd) : line.slice(start, fieldEnd);
      const field = escaped ? unescapeField(raw) : raw;
      start = fieldEnd + 1;
      if (slots[i] !== -1) this.texts[slots[i]!] = field;
      const parse = parsers[i];
      setField(row, names[i]!, field === null ? null : parse === undefined ? field : parse(field));
    }
    return row;
  }
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

function unescapeField(field: string): string | null {
  if (field === '\\N') return null;
  if (field.indexOf('\\') === -1) return field;
  return field.replace(/\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))/gs, (_all, octal?: string, hex?: string, char?: string) =>
    octal !== undefined ? String.fromCharCode(parseInt(octal, 8)) : hex !== undefined ? String.fromCharCode(parseInt(hex, 16)) : (ESCAPES[char!] ?? char!),
  );
}
