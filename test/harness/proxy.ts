/**
 * A TCP proxy on 127.0.0.1 in front of a real server, for tests that must see what crossed the
 * wire: bytes the server sent (with backpressure, so the count is what the client really pulled,
 * plus socket buffers), CancelRequest packets, a network that goes silent, and optionally a
 * server whose statement_timeout is switched off (every `statement_timeout = N` or
 * `set_config('statement_timeout', 'N'` the client sends has its digits rewritten to zeros, same
 * length), so only a protocol CancelRequest can end a statement.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';

export interface WireProxy {
  readonly port: number;
  /** Bytes the server sent through the proxy so far (all connections). */
  readonly bytesFromServer: number;
  /** CancelRequest packets (protocol code 80877102) that came through (inside TLS, with `tls`). */
  readonly cancelRequests: number;
  /** With `tls`: connections that did not ask for TLS (passed on as they are). */
  readonly plaintextConnections: number;
  /** With `tls`: connections that asked for TLS (and got it from the proxy). */
  readonly tlsConnections: number;
  /** `statement_timeout = N` settings rewritten to 0 (with stripStatementTimeout). */
  readonly timeoutsStripped: number;
  /** Connections open through the proxy now (closed as soon as either side closes). */
  readonly openConnections: number;
  /** Connections open now go silent both ways (sockets stay open); new connections still pass. */
  freeze(): void;
  /** Connections open now still carry the client's messages, but the server's replies go nowhere. */
  freezeReplies(): void;
  /** Nothing passes any more: open connections go silent, new ones are accepted and hear nothing. */
  blackhole(): void;
  /** Connections open now are reset: the client gets ECONNRESET, the server sees its socket close. */
  reset(): void;
  close(): Promise<void>;
}

export interface WireProxyOptions {
  stripStatementTimeout?: boolean;
  /**
   * Answers the client's SSLRequest itself and ends TLS here with this certificate, talking
   * plaintext to the server behind: the proxy can then read (and rewrite) a TLS session.
   */
  tls?: { certPem: string; keyPem: string; /** Asks for a client certificate signed by this CA, as pg_hba.conf `cert` does. */ clientCaPem?: string };
}

const CANCEL_REQUEST_CODE = 80877102;
const SSL_REQUEST_CODE = 80877103;
const TIMEOUT_SETTING = /(statement_timeout(?: = |', '))(\d+)/g;

export async function startWireProxy(target: { host: string; port: number }, options: WireProxyOptions = {}): Promise<WireProxy> {
  interface Pair { client: Socket; upstream: Socket; requests: boolean; replies: boolean }
  const pairs = new Set<Pair>();
  const counts = { bytesFromServer: 0, cancelRequests: 0, timeoutsStripped: 0, plaintextConnections: 0, tlsConnections: 0 };
  const secureContext = options.tls && createSecureContext({ cert: options.tls.certPem, key: options.tls.keyPem });
  const strip = (chunk: Buffer): Buffer => {
    if (!options.stripStatementTimeout) return chunk;
    const text = chunk.toString('latin1');
    const rewritten = text.replace(TIMEOUT_SETTING, (_all, setting: string, digits: string) => {
      counts.timeoutsStripped++;
      return setting + '0'.repeat(digits.length);
    });
    return rewritten === text ? chunk : Buffer.from(rewritten, 'latin1');
  };
  const relay = (client: Socket, initial?: Buffer) => {
    const pair: Pair = { client, upstream: connect(target.port, target.host), requests: true, replies: true };
    pairs.add(pair);
    let first = true;
    const fromClient = (chunk: Buffer) => {
      if (first && chunk.length >= 8 && chunk.readInt32BE(4) === CANCEL_REQUEST_CODE) counts.cancelRequests++;
      first = false;
      if (pair.requests) pair.upstream.write(strip(chunk));
    };
    if (initial) fromClient(initial);
    client.on('data', fromClient);
    pair.upstream.on('data', (chunk) => {
      counts.bytesFromServer += chunk.length;
      if (!pair.replies) return;
      // Backpressure: read from the server only as fast as the client takes it.
      if (!client.write(chunk)) {
        pair.upstream.pause();
        client.once('drain', () => pair.upstream.resume());
      }
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      pair.upstream.destroy();
    };
    for (const socket of [client, pair.upstream]) {
      socket.on('error', () => {});
      socket.on('close', end);
    }
  };
  let blackholed = false;
  const swallowed = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (blackholed) {
      swallowed.add(client);
      client.on('error', () => {});
      client.once('data', (chunk) => {
        if (chunk.length >= 8 && chunk.readInt32BE(4) === CANCEL_REQUEST_CODE) counts.cancelRequests++;
      });
      return;
    }
    if (!secureContext) return relay(client);
    client.on('error', () => {});
    client.once('data', (first) => {
      if (first.length !== 8 || first.readInt32BE(4) !== SSL_REQUEST_CODE) {
        counts.plaintextConnections++;
        return relay(client, first);
      }
      counts.tlsConnections++;
      client.write('S');
      const clientCa = options.tls!.clientCaPem;
      const secure = new TLSSocket(client, { isServer: true, secureContext, ...(clientCa ? { requestCert: true, rejectUnauthorized: true, ca: clientCa } : {}) });
      secure.on('error', () => {});
      relay(secure);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the wire proxy has no port');
  return {
    port: address.port,
    get bytesFromServer() {
      return counts.bytesFromServer;
    },
    get cancelRequests() {
      return counts.cancelRequests;
    },
    get plaintextConnections() {
      return counts.plaintextConnections;
    },
    get tlsConnections() {
      return counts.tlsConnections;
    },
    get timeoutsStripped() {
      return counts.timeoutsStripped;
    },
    get openConnections() {
      return pairs.size;
    },
    freeze() {
      for (const pair of pairs) pair.requests = pair.replies = false;
    },
    blackhole() {
      blackholed = true;
      for (const pair of pairs) pair.requests = pair.replies = false;
    },
    freezeReplies() {
      for (const pair of pairs) pair.replies = false;
    },
    reset() {
      for (const pair of pairs) {
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of swallowed) socket.destroy();
        for (const pair of pairs) {
          pair.client.destroy();
          pair.upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
