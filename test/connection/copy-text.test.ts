/**
 * The COPY text decoder of table-sync: a row cut anywhere (inside a multi-byte character too)
 * across socket chunks decodes the same; escapes, NULL and each column's parser as Query Rows;
 * a batch's rows are decoded at once by flush(), escapes only where a row had a backslash.
 */
import { CopyTextRows } from '../../connection/copy-text.js';

const columns = [{ name: 'id', oid: 23 }, { name: 'name', oid: 25 }, { name: 'tags', oid: 1009 }, { name: 'doc', oid: 3802 }];
const line = Buffer.from('42\té ✓ 𝄞 tab\\there\\\\back\t{a,"b c",NULL}\t{"x": [1, "\\\\t"]}\n');
const expected = { id: 42, name: 'é ✓ 𝄞 tab\there\\back', tags: ['a', 'b c', null], doc: { x: [1, '\t'] } };

test('one message in one piece, and cut at every byte: the same row', () => {
  const whole: Record<string, unknown>[] = [];
  const decoder = new CopyTextRows(columns, (row) => whole.push(row));
  decoder.piece(line, 0, line.length, true);
  expect(whole).toEqual([]); // nothing before flush()
  decoder.flush();
  expect(whole).toEqual([expected]);
  for (let cut = 0; cut <= line.length; cut++) {
    const rows: Record<string, unknown>[] = [];
    const decoder = new CopyTextRows(columns, (row) => rows.push(row));
    // Pieces come from reused socket buffers: what the decoder keeps must be its own copy.
    const first = Buffer.from(line.subarray(0, cut));
    decoder.piece(first, 0, first.length, false);
    first.fill(0);
    decoder.piece(line, cut, line.length, true);
    decoder.flush();
    expect({ cut, rows }).toEqual({ cut, rows: [expected] });
    expect(decoder.rows).toBe(1);
  }
});

test('a batch of many rows: order, index and count, escapes decoded only in the rows that have them, long pieces too', () => {
  const seen: [Record<string, unknown>, number, number][] = [];
  const decoder = new CopyTextRows([{ name: 'a', oid: 25 }, { name: 'b', oid: 25 }], (row, index, count) => seen.push([row, index, count]));
  const long = 'x'.repeat(200);
  const texts = ['p\tq\n', 'tab\\there\t\\N\n', `${long}\t${long}\\\\\n`, 'plain\\\\\tz\n', '\\\\N\tlast\n', `${long}\t\\N\n`];
  for (const text of texts) {
    const bytes = Buffer.from(`junk${text}junk`);
    decoder.piece(bytes, 4, bytes.length - 4, true);
  }
  decoder.piece(Buffer.from('half'), 0, 4, false); // a message still arriving stays for the next flush
  decoder.flush();
  expect(seen).toEqual([
    [{ a: 'p', b: 'q' }, 0, 6],
    [{ a: 'tab\there', b: null }, 1, 6],
    [{ a: long, b: `${long}\\` }, 2, 6],
    [{ a: 'plain\\', b: 'z' }, 3, 6],
    [{ a: '\\N', b: 'last' }, 4, 6],
    [{ a: long, b: null }, 5, 6],
  ]);
  seen.length = 0;
  const rest = Buffer.from('\\\\\tx\n'); // the message's end has a backslash, its start had none
  decoder.piece(rest, 0, rest.length, true);
  decoder.flush();
  expect(seen).toEqual([[{ a: 'half\\', b: 'x' }, 0, 1]]);
});

test('NULL (\\N) against the text \\N, and a message that is not a whole line is refused', () => {
  const rows: Record<string, unknown>[] = [];
  const decoder = new CopyTextRows([{ name: 'a', oid: 25 }, { name: 'b', oid: 25 }], (row) => rows.push(row));
  const text = Buffer.from('\\N\t\\\\N\n');
  decoder.piece(text, 0, text.length, true);
  decoder.flush();
  expect(rows).toEqual([{ a: null, b: '\\N' }]);
  expect(() => decoder.piece(text, 0, text.length - 1, true)).toThrow('a COPY row did not end with a newline');
});
