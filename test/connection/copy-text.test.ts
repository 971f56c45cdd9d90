/**
 * The COPY text decoder of table-sync: a row cut anywhere (inside a multi-byte character too)
 * across socket chunks decodes the same; escapes, NULL and each column's parser as Query Rows.
 */
import { CopyTextRows } from '../../connection/copy-text.js';

const columns = [{ name: 'id', oid: 23 }, { name: 'name', oid: 25 }, { name: 'tags', oid: 1009 }, { name: 'doc', oid: 3802 }];
const line = Buffer.from('42\té ✓ 𝄞 tab\\there\\\\back\t{a,"b c",NULL}\t{"x": [1, "\\\\t"]}\n');
const expected = { id: 42, name: 'é ✓ 𝄞 tab\there\\back', tags: ['a', 'b c', null], doc: { x: [1, '\t'] } };

test('one message in one piece, and cut at every byte: the same row', () => {
  const whole: Record<string, unknown>[] = [];
  new CopyTextRows(columns, (row) => whole.push(row)).piece(line, 0, line.length, true);
  expect(whole).toEqual([expected]);
  for (let cut = 0; cut <= line.length; cut++) {
    const rows: Record<string, unknown>[] = [];
    const decoder = new CopyTextRows(columns, (row) => rows.push(row));
    // Pieces come from reused socket buffers: what the decoder keeps must be its own copy.
    const first = Buffer.from(line.subarray(0, cut));
    decoder.piece(first, 0, first.length, false);
    first.fill(0);
    decoder.piece(line, cut, line.length, true);
    expect({ cut, rows }).toEqual({ cut, rows: [expected] });
    expect(decoder.rows).toBe(1);
  }
});

test('NULL (\\N) against the text \\N, and a message that is not a whole line is refused', () => {
  const rows: Record<string, unknown>[] = [];
  const decoder = new CopyTextRows([{ name: 'a', oid: 25 }, { name: 'b', oid: 25 }], (row) => rows.push(row));
  const text = Buffer.from('\\N\t\\\\N\n');
  decoder.piece(text, 0, text.length, true);
  expect(rows).toEqual([{ a: null, b: '\\N' }]);
  expect(() => decoder.piece(text, 0, text.length - 1, true)).toThrow('a COPY row did not end with a newline');
});
