/**
 * pgoutput's streamed transactions (protocol 2, `streaming 'on'`, PG14+): a transaction bigger than
 * the server's logical_decoding_work_mem arrives in blocks (Stream Start … Stream Stop) while it
 * still runs, interleaved with other transactions, and ends with Stream Commit or Stream Abort.
 * Each one is spooled (spool.ts: bounded memory, then a temporary file) and handed back only at
 * its Stream Commit, so an aborted transaction, or an aborted subtransaction inside one, emits
 * nothing. Nothing is acknowledged meanwhile: the slot's position stays at the last handled
 * commit, and a crash makes the server send the whole transaction again.
 */
import type { Lsn } from './lsn.js';
import { decodePgOutput, isStreamControl, streamedXid } from './pgoutput.js';
import { TransactionSpool } from './spool.js';

export interface CommittedStream {
  spool: TransactionSpool;
  xid: number;
  commitLsn: Lsn;
  endLsn: Lsn;
  commitTime: bigint;
}

export class StreamedTransactions {
  private readonly open = new Map<number, TransactionSpool>();
  private current: TransactionSpool | undefined;

  /** True when `data` is part of a stream (a block's content or a stream control message). */
  owns(data: Buffer): boolean {
    return this.current !== undefined || isStreamControl(data[0]);
  }

  /** Takes a message `owns` accepted; returns the transaction a Stream Commit completes. */
  take(data: Buffer): CommittedStream | undefined {
    if (this.current && !isStreamControl(data[0])) {
      this.current.append(streamedXid(data), data);
      return undefined;
    }
    const message = decodePgOutput(data);
    switch (message.tag) {
      case 'stream-start': {
        const spool = this.open.get(message.xid) ?? new TransactionSpool(message.xid);
        this.open.set(message.xid, spool);
        this.current = spool;
        return undefined;
      }
      case 'stream-stop':
        this.current = undefined;
        return undefined;
      case 'stream-abort': {
        const spool = this.open.get(message.xid);
        if (spool && message.subXid === message.xid) {
          spool.dispose();
          this.open.delete(message.xid);
        } else spool?.abortSubtransaction(message.subXid);
        return undefined;
      }
      case 'stream-commit': {
        const spool = this.open.get(message.xid) ?? new TransactionSpool(message.xid);
        this.open.delete(message.xid);
        spool.seal(); // it may wait behind others: no descriptor, no memory tail meanwhile
        return { spool, xid: message.xid, commitLsn: message.commitLsn, endLsn: message.endLsn, commitTime: message.commitTime };
      }
      default:
        throw new Error(`pgoutput: unexpected message ${JSON.stringify(message.tag)} in a stream`);
    }
  }

  /** Open transactions' spools (the connection ended: the server sends them again). */
  dispose(): void {
    for (const spool of this.open.values()) spool.dispose();
    this.open.clear();
    this.current = undefined;
  }
}
