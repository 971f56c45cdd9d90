/**
 * Protocol-level query cancel (CancelRequest), sent on a new connection as libpq's PQcancel
 * does: it needs no free pool slot and no privileges, only the backend's key. When the
 * session itself runs over TLS, the cancel does too.
 */
import { connect as connectTcp, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';

const CANCEL_REQUEST_CODE = 80877102;
const SSL_REQUEST_CODE = 80877103;

export interface CancelTarget {
  host: string;
  port: number;
  processID: number;
  secretKey: number;
  ssl: false | ConnectionOptions;
  /** How the pool's connections reach host:port when not over plain TCP (an SSH tunnel's channel). */
  stream?: OpenStream;
}

/** A socket factory as pg's `stream` option: connect(port, host), then 'connect'. */
export type OpenStream = () => Duplex & { connect(port: number, host: string): unknown };

function open(port: number, host: string, stream: OpenStream | undefined): Duplex {
  if (!stream) return connectTcp(port, host);
  const socket = stream();
  socket.connect(port, host);
  return socket;
}

/** Resolves once the request was written (or gave up); never rejects. */
export function sendCancel(target: CancelTarget, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = open(target.port, target.host, target.stream);
    let finished = false;
    const finish = (sent: boolean, active: Duplex = socket) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      active.destroy();
      socket.destroy();
      resolve(sent);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('error', () => finish(false));
    const sendOn = (stream: Duplex) => {
      const packet = Buffer.alloc(16);
      packet.writeInt32BE(16, 0);
      packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
      packet.writeInt32BE(target.processID, 8);
      packet.writeInt32BE(target.secretKey, 12);
      // The server closes the connection once it has acted on it; wait for that, as libpq does. No
      // half-close first: PgBouncer drops a cancel whose sender hung up before it was forwarded.
      stream.write(packet, () => stream.once('close', () => finish(true, stream)));
    };
    socket.once('connect', () => {
      if (!target.ssl) return sendOn(socket);
      const request = Buffer.alloc(8);
      request.writeInt32BE(8, 0);
      request.writeInt32BE(SSL_REQUEST_CODE, 4);
      socket.write(request);
      socket.once('data', (answer) => {
        if (answer[0] !== 0x53 /* S */) return finish(false);
        const secure = connectTls({ ...(target.ssl as ConnectionOptions), socket, servername: serverNameFor(target.host) });
        secure.on('error', () => finish(false, secure));
        secure.once('secureConnect', () => sendOn(secure));
      });
    });
  });
}

/** The TLS SNI name for a host: none for an IP address, v4 or v6 (RFC 6066 forbids it), as libpq does. */
export function serverNameFor(host: string): string | undefined {
  return isIP(host) ? undefined : host;
}

/** Asks the server whether it accepts TLS (SSLRequest → 'S' or 'N'); undefined if it could not tell. */
export function probeTls(host: string, port: number, timeoutMs = 2000, stream?: OpenStream): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    const socket = open(port, host, stream);
    const done = (answer: boolean | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('error', () => done(undefined));
    socket.once('connect', () => {
      const request = Buffer.alloc(8);
      request.writeInt32BE(8, 0);
      request.writeInt32BE(SSL_REQUEST_CODE, 4);
      socket.write(request);
    });
    socket.once('data', (answer) => done(answer[0] === 0x53 ? true : answer[0] === 0x4e ? false : undefined));
  });
}
