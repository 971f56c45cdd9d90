/**
 * COPY … TO STDOUT text rows → row objects, values parsed as Query Rows parses them. The server
 * sends one row per CopyData message ("messages sent from the backend will always correspond to
 * single data rows", protocol docs), so a complete message is one line: it is decoded once, from
 * the socket's bytes, with no per-row Buffer, array or closure. This runs for every row of a sync.
 */
import { setField } from './row-field.js';
import { jsonSafeTypes } from './types.js';

export interface CopyColumn {
  name: string;
  oid: number;
}

const TEXT_OID = 25;
const NEWLINE = 10;

export class CopyTextRows {
  rows = 0;
  readonly columns: number;
  private readonly names: string[];
  /** undefined: the text as it is. */
  private readonly parsers: (((text: string) => unknown) | undefined)[];
  /** The start of a row whose message was cut by the end of a socket chunk. */
  private pieces: Buffer[] | undefined;

  constructor(columns: readonly CopyColumn[], private readonly onRow: (row: Record<string, unknown>) => void) {
    this.names = columns.map((column) => column.name);
    this.columns = columns.length;
    const asText = jsonSafeTypes.getTypeParser(TEXT_OID);
    this.parsers = columns.map((column) => {
      const parse = jsonSafeTypes.getTypeParser(column.oid);
      return parse === asText ? undefined : parse;
    });
  }

  /** Part of one CopyData message's payload: data[start, end); `last` when the message ends there. */
  piece(data: Buffer, start: number, end: number, last: boolean): void {
    if (!last) {
      (this.pieces ??= []).push(Buffer.from(data.subarray(start, end)));
      return;
    }
    if (this.pieces) {
      this.pieces.push(data.subarray(start, end));
      data = Buffer.concat(this.pieces);
      this.pieces = undefined;
      start = 0;
      end = data.length;
    }
    if (end === start) return;
    if (data[end - 1] !== NEWLINE) throw new Error('a COPY row did not end with a newline');
    this.line(data.toString('utf8', start, end - 1));
  }

  /**
   * One line: fields split on tabs, \N is NULL, backslash escapes decoded (only looked for when
   * the line has a backslash at all), each value parsed by its column's parser.
   */
  line(line: string): void {
    const { names, parsers } = this;
    const escaped = line.indexOf('\\') !== -1;
    const row: Record<string, unknown> = {};
    const last = names.length - 1;
    let start = 0;
    for (let i = 0; i <= last; i++) {
      let end = i === last ? line.length : line.indexOf('\t', start);
      if (end === -1) end = line.length;
      const text = escaped ? unescapeField(line.slice(start, end)) : line.slice(start, end);
      start = end + 1;
      const parse = parsers[i];
      setField(row, names[i]!, text === null ? null : parse === undefined ? text : parse(text));
    }
    this.rows++;
    this.onRow(row);
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
