/**
 * A table-sync batch is sized from the previous batch's bytes per row, a guess: rows further on
 * may be wider (a column filled only in newer rows). A batch whose COPY text passes maxResultBytes
 * is read again with half as many rows, down to one, instead of failing every poll the same way
 * (the state would not move, so each retry would ask the same batch).
 */
import { PgActionsError } from '../../connection/index.js';

export async function readShrinking<T>(rows: number, field: string, read: (rows: number) => Promise<T>): Promise<{ rows: number; result: T }> {
  for (let size = rows; ; size = Math.max(1, Math.floor(size / 2))) {
    try {
      return { rows: size, result: await read(size) };
    } catch (error) {
      if (!(error instanceof PgActionsError) || error.code !== 'RESULT_TOO_LARGE') throw error;
      if (size === 1) {
        throw new PgActionsError('RESULT_TOO_LARGE', {
          message: `${field}: one row alone passed maxResultBytes (as COPY text); reading stopped.`,
          fixes: ['Raise the connection\'s maxResultBytes (at most 256 MiB).'],
          cause: error,
        });
      }
    }
  }
}
