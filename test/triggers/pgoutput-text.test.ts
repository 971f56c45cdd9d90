/**
 * pgoutput tuples decoded from a spool block: with the block's latin1 text, short ASCII values are
 * cut from it; every other value (non-ASCII, 13 bytes or more) is decoded from the bytes as UTF-8.
 * Both ways give the same values, wherever the message sits in the block.
 */
import { decodePgOutput } from '../../triggers/replication/pgoutput.js';

function insertMessage(values: (string | null | 'unchanged')[]): Buffer {
  const parts: Buffer[] = [Buffer.from('I'), Buffer.alloc(4), Buffer.alloc(4), Buffer.from('N')];
  parts[1]!.writeUInt32BE(77); // streamed xid
  parts[2]!.writeUInt32BE(16384); // relation oid
  const count = Buffer.alloc(2);
  count.writeInt16BE(values.length);
  parts.push(count);
  for (const value of values) {
    if (value === null) parts.push(Buffer.from('n'));
    else if (value === 'unchanged') parts.push(Buffer.from('u'));
    else {
      const bytes = Buffer.from(value);
      const length = Buffer.alloc(4);
      length.writeInt32BE(bytes.length);
      parts.push(Buffer.from('t'), length, bytes);
    }
  }
  return Buffer.concat(parts);
}

test('short ASCII values from the block text, the others from the bytes: the same tuple', () => {
  const values = ['42', 'é', 'ab✓', 'twelve chars', 'thirteen char', 'a much longer ASCII value', 'ü'.repeat(20), '', null, 'unchanged'] as const;
  const message = insertMessage([...values]);
  const block = Buffer.concat([Buffer.from('ÿ\u0000 prefix é'), message]);
  const start = block.length - message.length;
  const expected = { tag: 'insert', relationOid: 16384, new: ['42', 'é', 'ab✓', 'twelve chars', 'thirteen char', 'a much longer ASCII value', 'ü'.repeat(20), '', null, { unchanged: true }] };
  expect(decodePgOutput(block, true, start)).toEqual(expected);
  expect(decodePgOutput(block, true, start, block.toString('latin1'))).toEqual(expected);
});
