/**
 * One streamed transaction's pgoutput messages (PG14+ sends a large transaction while it is still
 * running), kept until its Stream Commit or Stream Abort: in memory up to `memoryLimit` bytes, then
 * appended to a temporary file, so a transaction of any size costs bounded memory and an aborted
 * one never reaches the handler. Records are the raw messages, length-prefixed, decoded only when
 * replayed at commit (the decoder sees them in order, Relation messages included). Records are
 * copied into one growing buffer (no object per message) and read back in blocks of whole records.
 *
 * A subtransaction's abort cuts the spool back to that subtransaction's first message: pgoutput
 * streams a transaction's changes in WAL order, and while a subtransaction is open its parent
 * writes nothing, so everything after that point belongs to it or to its children (PostgreSQL's
 * own apply worker truncates its spool file the same way). Relation messages cut off are written
 * again: the server counts them as sent for the whole transaction and will not repeat them.
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SPOOL_MEMORY_BYTES = 1 << 20;
const READ_BYTES = 1 << 20;
const FIRST_BYTES = 64 * 1024;
const RELATION = 0x52; // 'R'
const INSERT = 0x49;
const UPDATE = 0x55;
const DELETE = 0x44;
const TRUNCATE = 0x54;
const EMPTY = Buffer.alloc(0);

export class TransactionSpool {
  /** Length-prefixed records not yet written to the file, in tail[0, tailBytes). */
  private tail: Buffer = EMPTY;
  private tailBytes = 0;
  private fileBytes = 0;
  private changeCount = 0;
  /** The spill file; its descriptor is closed once the transaction is complete (sealed) and opened again to replay. */
  private file: { dir: string; path: string; fd: number | undefined } | undefined;
  /** Where each subtransaction's first message is, and how many changes came before it. */
  private readonly firstOffset = new Map<number, { offset: number; changes: number }>();
  private readonly relations = new Map<number, { offset: number; data: Buffer }>();

  constructor(
    readonly xid: number,
    private readonly memoryLimit = SPOOL_MEMORY_BYTES,
  ) {}

  get size(): number {
    return this.fileBytes + this.tailBytes;
  }

  /** Bytes held in memory (the rest is on disk). */
  get inMemory(): number {
    return this.tailBytes;
  }

  get spilled(): boolean {
    return this.file !== undefined;
  }

  /** Row changes held (a TRUNCATE counts once): the weight of the transaction while it waits. */
  get changes(): number {
    return this.changeCount;
  }

  /** The transaction is complete: write the memory tail out and close the file, so a waiting spool holds no descriptor. */
  seal(): void {
    if (!this.file) return;
    this.flush();
    this.closeFile();
    this.tail = EMPTY;
  }

  /** A message of (sub)transaction `subXid` inside a stream block, as received (xid after the tag). */
  append(subXid: number, data: Buffer): void {
    if (subXid !== this.xid && !this.firstOffset.has(subXid)) this.firstOffset.set(subXid, { offset: this.size, changes: this.changeCount });
    const tag = data[0];
    if (tag === INSERT || tag === UPDATE || tag === DELETE || tag === TRUNCATE) this.changeCount++;
    else if (tag === RELATION) this.relations.set(data.readUInt32BE(5), { offset: this.size, data: Buffer.from(data) });
    const needed = this.tailBytes + 4 + data.length;
    if (needed > this.tail.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, Math.min(Math.max(this.tail.length * 2, FIRST_BYTES), this.memoryLimit)));
      this.tail.copy(grown, 0, 0, this.tailBytes);
      this.tail = grown;
    }
    this.tail.writeUInt32BE(data.length, this.tailBytes);
    data.copy(this.tail, this.tailBytes + 4);
    this.tailBytes = needed;
    if (this.tailBytes >= this.memoryLimit) this.flush();
  }

  /** Stream Abort of a subtransaction: forget its messages (and its children's). */
  abortSubtransaction(subXid: number): void {
    const first = this.firstOffset.get(subXid);
    if (first === undefined) return; // none of its changes was streamed
    const cut = first.offset;
    this.truncate(cut);
    this.changeCount = first.changes;
    for (const [xid, { offset }] of this.firstOffset) if (offset >= cut) this.firstOffset.delete(xid);
    const lost = [...this.relations.values()].filter((r) => r.offset >= cut).sort((a, b) => a.offset - b.offset);
    for (const relation of lost) this.append(this.xid, relation.data);
  }

  /** The latest Relation message of each table this transaction described (the server counts them as sent). */
  relationMessages(): Buffer[] {
    return [...this.relations.values()].sort((a, b) => a.offset - b.offset).map((r) => r.data);
  }

  /**
   * The records in order, in blocks of whole records (each a 4-byte length, then the message: walk
   * them with `eachRecord`), read back from the file about 1 MB at a time.
   */
  *blocks(): Generator<Buffer> {
    if (!this.file) {
      if (this.tailBytes) yield this.tail.subarray(0, this.tailBytes);
      return;
    }
    this.flush();
    const sealed = this.file.fd === undefined;
    const fd = this.file.fd ?? openSync(this.file.path, 'r');
    try {
      yield* this.read(fd);
    } finally {
      if (sealed) closeSync(fd);
    }
  }

  /** The messages in order, one by one. */
  *records(): Generator<Buffer> {
    for (const block of this.blocks()) for (let at = 0; at < block.length; at += 4 + block.readUInt32BE(at)) yield block.subarray(at + 4, at + 4 + block.readUInt32BE(at));
  }

  private *read(fd: number): Generator<Buffer> {
    let position = 0;
    let buffer = Buffer.allocUnsafe(Math.min(READ_BYTES, this.fileBytes));
    let filled = 0;
    while (position < this.fileBytes) {
      const read = readSync(fd, buffer, filled, Math.min(buffer.length - filled, this.fileBytes - position), position);
      if (read === 0) break;
      position += read;
      filled += read;
      let end = 0; // after the last whole record
      for (let next = 0; end + 4 <= filled && (next = end + 4 + buffer.readUInt32BE(end)) <= filled; ) end = next;
      const rest = filled - end;
      const wanted = rest >= 4 ? Math.max(READ_BYTES, 4 + buffer.readUInt32BE(end)) : READ_BYTES; // a record longer than a read
      const next = Buffer.allocUnsafe(Math.min(wanted, rest + this.fileBytes - position));
      buffer.copy(next, 0, end, filled);
      if (end > 0) yield buffer.subarray(0, end); // a fresh buffer each time: nothing handed out is overwritten
      buffer = next;
      filled = rest;
    }
    if (filled || position < this.fileBytes) throw new Error('spool: a record is cut short');
  }

  dispose(): void {
    this.tail = EMPTY;
    this.tailBytes = 0;
    if (!this.file) return;
    this.closeFile();
    rmSync(this.file.dir, { recursive: true, force: true });
    this.file = undefined;
  }

  private flush(): void {
    if (!this.file) {
      // Named after the process: its spools can be told apart (and counted) among others'.
      const dir = mkdtempSync(join(tmpdir(), `pg-actions-cdc-${process.pid}-`));
      const path = join(dir, `${this.xid}.spool`);
      this.file = { dir, path, fd: openSync(path, 'w+', 0o600) };
    }
    if (this.tailBytes === 0) return;
    this.file.fd ??= openSync(this.file.path, 'r+');
    writeSync(this.file.fd, this.tail, 0, this.tailBytes, this.fileBytes);
    this.fileBytes += this.tailBytes;
    this.tailBytes = 0;
  }

  /** Back to `cut`, a record boundary (where a subtransaction began). */
  private truncate(cut: number): void {
    if (cut >= this.fileBytes) {
      this.tailBytes = cut - this.fileBytes;
      return;
    }
    this.file!.fd ??= openSync(this.file!.path, 'r+');
    ftruncateSync(this.file!.fd, cut);
    this.fileBytes = cut;
    this.tailBytes = 0;
  }

  private closeFile(): void {
    if (this.file?.fd === undefined) return;
    closeSync(this.file.fd);
    this.file.fd = undefined;
  }
}
