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
  stream: { cork?: () => void; uncork?: () => void; writable?: boolean; write(data: Buffer): boolean };
}

/** Parse, Bind (values as text parameters), Describe and Execute of one unnamed statement; the caller writes Sync. */
export function writeUnnamed(con: PgConnection, text: string, values: readonly unknown[]): void {
  con.parse({ text, types: [] });
  con.bind({ values, valueMapper: toParameter });
  con.describe({ type: 'P', name: '' });
  con.execute({ portal: '', rows: 0 });
}

/** Parse, Bind and Execute of a fixed statement without values (no Describe: its rows are not read by name). */
export function writeFixed(con: PgConnection, text: string): void {
  con.parse({ text, types: [] });
  con.bind({ values: [], valueMapper: toParameter });
  con.execute({ portal: '', rows: 0 });
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
