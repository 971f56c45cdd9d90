/**
 * connection/cancel.ts on its own: the CancelRequest (plain and over TLS) and the TLS probe,
 * against the real server (directly, and behind a TLS-ending proxy) and against loopback peers
 * that misbehave (refuse, stay silent, answer 'N' or garbage, record what they were sent).
 * Each "at once" below is measured against a timeout ten times longer, so a cancel or probe that
 * only gives up when its timer fires fails the test.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import pg from 'pg';
import { probeTls, sendCancel, serverNameFor } from '../../connection/cancel.js';
import { runningStatement } from '../harness/activity.js';
import { createTestPki, type TestPki } from '../harness/certs.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { eventually, refusedPort, startSilentServer } from '../harness/failures.js';
import { startWireProxy, type WireProxy } from '../harness/proxy.js';

const LONG = 15_000; // the timeout given when the answer must come at once
const AT_ONCE = 5_000; // "at once" on a busy shared machine, still well under LONG

const db = useTestDatabase('cancel');
let pki: TestPki;
let tlsProxy: WireProxy;

beforeAll(async () => {
  pki = createTestPki();
  tlsProxy = await startWireProxy(db.config as { host: string; port: number }, { tls: { certPem: pki.serverCertPem, keyPem: pki.serverKeyPem } });
}, 60_000);

afterAll(async () => {
  await tlsProxy?.close();
}, 60_000);

/** A session (raw pg, not the code under test) running a long pg_sleep, with its cancel key. */
async function sleeper(applicationName: string, port = db.config.port as number) {
  const client = new pg.Client({ ...db.config, port, ssl: false, application_name: applicationName });
  client.on('error', () => {});
  await client.connect();
  const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
  const outcome = client.query(`SELECT pg_sleep(30), '${applicationName}-marker'`).then(
    () => 'finished',
    (error: { code?: string }) => error.code ?? 'no code',
  );
  await runningStatement(db.sql, db.name, applicationName, `'${applicationName}-marker'`);
  return { processID, secretKey, outcome, end: () => client.end().catch(() => {}) };
}

async function timed<T>(promise: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await promise;
  return { value, ms: Date.now() - started };
}

interface Peer {
  port: number;
  /** What each connection sent, in order of connection. */
  received: Buffer[];
  /** Connections the client closed. */
  closed: number;
  close(): Promise<void>;
}

/** A loopback peer that answers the first packet with `reply` (e.g. 'N') and then stays silent. */
async function answeringPeer(reply: string): Promise<Peer> {
  const sockets = new Set<Socket>();
  const peer = { received: [] as Buffer[], closed: 0 };
  const server = createServer((socket) => {
    sockets.add(socket);
    const index = peer.received.push(Buffer.alloc(0)) - 1;
    socket.on('error', () => {});
    socket.on('close', () => peer.closed++);
    socket.on('data', (chunk) => {
      const first = peer.received[index]!.length === 0;
      peer.received[index] = Buffer.concat([peer.received[index]!, chunk]);
      if (first) socket.write(reply);
    });
  });
  return listening(server, sockets, peer);
}

/**
 * A loopback peer that accepts TLS as a PostgreSQL server does ('S', then a handshake with the
 * test CA's localhost / 127.0.0.1 certificate), records the SNI name and the packet sent inside
 * TLS, and closes the connection, as a server does once it has acted on a CancelRequest.
 */
async function tlsPeer(certificates: TestPki) {
  const sockets = new Set<Socket>();
  const peer = { received: [] as Buffer[], closed: 0, serverNames: [] as (string | false)[] };
  const secureContext = createSecureContext({ cert: certificates.serverCertPem, key: certificates.serverKeyPem });
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => peer.closed++);
    socket.once('data', () => {
      socket.write('S');
      const secure = new TLSSocket(socket, { isServer: true, secureContext });
      secure.on('error', () => {});
      secure.once('secure', () => peer.serverNames.push((secure as TLSSocket & { servername: string | false }).servername));
      secure.once('data', (packet) => {
        peer.received.push(packet);
        secure.end();
      });
    });
  });
  return { ...(await listening(server, sockets, peer)), serverNames: peer.serverNames };
}

async function listening(server: Server, sockets: Set<Socket>, peer: { received: Buffer[]; closed: number }): Promise<Peer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get received() {
      return peer.received;
    },
    get closed() {
      return peer.closed;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function cancelPacket(processID: number, secretKey: number): Buffer {
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(processID, 8);
  packet.writeInt32BE(secretKey, 12);
  return packet;
}

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

describe('sendCancel', () => {
  test('cancels the statement it names on the real server, and resolves true once the server closed the connection', async () => {
    const target = await sleeper('cancel-plain');
    try {
      const { value, ms } = await timed(sendCancel({ host: db.config.host as string, port: db.config.port as number, processID: target.processID, secretKey: target.secretKey, ssl: false }, LONG));
      expect(value).toBe(true);
      expect(ms).toBeLessThan(AT_ONCE);
      expect(await target.outcome).toBe('57014');
    } finally {
      await target.end();
    }
  }, 60_000);

  test('over TLS (a TLS-ending proxy in front of the real server): the statement is cancelled, nothing goes in clear', async () => {
    const target = await sleeper('cancel-tls');
    try {
      const before = tlsProxy.cancelRequests;
      const { value, ms } = await timed(sendCancel({ host: '127.0.0.1', port: tlsProxy.port, processID: target.processID, secretKey: target.secretKey, ssl: { ca: pki.caPem } }, LONG));
      expect(value).toBe(true);
      expect(ms).toBeLessThan(AT_ONCE);
      expect(await target.outcome).toBe('57014');
      expect(tlsProxy.cancelRequests - before).toBe(1);
      expect(tlsProxy.plaintextConnections).toBe(0);
    } finally {
      await target.end();
    }
  }, 60_000);

  test('over TLS, the packet is the CancelRequest for that key, with SNI for a host name and none for an IP address', async () => {
    const peer = await tlsPeer(pki);
    try {
      for (const host of ['localhost', '127.0.0.1']) {
        const { value, ms } = await timed(sendCancel({ host, port: peer.port, processID: 4242, secretKey: -123456789, ssl: { ca: pki.caPem } }, LONG));
        expect(value).toBe(true);
        expect(ms).toBeLessThan(AT_ONCE);
      }
      expect(peer.received).toEqual([cancelPacket(4242, -123456789), cancelPacket(4242, -123456789)]);
      expect(peer.serverNames).toEqual(['localhost', false]);
    } finally {
      await peer.close();
    }
  }, 60_000);

  test('a refused port: false at once, not when the timer fires', async () => {
    const { value, ms } = await timed(sendCancel({ host: '127.0.0.1', port: await refusedPort(), processID: 1, secretKey: 1, ssl: false }, LONG));
    expect(value).toBe(false);
    expect(ms).toBeLessThan(AT_ONCE);
  });

  test('a server that accepts and never answers: false when the timeout passes, and the connection is closed', async () => {
    const silent = await startSilentServer();
    const peer = await answeringPeer('');
    try {
      const { value, ms } = await timed(sendCancel({ host: '127.0.0.1', port: silent.port, processID: 1, secretKey: 1, ssl: false }, 300));
      expect(value).toBe(false);
      expect(ms).toBeGreaterThanOrEqual(250);
      // TLS wanted: the SSLRequest goes unanswered
      expect(await sendCancel({ host: '127.0.0.1', port: peer.port, processID: 1, secretKey: 1, ssl: { ca: pki.caPem } }, 300)).toBe(false);
      expect(await eventually(async () => peer.closed === 1)).toBe(true);
      expect(peer.received).toEqual([SSL_REQUEST]);
    } finally {
      await silent.close();
      await peer.close();
    }
  });

  test("TLS wanted and the server answers 'N': false at once, and nothing but the SSLRequest was sent", async () => {
    const peer = await answeringPeer('N');
    try {
      const { value, ms } = await timed(sendCancel({ host: '127.0.0.1', port: peer.port, processID: 7, secretKey: 7, ssl: { ca: pki.caPem } }, LONG));
      expect(value).toBe(false);
      expect(ms).toBeLessThan(AT_ONCE);
      expect(await eventually(async () => peer.closed === 1)).toBe(true);
      expect(peer.received).toEqual([SSL_REQUEST]);
    } finally {
      await peer.close();
    }
  });

  test('TLS wanted and the certificate is not trusted: false at once, the statement goes on', async () => {
    const target = await sleeper('cancel-untrusted');
    try {
      const { value, ms } = await timed(sendCancel({ host: '127.0.0.1', port: tlsProxy.port, processID: target.processID, secretKey: target.secretKey, ssl: { ca: pki.otherCaPem } }, LONG));
      expect(value).toBe(false);
      expect(ms).toBeLessThan(AT_ONCE);
      await runningStatement(db.sql, db.name, 'cancel-untrusted', `'cancel-untrusted-marker'`);
    } finally {
      await db.sql(`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'cancel-untrusted'`, [db.name]);
      await target.end();
    }
  }, 60_000);
});

test('serverNameFor: a host name is sent as SNI, an IPv4 or IPv6 address is not', () => {
  expect(['localhost', 'db1', '1db.example', 'db.example.com'].map(serverNameFor)).toEqual(['localhost', 'db1', '1db.example', 'db.example.com']);
  expect(['127.0.0.1', '::1', '10.0.0.12', 'fe80::1:2'].map(serverNameFor)).toEqual([undefined, undefined, undefined, undefined]);
});

describe('probeTls', () => {
  test("the real server: true when it has ssl on, false ('N') when off; a TLS-ending proxy: true", async () => {
    const [{ ssl }] = (await db.sql('SHOW ssl')) as [{ ssl: string }];
    expect(await probeTls(db.config.host as string, db.config.port as number, LONG)).toBe(ssl === 'on');
    expect(await probeTls('127.0.0.1', tlsProxy.port, LONG)).toBe(true);
  });

  test("sends one SSLRequest and reads the one-byte answer: 'S' true, 'N' false, anything else undefined; each at once, connection closed", async () => {
    for (const [reply, expected] of [['S', true], ['N', false], ['E', undefined]] as const) {
      const peer = await answeringPeer(reply);
      try {
        const { value, ms } = await timed(probeTls('127.0.0.1', peer.port, LONG));
        expect({ reply, value }).toEqual({ reply, value: expected });
        expect(ms).toBeLessThan(AT_ONCE);
        expect(await eventually(async () => peer.closed === 1)).toBe(true);
        expect(peer.received).toEqual([SSL_REQUEST]);
      } finally {
        await peer.close();
      }
    }
  });

  test('a refused port: undefined at once; a server that never answers: undefined when the timeout passes', async () => {
    const refused = await timed(probeTls('127.0.0.1', await refusedPort(), LONG));
    expect(refused.value).toBeUndefined();
    expect(refused.ms).toBeLessThan(AT_ONCE);
    const silent = await startSilentServer();
    try {
      const { value, ms } = await timed(probeTls('127.0.0.1', silent.port, 300));
      expect(value).toBeUndefined();
      expect(ms).toBeGreaterThanOrEqual(250);
    } finally {
      await silent.close();
    }
  });
});
