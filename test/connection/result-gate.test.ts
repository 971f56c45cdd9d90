/**
 * The gate reads protocol headers across arbitrary socket chunk boundaries: whatever the split,
 * the parser receives exactly the bytes of the stream (minus DataRows when discarding), and
 * rows are charged before any of their bytes are forwarded.
 */
import fc from 'fast-check';
import { ResultGate, ROW_OVERHEAD_BYTES, COLUMN_OVERHEAD_BYTES, MAX_SERVER_TEXT_BYTES, TRUNCATION_MARK, type ResultBudget } from '../../connection/result-gate.js';

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

function fields(code: string, entries: [string, string][]): Buffer {
  const body = Buffer.concat([...entries.map(([type, value]) => Buffer.from(`${type}${value}\0`)), Buffer.from([0])]);
  return message(code, body);
}

test('an error or notice larger than the limit reaches the parser cut, its leading fields whole, whatever the split', () => {
  fc.assert(
    fc.property(fc.constantFrom('E', 'N'), fc.array(fc.nat(), { maxLength: 20 }), (code, rawCuts) => {
      const huge = fields(code, [['S', 'ERROR'], ['C', '22P02'], ['M', 'bad: ' + 'x'.repeat(3 * MAX_SERVER_TEXT_BYTES)], ['D', 'never seen']]);
      const stream = Buffer.concat([huge, ready]);
      const cuts = rawCuts.map((n) => n % (stream.length + 1));
      const gate = new ResultGate(Infinity, () => {});
      gate.arm(budget(Infinity));
      const out = feed(gate, stream, cuts);
      const cut = out.subarray(0, out.length - ready.length);
      expect(out.subarray(cut.length).equals(ready)).toBe(true);
      expect(String.fromCharCode(cut[0]!)).toBe(code);
      expect(cut.readUInt32BE(1)).toBe(cut.length - 1); // a well-formed message
      expect(cut.length).toBeLessThanOrEqual(MAX_SERVER_TEXT_BYTES + TRUNCATION_MARK.length + 8);
      const text = cut.subarray(5).toString();
      expect(text.startsWith('SERROR\0C22P02\0Mbad: xxx')).toBe(true);
      expect(text.endsWith(`${TRUNCATION_MARK}\0\0`)).toBe(true);
      expect(text).not.toContain('never seen');
    }),
  );
});

test('an error under the limit passes unchanged', () => {
  const small = fields('E', [['S', 'ERROR'], ['C', '22P02'], ['M', 'x'.repeat(MAX_SERVER_TEXT_BYTES - 100)]]);
  const gate = new ResultGate(Infinity, () => {});
  expect(feed(gate, Buffer.concat([small, ready]), [3, 9000]).equals(Buffer.concat([small, ready]))).toBe(true);
});

test('an oversize notification keeps its pid and channel and a cut payload', () => {
  const pid = Buffer.alloc(4);
  pid.writeInt32BE(4242);
  const huge = message('A', Buffer.concat([pid, Buffer.from('chan\0'), Buffer.from('p'.repeat(2 * MAX_SERVER_TEXT_BYTES)), Buffer.from([0])]));
  const gate = new ResultGate(Infinity, () => {});
  const out = feed(gate, huge, [1, 100, 20_000]);
  expect(out.readUInt32BE(1)).toBe(out.length - 1);
  expect(out.readInt32BE(5)).toBe(4242);
  expect(out.subarray(9, 14).toString()).toBe('chan\0');
  expect(out.subarray(out.length - Buffer.byteLength(TRUNCATION_MARK) - 1).toString()).toBe(`${TRUNCATION_MARK}\0`);
});

test('COPY … TO STDOUT data is charged against the budget like rows', () => {
  const copyRow = message('d', Buffer.from('x'.repeat(5000)));
  let told = 0;
  const gate = new ResultGate(Infinity, () => {});
  gate.arm(budget(12_000, false, () => told++));
  const forwarded = feed(gate, Buffer.concat([copyRow, copyRow, copyRow, ready]), []);
  expect(forwarded.equals(Buffer.concat([copyRow, copyRow]))).toBe(true);
  expect(told).toBe(1);
});

test('rows of the statements before the step (set_config() results) are dropped unparsed and not charged', () => {
  const setupRow = dataRow(['60000', '1000']);
  const stepRow = dataRow(['x']);
  const setComplete = message('C', Buffer.from('SELECT 1\0'));
  const stream = Buffer.concat([setupRow, setComplete, stepRow, complete, ready]);
  const gate = new ResultGate(Infinity, () => {});
  const b = { ...budget(Infinity), firstCounted: 1 };
  gate.arm(b);
  expect(feed(gate, stream, [4, 30]).equals(Buffer.concat([setComplete, stepRow, complete, ready]))).toBe(true);
  expect(b.used).toBe(stepRow.length + ROW_OVERHEAD_BYTES + COLUMN_OVERHEAD_BYTES);
});

test('a copySink gets each CopyData payload whole (in pieces, the last marked), whatever the split; only the other messages are forwarded', () => {
  const lines = fc.array(fc.string({ maxLength: 60, unit: 'binary' }).map((text) => `${text.replace(/\n/g, ' ')}\n`), { maxLength: 12 });
  fc.assert(
    fc.property(lines, fc.array(fc.nat(), { maxLength: 30 }), (texts, rawCuts) => {
      const copyOut = message('H', Buffer.from([0, 0, 1, 0, 0]));
      const copyDone = message('c', Buffer.alloc(0));
      const copies = texts.map((text) => message('d', Buffer.from(text)));
      const stream = Buffer.concat([copyOut, ...copies, copyDone, complete, ready]);
      const cuts = rawCuts.map((n) => n % (stream.length + 1));
      const gate = new ResultGate(Infinity, () => {});
      const received: string[] = [];
      let current: Buffer[] = [];
      gate.arm({
        ...budget(Infinity),
        copySink: (data, start, end, last) => {
          current.push(Buffer.from(data.subarray(start, end)));
          if (last) (received.push(Buffer.concat(current).toString()), (current = []));
        },
      });
      const forwarded = feed(gate, stream, cuts);
      expect(forwarded.equals(Buffer.concat([copyOut, copyDone, complete, ready]))).toBe(true);
      expect(received).toEqual(texts);
      expect(current).toEqual([]);
    }),
  );
});
