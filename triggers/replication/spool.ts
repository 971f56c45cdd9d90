/**
 * One streamed transaction's pgoutput messages (PG14+ sends a large transaction while it is still
 * running), kept until its Stream Commit or Stream Abort: in memory up to `memoryLimit` bytes, then
 * appended to a temporary file, so a transaction of any size costs bounded memory and an aborted
 * one never reaches the handler. Records are the raw messages, length-prefixed, decoded only when
 * replayed at commit (the decoder sees them in order, Relation messages included).
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
const RELATION = 0x52; // 'R'
const CHANGES = new Set([0x49, 0x55, 0x44, 0x54]); // Insert, Update, Delete, Truncate

export class TransactionSpool {
  private memory: Buffer[] = [];
  private memoryBytes = 0;
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
    return this.fileBytes + this.memoryBytes;
  }

  /** Bytes held in memory (the rest is on disk). */
  get inMemory(): number {
    return this.memoryBytes;
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
  }

  /** A message of (sub)transaction `subXid` inside a stream block, as received (xid after the tag). */
  append(subXid: number, data: Buffer): void {
    if (subXid !== this.xid && !this.firstOffset.has(subXid)) this.firstOffset.set(subXid, { offset: this.size, changes: this.changeCount });
    if (CHANGES.has(data[0]!)) this.changeCount++;
    if (data[0] === RELATION) this.relations.set(data.readUInt32BE(5), { offset: this.size, data: Buffer.from(data) });
    const record = Buffer.allocUnsafe(4 + data.length);
    record.writeUInt32BE(data.length, 0);
    data.copy(record, 4);
    this.memory.push(record);
    this.memoryBytes += record.length;
    if (this.memoryBytes >= this.memoryLimit) this.flush();
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

  /** The messages in order, read back in bounded chunks. */
  *records(): Generator<Buffer> {
    if (!this.file) {
      for (const record of this.memory) yield record.subarray(4);
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

  private *read(fd: number): Generator<Buffer> {
    let position = 0;
    let buffer = Buffer.alloc(0);
    for (;;) {
      if (buffer.length >= 4) {
        const end = 4 + buffer.readUInt32BE(0);
        if (buffer.length >= end) {
          yield buffer.subarray(4, end);
          buffer = buffer.subarray(end);
          continue;
        }
      }
      if (position >= this.fileBytes) {
        if (buffer.length) throw new Error('spool: a record is cut short');
        return;
      }
      const wanted = buffer.length >= 4 ? 4 + buffer.readUInt32BE(0) - buffer.length : 0;
      const chunk = Buffer.allocUnsafe(Math.min(Math.max(READ_BYTES, wanted), this.fileBytes - position));
      const read = readSync(fd, chunk, 0, chunk.length, position);
      position += read;
      buffer = buffer.length ? Buffer.concat([buffer, chunk.subarray(0, read)]) : chunk.subarray(0, read);
    }
  }

  dispose(): void {
    this.memory = [];
    this.memoryBytes = 0;
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
    if (this.memoryBytes === 0) return;
    this.file.fd ??= openSync(this.file.path, 'r+');
    const bytes = Buffer.concat(this.memory, this.memoryBytes);
    writeSync(this.file.fd, bytes, 0, bytes.length, this.fileBytes);
    this.fileBytes += bytes.length;
    this.memory = [];
    this.memoryBytes = 0;
  }

  private truncate(cut: number): void {
    if (cut >= this.fileBytes) {
      const kept: Buffer[] = [];
      let offset = this.fileBytes;
      for (const record of this.memory) {
        if (offset + record.length > cut) break;
        kept.push(record);
        offset += record.length;
      }
      this.memory = kept;
      this.memoryBytes = offset - this.fileBytes;
      return;
    }
    this.file!.fd ??= openSync(this.file!.path, 'r+');
    ftruncateSync(this.file!.fd, cut);
    this.fileBytes = cut;
    this.memory = [];
    this.memoryBytes = 0;
  }

  private closeFile(): void {
    if (this.file?.fd === undefined) return;
    closeSync(this.file.fd);
    this.file.fd = undefined;
  }
}
