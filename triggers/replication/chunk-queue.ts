/**
 * The subscription's queue between the replication stream and the handler. A position-only chunk
 * (a heartbeat, a keepalive, the commit of a transaction with no published change) carries nothing
 * but a newer position, so it moves the newest queued chunk's position forward instead of being
 * queued: any number of them (a role with no privilege can emit messages by the million; before
 * PG 15 every transaction of the database commits one) costs one chunk. Taking reads from a head
 * index (no shift() of a long array), and the weight counts changes, chunks and bytes so reading
 * pauses on whichever grows.
 */
import type { ChangeEvent } from './changes.js';
import type { Lsn } from './lsn.js';
import type { CommittedStream } from './streamed.js';
import type { ChangeAssembler } from './changes.js';

/** Events to hand over, or a streamed transaction to replay from its spool (weighed by its changes); then the position after them. */
export type Chunk =
  | { events: ChangeEvent[]; position: Lsn; bytes: number; replay?: undefined }
  | { events: []; position: Lsn; bytes: 0; replay: { stream: CommittedStream; assembler: ChangeAssembler } };

export class ChunkQueue {
  private items: Chunk[] = [];
  private head = 0;
  /** Changes waiting (spooled ones included) and the pgoutput bytes of queued events. */
  changes = 0;
  bytes = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** Queues a chunk, or folds a position-only one into the newest queued ordinary chunk. */
  push(chunk: Chunk): void {
    const newest = this.length ? this.items[this.items.length - 1]! : undefined;
    if (!chunk.replay && chunk.events.length === 0 && newest && !newest.replay) {
      if (chunk.position > newest.position) newest.position = chunk.position;
      return;
    }
    this.items.push(chunk);
    this.changes += chunk.replay ? chunk.replay.stream.spool.changes : chunk.events.length;
    this.bytes += chunk.bytes;
  }

  peek(): Chunk | undefined {
    return this.items[this.head];
  }

  /** Takes the oldest chunk; its bytes leave the weight now, its changes once handled (release). */
  take(): Chunk | undefined {
    if (!this.length) return undefined;
    const chunk = this.items[this.head]!;
    this.items[this.head++] = undefined as never;
    this.bytes -= chunk.bytes;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return chunk;
  }

  release(changes: number): void {
    this.changes -= changes;
  }

  /** Empties the queue (the stream ended), returning what was in it. */
  drain(): Chunk[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    this.changes = 0;
    this.bytes = 0;
    return rest;
  }
}
