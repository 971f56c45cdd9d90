/**
 * Reads a file or stdin whole, but never more than a cap: `--input @/dev/zero` or an endless pipe
 * must stop with a usage error naming the cap, not grow until the process aborts.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export const MAX_ARGUMENT_BYTES = 16 * 1024 * 1024;

const CHUNK = 64 * 1024;

/** The text of `path` ('-' is stdin), or undefined when it is larger than `limit` bytes. */
export function readAtMost(path: string, limit = MAX_ARGUMENT_BYTES): string | undefined {
  const fd = path === '-' ? 0 : openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK);
      const read = readChunk(fd, chunk);
      if (read === 0) break;
      size += read;
      if (size > limit) return undefined;
      chunks.push(read === CHUNK ? chunk : chunk.subarray(0, read));
    }
    return Buffer.concat(chunks, size).toString('utf8');
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}

/** readSync, waiting out EAGAIN on a non-blocking stdin (as readFileSync would fail on it). */
function readChunk(fd: number, buffer: Buffer): number {
  for (;;) {
    try {
      return readSync(fd, buffer, 0, buffer.length, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EOF') return 0;
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}
