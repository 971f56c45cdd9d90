/**
 * Decodes the messages of pgoutput, PostgreSQL's built-in logical decoding output plugin
 * (protocol version 1, plus version 2's Message and streamed transactions on PG14+), from the bytes of
 * one XLogData. Inside a stream block (Stream Start … Stream Stop) every data message carries the xid
 * of its (sub)transaction right after its tag: decode those with `inStream`.
 * https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 */
import type { Lsn } from './lsn.js';

/** One column value of a tuple: text, SQL NULL, or a TOASTed value the change left unchanged. */
export type TupleValue = string | null | { unchanged: true };

export interface RelationColumn {
  name: string;
  typeOid: number;
  /** Part of the replica identity (the key sent for old rows). */
  key: boolean;
}

export type PgOutputMessage =
  | { tag: 'begin'; finalLsn: Lsn; commitTime: bigint; xid: number }
  | { tag: 'commit'; commitLsn: Lsn; endLsn: Lsn; commitTime: bigint }
  | { tag: 'relation'; relationOid: number; schema: string; name: string; replicaIdentity: string; columns: RelationColumn[] }
  | { tag: 'insert'; relationOid: number; new: TupleValue[] }
  | { tag: 'update'; relationOid: number; old: TupleValue[] | null; oldKind: 'key' | 'full' | null; new: TupleValue[] }
  | { tag: 'delete'; relationOid: number; old: TupleValue[]; oldKind: 'key' | 'full' }
  | { tag: 'truncate'; relationOids: number[]; cascade: boolean; restartIdentity: boolean }
  | { tag: 'message'; transactional: boolean; lsn: Lsn; prefix: string; content: Buffer }
  | { tag: 'stream-start'; xid: number; first: boolean }
  | { tag: 'stream-stop' }
  | { tag: 'stream-commit'; xid: number; commitLsn: Lsn; endLsn: Lsn; commitTime: bigint }
  | { tag: 'stream-abort'; xid: number; subXid: number }
  | { tag: 'other'; code: string };

/** V8 copies substrings shorter than this; longer ones are slices that keep their parent alive. */
const SLICE_MIN_LENGTH = 13;

class Reader {
  /** The buffer as latin1 text (one character per byte), when many messages share the buffer: short ASCII values are cut from it. */
  text: string | undefined;
  constructor(
    public buffer: Buffer,
    public offset: number,
  ) {}
  // Plain byte arithmetic: Buffer's readInt*BE validate their argument on every call, per column here.
  byte(): number {
    this.need(1);
    return this.buffer[this.offset++]!;
  }
  char(): string {
    return String.fromCharCode(this.byte());
  }
  int16(): number {
    this.need(2);
    const b = this.buffer;
    const o = (this.offset += 2);
    return ((b[o - 2]! << 24) | (b[o - 1]! << 16)) >> 16;
  }
  int32(): number {
    this.need(4);
    const b = this.buffer;
    const o = (this.offset += 4);
    return (b[o - 4]! << 24) | (b[o - 3]! << 16) | (b[o - 2]! << 8) | b[o - 1]!;
  }
  uint32(): number {
    return this.int32() >>> 0;
  }
  private need(bytes: number): void {
    if (this.offset + bytes > this.buffer.length) throw new RangeError(`pgoutput: a message is cut short at byte ${this.offset}`);
  }
  int64(): bigint {
    const value = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }
  string(): string {
    const end = this.buffer.indexOf(0, this.offset);
    const text = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return text;
  }
  bytes(length: number): Buffer {
    const slice = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }
  tuple(): TupleValue[] {
    const count = this.int16();
    const values: TupleValue[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const kind = this.char();
      if (kind === 'n') values[i] = null;
      else if (kind === 'u') values[i] = { unchanged: true };
      else {
        const length = this.int32(); // 't' (text; binary is never requested)
        const start = this.offset;
        const end = (this.offset += length);
        values[i] = this.text !== undefined && length < SLICE_MIN_LENGTH && isAscii(this.buffer, start, end) ? this.text.slice(start, end) : this.buffer.toString('utf8', start, end); // no Buffer per value
      }
    }
    return values;
  }
}

/** Whether a message's first byte is a stream control message's tag (Stream Start, Stop, Commit, Abort: never inside a stream block's xid-prefixed data). */
export function isStreamControl(tag: number | undefined): boolean {
  return tag === 0x53 || tag === 0x45 || tag === 0x63 || tag === 0x41;
}

/** The (sub)transaction xid of a data message inside a stream block. */
export function streamedXid(data: Buffer): number {
  return uint32At(data, 1);
}

/** A big-endian uint32 at `offset` (within bounds: the caller knows), without Buffer's per-call validation. */
export function uint32At(data: Buffer, offset: number): number {
  return ((data[offset]! << 24) | (data[offset + 1]! << 16) | (data[offset + 2]! << 8) | data[offset + 3]!) >>> 0;
}

function isAscii(data: Buffer, start: number, end: number): boolean {
  let high = 0;
  for (let i = start; i < end; i++) high |= data[i]!;
  return high < 0x80;
}

/**
 * Decodes the message at data[start…] (a spool hands over many messages in one buffer; then
 * `text`, data as latin1, lets short ASCII values be cut from one string instead of each decoded
 * by a native call: a third of a replay's time).
 */
const reader = new Reader(Buffer.alloc(0), 0); // one for all: decoding is synchronous

export function decodePgOutput(data: Buffer, inStream = false, start = 0, text?: string): PgOutputMessage {
  reader.buffer = data;
  reader.offset = start;
  reader.text = text;
  const code = reader.char();
  if (inStream && !isStreamControl(data[start])) reader.uint32(); // the streamed (sub)transaction's xid
  switch (code) {
    case 'B':
      return { tag: 'begin', finalLsn: reader.int64(), commitTime: reader.int64(), xid: reader.uint32() };
    case 'C':
      reader.byte(); // flags (unused)
      return { tag: 'commit', commitLsn: reader.int64(), endLsn: reader.int64(), commitTime: reader.int64() };
    case 'R': {
      const relationOid = reader.uint32();
      const schema = reader.string();
      const name = reader.string();
      const replicaIdentity = reader.char();
      const columns: RelationColumn[] = [];
      for (let i = reader.int16(); i > 0; i--) {
        const flags = reader.byte();
        const columnName = reader.string();
        const typeOid = reader.uint32();
        reader.int32(); // type modifier
        columns.push({ name: columnName, typeOid, key: (flags & 1) === 1 });
      }
      return { tag: 'relation', relationOid, schema, name, replicaIdentity, columns };
    }
    case 'I': {
      const relationOid = reader.uint32();
      reader.char(); // 'N'
      return { tag: 'insert', relationOid, new: reader.tuple() };
    }
    case 'U': {
      const relationOid = reader.uint32();
      let kind = reader.char();
      let old: TupleValue[] | null = null;
      let oldKind: 'key' | 'full' | null = null;
      if (kind === 'K' || kind === 'O') {
        oldKind = kind === 'K' ? 'key' : 'full';
        old = reader.tuple();
        kind = reader.char(); // 'N'
      }
      return { tag: 'update', relationOid, old, oldKind, new: reader.tuple() };
    }
    case 'D': {
      const relationOid = reader.uint32();
      const kind = reader.char();
      return { tag: 'delete', relationOid, oldKind: kind === 'K' ? 'key' : 'full', old: reader.tuple() };
    }
    case 'T': {
      const count = reader.int32();
      const options = reader.byte();
      const relationOids: number[] = [];
      for (let i = 0; i < count; i++) relationOids.push(reader.uint32());
      return { tag: 'truncate', relationOids, cascade: (options & 1) === 1, restartIdentity: (options & 2) === 2 };
    }
    case 'M': {
      const transactional = (reader.byte() & 1) === 1;
      const lsn = reader.int64();
      const prefix = reader.string();
      return { tag: 'message', transactional, lsn, prefix, content: reader.bytes(reader.int32()) };
    }
    case 'S':
      return { tag: 'stream-start', xid: reader.uint32(), first: reader.byte() === 1 };
    case 'E':
      return { tag: 'stream-stop' };
    case 'c': {
      const xid = reader.uint32();
      reader.byte(); // flags (unused)
      return { tag: 'stream-commit', xid, commitLsn: reader.int64(), endLsn: reader.int64(), commitTime: reader.int64() };
    }
    case 'A':
      return { tag: 'stream-abort', xid: reader.uint32(), subXid: reader.uint32() }; // (abort LSN and time follow only with streaming 'parallel')
    default:
      return { tag: 'other', code }; // Origin, Type: nothing an event needs
  }
}
