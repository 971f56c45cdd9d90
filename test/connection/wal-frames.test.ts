/**
 * REVIEW8 R151: the filter in front of a replication session's parser. A logical message larger than
 * MESSAGE_KEPT_BYTES comes out without prefix or content (its position kept), whatever the chunks the
 * socket cut the stream into; every other byte comes out as it went in.
 */
import fc from 'fast-check';
import { EventEmitter } from 'node:events';
import { filterWalFrames, MESSAGE_KEPT_BYTES, WalFrameFilter } from '../../connection/wal-frames.js';

function protocolMessage(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0);
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** CopyData holding XLogData ('w', start, end, send time) around a pgoutput message. */
function xlog(pgoutput: Buffer, start = 0x1234n): Buffer {
  const header = Buffer.alloc(25);
  header.write('w', 0);
  header.writeBigUInt64BE(start, 1);
  header.writeBigUInt64BE(start + 8n, 9);
  header.writeBigUInt64BE(777n, 17);
  return protocolMessage('d', Buffer.concat([header, pgoutput]));
}

/** pgoutput's Message: 'M', [xid], flags, LSN, prefix NUL-terminated, content length, content. */
function logicalMessage(prefix: string, content: Buffer, lsn: bigint, xid?: number): Buffer {
  const head = Buffer.alloc(1 + (xid === undefined ? 0 : 4) + 1 + 8);
  head.write('M', 0);
  let at = 1;
  if (xid !== undefined) at = head.writeUInt32BE(xid, at);
  at = head.writeUInt8(xid === undefined ? 0 : 1, at);
  head.writeBigUInt64BE(lsn, at);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(content.length);
  return Buffer.concat([head, Buffer.from(`${prefix}\0`), length, content]);
}

const small = (tag: string, size: number) => xlog(Buffer.concat([Buffer.from(tag), Buffer.alloc(size, 7)]));
const streamStart = xlog(Buffer.from([0x53, 0, 0, 1, 0xf4, 1]));
const streamStop = xlog(Buffer.from([0x45]));
const keepalive = protocolMessage('d', Buffer.concat([Buffer.from('k'), Buffer.alloc(17, 1)]));
const heartbeat = xlog(logicalMessage('pg-actions-heartbeat', Buffer.alloc(0), 0xaan));
const big = (xid?: number) => xlog(logicalMessage('someone-else', Buffer.alloc(3 * MESSAGE_KEPT_BYTES, 0x41), 0xbbn, xid));
const emptiedBig = (xid?: number) => xlog(logicalMessage('', Buffer.alloc(0), 0xbbn, xid));

// A stream as the walsender sends it: changes, our heartbeat, a large foreign message outside and inside a stream block.
const sent = [protocolMessage('W', Buffer.alloc(3)), small('B', 20), small('I', 5000), heartbeat, big(), keepalive, streamStart, small('I', 40), big(500), streamStop, small('C', 25), big(), protocolMessage('c', Buffer.alloc(0))];
const expected = Buffer.concat(sent.map((message) => (message === sent[4] || message === sent[11] ? emptiedBig() : message === sent[8] ? emptiedBig(500) : message)));

function run(chunks: Buffer[]): Buffer {
  const filter = new WalFrameFilter();
  return Buffer.concat(chunks.map((chunk) => filter.filter(chunk)));
}

test('large logical messages come out emptied (the xid kept inside a stream block), the rest byte for byte', () => {
  const input = Buffer.concat(sent);
  expect(run([input]).equals(expected)).toBe(true);
  // Every chunk edge a socket may make: one byte at a time too.
  expect(run([...input].map((byte) => Buffer.from([byte]))).equals(expected)).toBe(true);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: input.length - 1 }), { maxLength: 40 }), (cuts) => {
      const edges = [0, ...[...new Set(cuts)].sort((a, b) => a - b), input.length];
      return run(edges.slice(1).map((end, i) => input.subarray(edges[i]!, end))).equals(expected);
    }),
    { numRuns: 300 },
  );
});

test('a chunk with nothing to replace goes on as the same buffer (no copy); messages up to the limit pass whole', () => {
  const filter = new WalFrameFilter();
  const chunk = Buffer.concat([small('B', 20), heartbeat, xlog(logicalMessage('x', Buffer.alloc(MESSAGE_KEPT_BYTES - 100, 1), 1n)), keepalive]);
  expect(filter.filter(chunk)).toBe(chunk);
});

test("only XLogData's logical messages over the limit are replaced: a message of exactly the limit, other CopyData and other protocol messages with 'M' where the tag would be pass whole", () => {
  const atLimit = xlog(logicalMessage('x', Buffer.alloc(MESSAGE_KEPT_BYTES - 5 - 25 - 1 - 1 - 8 - 2 - 4, 1), 2n));
  expect(atLimit.length).toBe(MESSAGE_KEPT_BYTES);
  const notXlog = protocolMessage('d', Buffer.alloc(3 * MESSAGE_KEPT_BYTES, 0x4d)); // CopyData, but not 'w'
  const dataRow = protocolMessage('D', Buffer.alloc(3 * MESSAGE_KEPT_BYTES, 0x4d)); // 'w' at the XLogData byte, 'M' at the tag's
  dataRow[5] = 0x77;
  const input = Buffer.concat([atLimit, notXlog, dataRow]);
  expect(new WalFrameFilter().filter(input)).toBe(input);
});

test("a chunk that ends right after a large message's head still carries the replacement, not the original head", () => {
  const message = big();
  const before = small('B', 20);
  const filter = new WalFrameFilter();
  const head = 5 + 25 + 1 + 4 + 1 + 8;
  const out = [filter.filter(Buffer.concat([before, message.subarray(0, head)])), filter.filter(message.subarray(head))];
  expect(Buffer.concat(out).equals(Buffer.concat([before, emptiedBig()]))).toBe(true);
});

test("filterWalFrames: the connection's parser reads the filtered bytes (never an empty chunk) and the stream's end", () => {
  const seen: Buffer[] = [];
  let ended = false;
  const connection = { attachListeners: (stream: EventEmitter) => void (stream.on('data', (piece: Buffer) => seen.push(piece)), stream.on('end', () => (ended = true))) };
  filterWalFrames(connection);
  const socket = new EventEmitter();
  connection.attachListeners(socket);
  const message = big();
  socket.emit('data', message.subarray(0, 100));
  socket.emit('data', message.subarray(100, 200)); // dropped whole: nothing to hand on
  socket.emit('data', Buffer.concat([message.subarray(200), heartbeat]));
  socket.emit('end');
  expect(seen.every((piece) => piece.length > 0)).toBe(true);
  expect(Buffer.concat(seen).equals(Buffer.concat([emptiedBig(), heartbeat]))).toBe(true);
  expect(ended).toBe(true);
});
