/**
 * Small helpers for tests that provoke real failures: awaiting a rejection as a PgActionsError,
 * a loopback port nobody listens on, and a loopback TCP server that accepts and never answers
 * (a proxy whose connections can go silent is in proxy.ts).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { PgActionsError, testConnection, type ConnectionTestResult } from '../../connection/index.js';
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

/** testConnection, with its whole result (an error, its cause, or a diagnosis) checked for secrets. */
export async function testConnectionChecked(config: unknown): Promise<ConnectionTestResult> {
  const result = await testConnection(config);
  expectNoSecretIn(result.ok ? undefined : result.error, result);
  return result;
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

/**
 * Polls `check` until it returns true or `timeoutMs` passes; returns the last answer. The default
 * is generous (10 s): a condition that holds at once costs nothing more, and on a machine at load 30
 * a backend's exit, a pooler's hand-over or an sshd session's end can take seconds.
 */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Whether something accepts TCP connections on host:port. With 127.0.0.2 (loopback, but not the
 * address a 127.0.0.1-only server binds) this tells a loopback-only listener from one on 0.0.0.0.
 */
export function acceptsConnections(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (accepted: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(accepted);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
