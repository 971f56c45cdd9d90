/**
 * A loopback relay in front of a real server that sees the server's replies message by message (plaintext
 * connections only: sslMode 'disable'). A hook, per connection, may rewrite a message or hold back what
 * follows it (or the message itself), in order: a network or pooler whose replies arrive late, or a pooler
 * whose backend key is not the backend's. The client's messages pass untouched.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface MessageAction {
  /** Sent instead of the message. */
  replace?: Buffer;
  /** Wait this long before sending the message (and so everything after it). */
  delayBeforeMs?: number;
  /** Wait this long after sending it before sending anything more. */
  holdAfterMs?: number;
}

/** Called for each server → client message (type byte, length, body), in order. */
export type MessageHook = (message: Buffer) => MessageAction | undefined;

export interface MessageRelay {
  readonly port: number;
  close(): Promise<void>;
}

/** A CommandComplete message whose tag matches `tag` (e.g. /^COMMIT$/). */
export function isCommandComplete(message: Buffer, tag: RegExp): boolean {
  return message[0] === 0x43 && tag.test(message.subarray(5, message.length - 1).toString('utf8'));
}

export async function startMessageRelay(target: { host: string; port: number }, hookFor: () => MessageHook): Promise<MessageRelay> {
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    const server = connect(target.port, target.host);
    for (const socket of [client, server]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        server.destroy();
      });
    }
    client.pipe(server);
    const hook = hookFor();
    let buffer = Buffer.alloc(0);
    let waitUntil = 0;
    let timer: NodeJS.Timeout | undefined;
    /** The hook's answer for the message at the head of the buffer, once asked (the hook is called once per message). */
    let head: { action: MessageAction; delayed: boolean } | undefined;
    const pump = () => {
      timer = undefined;
      while (buffer.length >= 5) {
        if (Date.now() < waitUntil) return void (timer = setTimeout(pump, waitUntil - Date.now())).unref(); // a long hold must not keep jest alive
        const length = 1 + buffer.readInt32BE(1);
        if (buffer.length < length) return;
        const message = buffer.subarray(0, length);
        head ??= { action: hook(message) ?? {}, delayed: false };
        const { action } = head;
        if (action.delayBeforeMs && !head.delayed) {
          head.delayed = true;
          waitUntil = Date.now() + action.delayBeforeMs;
          continue;
        }
        head = undefined;
        buffer = buffer.subarray(length);
        if (!client.destroyed) client.write(action.replace ?? message);
        if (action.holdAfterMs) waitUntil = Date.now() + action.holdAfterMs;
      }
    };
    server.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!timer) pump();
    });
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return {
    port: (relay.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        relay.close(() => resolve());
      }),
  };
}
