/**
 * The parts of pg's Connection that pipelined statements are written with (pg's published types
 * leave them out), and the one way an unnamed statement with bound values is written.
 */
import { toParameter } from './values.js';

export interface PgConnection {
  parse(query: { text: string; name?: string; types?: number[] }): void;
  bind(config: { statement?: string; values: readonly unknown[]; valueMapper: (value: unknown) => unknown }): void;
  describe(message: { type: 'P' | 'S'; name: string }): void;
  execute(config: { portal: string; rows: number }): void;
  sync(): void;
  /** Asks the server to send what it has so far (it otherwise waits for Sync or a full buffer). */
  flush(): void;
  stream: { cork?: () => void; uncork?: () => void; writable?: boolean; write(data: Buffer): boolean };
}

/** Parse, Bind (values as text parameters), Describe and Execute of one unnamed statement; the caller writes Sync. */
export function writeUnnamed(con: PgConnection, text: string, values: readonly unknown[]): void {
  con.parse({ text, types: [] });
  con.bind({ values, valueMapper: toParameter });
  con.describe({ type: 'P', name: '' });
  con.execute({ portal: '', rows: 0 });
}

/**
 * Parse, Bind and Execute of a fixed statement without values (no Describe: its rows are not read
 * by name), as the protocol spells them: one constant buffer per text, not serialised per step
 * (behind a pooler a step writes several: BEGIN, its limits, the check, COMMIT…).
 */
export function writeFixed(con: PgConnection, text: string): void {
  let bytes = fixedStatements.get(text);
  if (!bytes) {
    if (fixedStatements.size >= MAX_FIXED_STATEMENTS) fixedStatements.clear();
    fixedStatements.set(text, (bytes = fixedStatementBytes(text)));
  }
  if (con.stream.writable !== false) con.stream.write(bytes);
}

/** pg-actions' own fixed SQL (a few texts per timeout value): bounded all the same. */
const MAX_FIXED_STATEMENTS = 256;
const fixedStatements = new Map<string, Buffer>();

function fixedStatementBytes(text: string): Buffer {
  const textBytes = Buffer.from(`${text}\0`, 'utf8');
  const parseLength = 4 + 1 + textBytes.length + 2;
  const parse = Buffer.alloc(1 + parseLength);
  let at = parse.write('P', 0, 'latin1');
  at = parse.writeInt32BE(parseLength, at);
  at += 1; // statement '' (its terminating zero)
  at += textBytes.copy(parse, at);
  parse.writeInt16BE(0, at); // parameter types
  return Buffer.concat([parse, bindExecuteBytes('')]);
}

/**
 * Bind (unnamed portal, no parameters, text results) of the statement `name` ('' for the unnamed
 * one), then Execute of all its rows, as the protocol spells them.
 */
export function bindExecuteBytes(name: string): Buffer {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const bindLength = 4 + 1 + nameBytes.length + 8;
  const bytes = Buffer.alloc(1 + bindLength + 10);
  let at = bytes.write('B', 0, 'latin1');
  at = bytes.writeInt32BE(bindLength, at);
  at += 1; // portal '' (its terminating zero)
  at += nameBytes.copy(bytes, at);
  at = bytes.writeInt16BE(0, at); // parameter format codes
  at = bytes.writeInt16BE(0, at); // parameters
  at = bytes.writeInt16BE(1, at); // one result format code for all columns…
  at = bytes.writeInt16BE(0, at); // …text
  at += bytes.write('E', at, 'latin1');
  at = bytes.writeInt32BE(9, at);
  at += 1; // portal ''
  bytes.writeInt32BE(0, at); // all rows
  return bytes;
}

/**
 * Writes one pipeline in a single corked write, ending in Sync. A write that throws (a value that
 * cannot be sent) still ends in Sync: the server discards what follows an error up to it.
 */
export function writePipeline(con: PgConnection, write: () => void, fail: (error: unknown) => void): void {
  con.stream.cork?.();
  try {
    write();
    con.sync();
  } catch (error) {
    con.sync();
    fail(error);
  } finally {
    con.stream.uncork?.();
  }
}
