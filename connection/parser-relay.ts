import { EventEmitter } from 'node:events';

/**
 * Puts a filter between a node-postgres Connection's socket (or its TLS layer) and its protocol parser:
 * attachListeners(stream) is given a relay that emits only what the filter forwards. Call before the
 * client connects.
 */
export function relayParserInput(connection: object, filter: (chunk: Buffer, forward: (piece: Buffer) => void) => void): void {
  const con = connection as { attachListeners(stream: NodeJS.EventEmitter): void };
  const attach = con.attachListeners.bind(con);
  con.attachListeners = (stream) => {
    const relay = new EventEmitter();
    attach(relay);
    const forward = (piece: Buffer) => relay.emit('data', piece);
    stream.on('data', (chunk: Buffer) => filter(chunk, forward));
    stream.on('end', () => relay.emit('end'));
  };
}
