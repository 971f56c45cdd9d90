/**
 * The COPY decoder hands each row's text of the `keepText` columns, as PostgreSQL wrote it
 * (escapes decoded, unparsed), to onRow, and keeps the last row's as lastText: table-sync's event
 * ids (unique whenever the keys are, REVIEW6 R121) and its keyset cursor come from it.
 */
import { CopyTextRows } from '../../connection/copy-text.js';

const columns = [{ name: 'v', oid: 25 }, { name: 'j', oid: 3802 }, { name: 'n', oid: 23 }];

function decode(lines: string[], keepText?: string[]) {
  const seen: [Record<string, unknown>, (string | null)[]][] = [];
  const decoder = new CopyTextRows(columns, (row, _index, _count, keyText) => seen.push([row, [...keyText]]), keepText);
  for (const line of lines) {
    const bytes = Buffer.from(line);
    decoder.piece(bytes, 0, bytes.length, true);
  }
  decoder.flush();
  return { seen, lastText: decoder.lastText };
}

const lines = ['a\t{"n": 12345678901234567891}\t1\n', 'b\t{"n": "12345678901234567891"}\t2\n', 'tab\\tc\t{"s": "q\\\\"x"}\t3\n', 'ü\t[1.0]\t\\N\n'];

test('each row\'s text of the kept columns, in keepText\'s order, whatever their place among the columns', () => {
  const { seen, lastText } = decode(lines, ['n', 'j']);
  expect(seen.map(([, text]) => text)).toEqual([
    ['1', '{"n": 12345678901234567891}'],
    ['2', '{"n": "12345678901234567891"}'],
    ['3', '{"s": "q\\"x"}'],
    [null, '[1.0]'],
  ]);
  // The parsed values of the first two rows are one value; their texts are two.
  expect(seen[0]![0].j).toEqual(seen[1]![0].j);
  expect(seen.map(([row]) => row.v)).toEqual(['a', 'b', 'tab\tc', 'ü']);
  expect(lastText).toEqual([null, '[1.0]']);
});

test('an ASCII batch (fields cut from one string) and a batch with other characters give the same texts', () => {
  const ascii = decode(lines.slice(0, 3), ['j']);
  expect(ascii.seen.map(([, text]) => text)).toEqual([['{"n": 12345678901234567891}'], ['{"n": "12345678901234567891"}'], ['{"s": "q\\"x"}']]);
  const mixed = decode([...lines.slice(0, 3), 'é\t"é"\t4\n'], ['j']);
  expect(mixed.seen.map(([, text]) => text)).toEqual([...ascii.seen.map(([, text]) => text), ['"é"']]);
  expect(mixed.lastText).toEqual(['"é"']);
});

test('without keepText: no text, no lastText; a column COPY does not return is refused', () => {
  const { seen, lastText } = decode(lines);
  expect(seen.every(([, text]) => text.length === 0)).toBe(true);
  expect(lastText).toBeUndefined();
  expect(() => decode(lines, ['missing'])).toThrow('COPY returns no column "missing"');
});
