/**
 * A filter between a replication session's socket and node-postgres' protocol parser (REVIEW8 R151).
 * pgoutput passes every logical message written in the database (`messages` on, for the heartbeat),
 * and any role may write one of up to 1 GB with pg_logical_emit_message; the parser gathers a whole
 * protocol message in memory before handing it on. So a logical message (pgoutput tag 'M' in an
 * XLogData) larger than MESSAGE_KEPT_BYTES is replaced, as its bytes arrive, by the same message
 * without prefix or content: its position still counts, nothing of it is held. pg-actions' own
 * heartbeat is a few dozen bytes and passes untouched; every other protocol message passes as it came.
 */
import { relayParserInput } from './parser-relay.js';

/** Logical messages up to this size (the whole CopyData message) pass whole. */
export const MESSAGE_KEPT_BYTES = 1024;
/** Type byte and length: every protocol message's start. */
const HEADER = 5;
/** CopyData → XLogData ('w', start, end, send time: 25 bytes) → pgoutput tag, then (in a stream block) the xid, flags and LSN. */
const TAG_AT = HEADER + 25;
const HEAD = TAG_AT + 1 + 4 + 1 + 8;
const COPY_DATA = 0x64;
const XLOG_DATA = 0x77;
const MESSAGE = 0x4d;
const STREAM_START = 0x53;
const STREAM_STOP = 0x45;

export class WalFrameFilter {
  private head = Buffer.alloc(HEAD);
  private headLength = 0;
  /** Bytes of the current message after its head: passed on, or dropped. */
  private rest = 0;
  private dropping = false;
  /** Inside a stream block, pgoutput's data messages carry their transaction's xid after the tag. */
  private inStream = false;

  /** The bytes to hand to the parser for this chunk of the socket's. */
  filter(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    // Unless a head straddles a chunk's edge or a message is replaced, the chunk goes on as it came (no copy).
    let identical = this.headLength === 0;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.rest > 0) {
        const take = Math.min(this.rest, chunk.length - offset);
        if (this.dropping) identical = false;
        else out.push(chunk.subarray(offset, offset + take));
        offset += take;
        this.rest -= take;
        continue;
      }
      // A new message's head: gathered until it says what the message is.
      const want = this.headLength < HEADER ? HEADER : Math.min(HEAD, this.length());
      const take = Math.min(want - this.headLength, chunk.length - offset);
      chunk.copy(this.head, this.headLength, offset, offset + take);
      this.headLength += take;
      offset += take;
      if (this.headLength < want || (this.headLength === HEADER && this.length() > HEADER)) continue;
      out.push(this.decide());
      if (this.dropping) identical = false; // the head replaced
    }
    if (this.headLength > 0) identical = false; // a head held back until the next chunk
    return identical ? chunk : Buffer.concat(out);
  }

  /** The whole message's length, its type byte included. */
  private length(): number {
    return 1 + this.head.readUInt32BE(1);
  }

  /** The head is complete: what goes on for it, and what happens to the message's rest. */
  private decide(): Buffer {
    const length = this.length();
    const head = this.head.subarray(0, this.headLength);
    this.rest = length - this.headLength;
    this.dropping = false;
    this.headLength = 0;
    const copyOfWal = head[0] === COPY_DATA && head.length > TAG_AT && head[HEADER] === XLOG_DATA;
    if (copyOfWal && head[TAG_AT] === STREAM_START) this.inStream = true;
    if (copyOfWal && head[TAG_AT] === STREAM_STOP) this.inStream = false;
    if (!(copyOfWal && head[TAG_AT] === MESSAGE && length > MESSAGE_KEPT_BYTES)) return Buffer.from(head);
    this.dropping = true;
    return emptied(head, this.inStream);
  }
}

/** The message without prefix or content: XLogData header, 'M', [xid], flags, LSN, '' and a length of 0. */
function emptied(head: Buffer, inStream: boolean): Buffer {
  const kept = head.subarray(HEADER, TAG_AT + 1 + (inStream ? 4 : 0) + 1 + 8);
  const message = Buffer.alloc(HEADER + kept.length + 1 + 4);
  message[0] = COPY_DATA;
  message.writeUInt32BE(message.length - 1, 1);
  kept.copy(message, HEADER);
  return message; // the prefix's NUL and the zero length are the buffer's zeros
}

/** Puts a WalFrameFilter in front of a node-postgres Connection's parser. Call before the client connects. */
export function filterWalFrames(connection: object): void {
  const filter = new WalFrameFilter();
  relayParserInput(connection, (chunk, forward) => {
    const passed = filter.filter(chunk);
    if (passed.length > 0) forward(passed);
  });
}
