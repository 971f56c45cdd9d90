/**
 * Small helpers for tests that provoke real failures: awaiting a rejection as a PgActionsError,
 * a loopback port nobody listens on, a loopback TCP server that accepts and never answers, and
 * a proxy whose open connections can go silent mid-session.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { PgActionsError } from '../../connection/index.js';
import { expectNoSecretIn } from './secrets.js';
import { freePort } from './servers.js';

/** Awaits a promise that must reject with a PgActionsError and returns that error. */
export async function failure(promise: Promise<unknown>): Promise<PgActionsError> {
  let outcome: unknown;
  try {
    outcome = await promise;
  } catch (error) {
    if (!(error instanceof PgActionsError)) {
      throw new Error(`expected a PgActionsError, got: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    }
    expectNoSecretIn(error);
    return error;
  }
  throw new Error(`expected the call to fail, but it resolved with ${JSON.stringify(outcome)?.slice(0, 200)}`);
}

/** A 127.0.0.1 port that was free a moment ago (bound to port 0, then closed): connecting is refused. */
export function refusedPort(): Promise<number> {
  return freePort();
}

export interface SilentServer {
  readonly port: number;
  /** Sockets accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1 that accepts connections and never sends a byte. */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await listenOnLoopback(server);
  return {
    port,
    get accepted() {
      return accepted;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface FreezableProxy {
  readonly port: number;
  /** CancelRequest packets (protocol code 80877102) that came through. */
  readonly cancelRequests: number;
  /** From now on, connections open at this moment pass nothing, either way; sockets stay open. New connections still pass. */
  freeze(): void;
  close(): Promise<void>;
}

const CANCEL_REQUEST_CODE = 80877102;

/** A TCP proxy on 127.0.0.1 in front of a real server, whose open connections can go silent: a network that stops answering. */
export async function startFreezableProxy(target: { host: string; port: number }): Promise<FreezableProxy> {
  const pairs = new Set<{ client: Socket; upstream: Socket; frozen: boolean }>();
  let cancelRequests = 0;
  const server: Server = createServer((client) => {
    const pair = { client, upstream: connect(target.port, target.host), frozen: false };
    pairs.add(pair);
    let first = true;
    client.on('data', (chunk) => {
      if (first && chunk.length >= 8 && chunk.readInt32BE(4) === CANCEL_REQUEST_CODE) cancelRequests++;
      first = false;
      if (!pair.frozen) pair.upstream.write(chunk);
    });
    pair.upstream.on('data', (chunk) => {
      if (!pair.frozen) client.write(chunk);
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
  });
  const port = await listenOnLoopback(server);
  return {
    port,
    get cancelRequests() {
      return cancelRequests;
    },
    freeze() {
      for (const pair of pairs) pair.frozen = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const pair of pairs) {
          pair.client.destroy();
          pair.upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}

/** Listens on a free 127.0.0.1 port and returns it. */
async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('a loopback test server has no port');
  return address.port;
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns the last answer. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 3000, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
