/**
 * The gate reads protocol headers across arbitrary socket chunk boundaries: whatever the split,
 * the parser receives exactly the bytes of the stream (minus DataRows when discarding), and
 * rows are charged before any of their bytes are forwarded.
 */
import fc from 'fast-check';
import { ResultGate, ROW_OVERHEAD_BYTES, COLUMN_OVERHEAD_BYTES, type ResultBudget } from '../../connection/result-gate.js';

function message(code: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(code, 0, 'latin1');
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}
function dataRow(values: (string | null)[]): Buffer {
  const parts = [Buffer.from([values.length >> 8, values.length & 255])];
  for (const value of values) {
    const length = Buffer.alloc(4);
    length.writeInt32BE(value === null ? -1 : Buffer.byteLength(value));
    parts.push(length, value === null ? Buffer.alloc(0) : Buffer.from(value));
  }
  return message('D', Buffer.concat(parts));
}
const ready = message('Z', Buffer.from('I'));
const complete = message('C', Buffer.from('SELECT 3\0'));

function feed(gate: ResultGate, stream: Buffer, cuts: number[]): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b).concat(stream.length)) {
    gate.filter(stream.subarray(at, cut), (piece) => out.push(Buffer.from(piece)));
    at = cut;
  }
  return Buffer.concat(out);
}
const budget = (limit: number, discardRows = false, onOverflow = () => {}): ResultBudget => ({
  limit, used: 0, rows: 0, completed: 0, discardRowsOf: discardRows ? 0 : undefined, onOverflow,
});

const rows = fc.array(fc.array(fc.option(fc.string({ maxLength: 40 })), { minLength: 1, maxLength: 5 }), { maxLength: 12 });

test('every split of the stream forwards it unchanged and charges each row once', () => {
  fc.assert(
    fc.property(rows, fc.array(fc.nat(), { maxLength: 30 }), (values, rawCuts) => {
      const rowMessages = values.map(dataRow);
      const stream = Buffer.concat([...rowMessages, complete, ready]);
      const cuts = rawCuts.map((n) => n % (stream.length + 1));
      const gate = new ResultGate(Infinity, () => {});
      const b = budget(Infinity);
      gate.arm(b);
      expect(feed(gate, stream, cuts).equals(stream)).toBe(true);
      expect(b.rows).toBe(values.length);
      const expected = rowMessages.reduce((sum, row, i) => sum + row.length + ROW_OVERHEAD_BYTES + values[i]!.length * COLUMN_OVERHEAD_BYTES, 0);
      expect(b.used).toBe(expected);
    }),
  );
});

test("discarding drops exactly the DataRows of the statement's own rows, whatever the split", () => {
  fc.assert(
    fc.property(rows, fc.array(fc.nat(), { maxLength: 30 }), (values, rawCuts) => {
      // The step's rows are dropped; a later statement's row in the same round trip (the session probe) is not.
      const probe = dataRow(['', 'f', 'settings']);
      const stream = Buffer.concat([...values.map(dataRow), complete, probe, complete, ready]);
      const cuts = rawCuts.map((n) => n % (stream.length + 1));
      const gate = new ResultGate(Infinity, () => {});
      // Dropped rows cost nothing: a budget of exactly the probe's cost is enough.
      gate.arm(budget(probe.length + ROW_OVERHEAD_BYTES + 3 * COLUMN_OVERHEAD_BYTES, true));
      expect(feed(gate, stream, cuts).equals(Buffer.concat([complete, probe, complete, ready]))).toBe(true);
    }),
  );
});

test('past the limit nothing of the row that passed it is forwarded, and overflow is told once', () => {
  const small = dataRow(['a']);
  const huge = dataRow(['x'.repeat(100_000)]);
  const stream = Buffer.concat([small, huge, complete, ready]);
  let told = 0;
  const gate = new ResultGate(Infinity, () => {});
  gate.arm(budget(small.length + ROW_OVERHEAD_BYTES + COLUMN_OVERHEAD_BYTES + 1000, false, () => told++));
  // Only the huge row's 7-byte header is in the first chunk: it is refused before its body arrives.
  const forwarded = feed(gate, stream, [small.length + 7, small.length + 5000]);
  expect(forwarded.equals(small)).toBe(true);
  expect(told).toBe(1);
});
