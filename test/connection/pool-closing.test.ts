/**
 * connection/pools.ts, closeAll() against a peer that is slow to close: closeAll waits for every
 * connection it asked to end (an idle pooled one, a session a step discarded) until that
 * connection has really closed, no longer, and gives up after its 5 s limit on one that never
 * closes. The peer is a loopback relay in front of the suite's server that holds back its FIN
 * (as a distant server or a loaded network does); the server behind it is real.
 */
import { createServer, connect, type Socket } from 'node:net';
import { closeAll, execute } from '../../connection/index.js';
import { serverLogin } from '../harness/db.js';
import { sleep } from '../harness/failures.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('pool_close');

afterEach(async () => {
  await closeAll();
}, 60_000);

interface SlowClosePeer {
  readonly port: number;
  /** Connections the peer accepted. */
  readonly accepted: number;
  /** performance.now() of each FIN the peer sent back to the client, after holding it. */
  readonly closedAt: number[];
  close(): Promise<void>;
}

/** Relays to the server; when the client closes its side, closes the server's at once and its own to the client `holdMs` later (never: only on close()). */
async function startSlowClosePeer(holdMs: number | 'never'): Promise<SlowClosePeer> {
  const target = serverLogin();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const closedAt: number[] = [];
  let accepted = 0;
  const server = createServer({ allowHalfOpen: true }, (client) => {
    accepted++;
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    }
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => client.write(chunk));
    client.once('end', () => {
      upstream.end();
      if (holdMs === 'never') return;
      const timer = setTimeout(() => {
        timers.delete(timer);
        closedAt.push(performance.now());
        client.end();
      }, holdMs);
      timers.add(timer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get accepted() {
      return accepted;
    },
    closedAt,
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const through = (peer: SlowClosePeer, applicationName: string) => ({ ...db.config, host: '127.0.0.1', port: peer.port, sslMode: 'disable' as const, applicationName });

const timed = async <T>(run: () => Promise<T>) => {
  const started = performance.now();
  const value = await run();
  return { value, started, ended: performance.now() };
};

test('closeAll() waits for an idle pooled connection until its peer has closed it, and not for its 5 s limit after that', async () => {
  const peer = await startSlowClosePeer(1000);
  try {
    expect((await execute(through(peer, 'slow-close-idle'), { text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
    const { ended } = await timed(() => closeAll());
    // closed before closeAll() returned, not behind it
    expect(peer.accepted).toBe(1);
    expect(peer.closedAt).toHaveLength(1);
    expect(peer.closedAt[0]!).toBeLessThanOrEqual(ended);
    // and closeAll() returned as soon as it heard the close: the limit would end it 4 s later
    expect(ended - peer.closedAt[0]!).toBeLessThan(3000);
  } finally {
    await peer.close();
  }
}, 60_000);

test('closeAll() waits for a session the step discarded (DISCARD ALL) while its peer is still closing it', async () => {
  const peer = await startSlowClosePeer(2000);
  try {
    const config = through(peer, 'slow-close-discarded');
    // the step discards its session: the pool asks it to end at once
    expect((await execute(config, { text: 'DISCARD ALL' })).command).toBe('DISCARD ALL');
    const { started, ended } = await timed(() => closeAll());
    // every connection closed before closeAll() returned, the discarded one included, which was still closing when it began
    expect(peer.closedAt).toHaveLength(peer.accepted);
    expect(Math.min(...peer.closedAt)).toBeGreaterThan(started);
    expect(Math.max(...peer.closedAt)).toBeLessThanOrEqual(ended);
  } finally {
    await peer.close();
  }
}, 60_000);

test('closeAll() gives up on a connection whose peer never closes it, after its 5 s limit', async () => {
  const peer = await startSlowClosePeer('never');
  try {
    await execute(through(peer, 'never-closes'), { text: 'SELECT 1' });
    const outcome = await timed(() => Promise.race([closeAll().then(() => 'returned'), sleep(20_000).then(() => 'still waiting after 20 s')]));
    expect(outcome.value).toBe('returned');
    expect(outcome.ended - outcome.started).toBeGreaterThan(4500);
    expect(peer.closedAt).toEqual([]);
  } finally {
    await peer.close();
  }
}, 60_000);
