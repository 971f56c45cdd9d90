/**
 * The floor under table-sync's goal (≥ 0.5× `COPY … TO STDOUT`): how fast raw node-postgres,
 * without pg-actions, delivers the same table as one JavaScript value per row, handed over in
 * batches of BATCH rows as a trigger hands over its events. Each reader returns the rows it read.
 *   - pg-cursor over `SELECT *` (rows as objects, and rowMode 'array');
 *   - keyset batches `WHERE id > $1 ORDER BY id LIMIT n` (what a resumable reader asks for);
 *   - one `SELECT *` (pg's plain path: every row object held until the end);
 *   - COPY text cut into lines by hand (a string per row; fields as arrays; a 3-property object
 *     with the id as a number): the least a COPY-based reader can cost. This table's text has no backslash, so no
 *     unescaping is done: a real reader pays a little more.
 */
import pg from 'pg';
import Cursor from 'pg-cursor';
import { to as copyTo } from 'pg-copy-streams';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const BATCH = 10_000;

export type FloorReader = (client: pg.Client) => Promise<number>;

async function viaCursor(client: pg.Client, rowMode?: 'array'): Promise<number> {
  const cursor = client.query(new Cursor('SELECT * FROM sync_bench', [], rowMode ? { rowMode } : {}));
  let rows = 0;
  try {
    for (;;) {
      const batch = await cursor.read(BATCH);
      if (batch.length === 0) return rows;
      rows += batch.length;
    }
  } finally {
    await cursor.close();
  }
}

async function keysetBatches(client: pg.Client): Promise<number> {
  let rows = 0;
  let last = -Infinity;
  for (;;) {
    const batch = await client.query('SELECT * FROM sync_bench WHERE id > $1 ORDER BY id LIMIT $2', [last === -Infinity ? -2147483648 : last, BATCH]);
    if (batch.rows.length === 0) return rows;
    rows += batch.rows.length;
    last = batch.rows[batch.rows.length - 1].id;
  }
}

async function oneQuery(client: pg.Client): Promise<number> {
  return (await client.query('SELECT * FROM sync_bench')).rows.length;
}

/** COPY's text cut into rows of `make(line)`, delivered (dropped) every BATCH rows. */
async function copyParsed(client: pg.Client, make: (line: string) => unknown): Promise<number> {
  let rows = 0;
  let carry = '';
  let batch: unknown[] = [];
  const take = (line: string) => {
    batch.push(make(line));
    if (batch.length === BATCH) (rows += batch.length, (batch = []));
  };
  await pipeline(
    client.query(copyTo('COPY sync_bench TO STDOUT')),
    new Writable({
      write(chunk: Buffer, _encoding, next) {
        const text = carry + chunk.toString('utf8'); // COPY sends whole rows per message here; the carry keeps it general
        let start = 0;
        for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
          take(text.slice(start, end));
          start = end + 1;
        }
        carry = text.slice(start);
        next();
      },
    }),
  );
  return rows + batch.length;
}

const objectOf = (line: string) => {
  const fields = line.split('\t');
  return { id: Number(fields[0]), name: fields[1], amount: fields[2] };
};

export const syncFloors: Record<string, { label: string; read: FloorReader }> = {
  cursorObjects: { label: `floor: pg-cursor SELECT * in batches of ${BATCH.toLocaleString('en')}, row objects`, read: (c) => viaCursor(c) },
  cursorArrays: { label: `floor: pg-cursor SELECT *, rowMode 'array'`, read: (c) => viaCursor(c, 'array') },
  keysetObjects: { label: `floor: keyset batches (WHERE id > $1 ORDER BY id LIMIT ${BATCH.toLocaleString('en')}), row objects`, read: keysetBatches },
  oneQuery: { label: 'floor: one SELECT * (all row objects held), pg Client.query', read: oneQuery },
  copyLines: { label: 'floor: COPY text cut into one string per row (pg-copy-streams)', read: (c) => copyParsed(c, (line) => line) },
  copyArrays: { label: 'floor: COPY text split into field arrays', read: (c) => copyParsed(c, (line) => line.split('\t')) },
  copyObjects: { label: 'floor: COPY text → { id: number, name, amount } objects', read: (c) => copyParsed(c, objectOf) },
};
