/**
 * A login refused with 28000 over a plaintext connection (SSL Mode "disable"): execute.ts `connect`
 * asks the server whether it accepts TLS (an SSLRequest), and a server that does gets SSL_REQUIRED,
 * which says what to change, instead of AUTHENTICATION_FAILED. ssl.test.ts shows it on real servers
 * (pg_hba.conf `hostssl` only) but starts servers of its own; this impostor on loopback speaks just
 * enough of the protocol: 'S' or 'N' to an SSLRequest (then closes), and PostgreSQL's 28000 FATAL
 * to a StartupMessage.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import { closeAll, execute, type ConnectionConfig } from '../../connection/index.js';
import { createTestPki } from '../harness/certs.js';
import { failure } from '../harness/failures.js';

const SSL_REQUEST = 80877103;
const PASSWORD = 'impostor-secret-4711';

interface Impostor {
  port: number;
  /** SSLRequests received, StartupMessages received. */
  sslRequests: number;
  logins: number;
  close(): Promise<void>;
}

function errorResponse(sqlstate: string, text: string): Buffer {
  const body = Buffer.from(`SFATAL\0VFATAL\0C${sqlstate}\0M${text}\0\0`);
  const header = Buffer.alloc(5);
  header.write('E');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/**
 * `acceptsTls`: 'S' to an SSLRequest, then (with `endsTls`) a TLS session in which the login is
 * refused the same way; without it the impostor hangs up after the 'S' (enough for the probe).
 */
async function startImpostor(acceptsTls: boolean, sqlstate = '28000', endsTls = false): Promise<Impostor> {
  const sockets = new Set<Socket>();
  const impostor: Impostor = { port: 0, sslRequests: 0, logins: 0, close: async () => undefined };
  const pki = createTestPki();
  const secureContext = createSecureContext({ cert: pki.serverCertPem, key: pki.serverKeyPem });
  const serve = (socket: Socket, encrypted: boolean) => {
    let buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (buffer.length < 8 || buffer.length < buffer.readInt32BE(0)) return;
      if (buffer.readInt32BE(4) === SSL_REQUEST) {
        impostor.sslRequests += 1;
        socket.off('data', onData);
        if (!acceptsTls) return void socket.end('N');
        socket.write('S');
        if (!endsTls) return void socket.end();
        const secure = new TLSSocket(socket, { isServer: true, secureContext });
        secure.on('error', () => {});
        return serve(secure, true);
      }
      impostor.logins += 1;
      const user = /user\0([^\0]*)\0/.exec(buffer.toString('utf8'))?.[1] ?? '';
      const text =
        sqlstate === '28000'
          ? `no pg_hba.conf entry for host "127.0.0.1", user "${user}", database "shop", ${encrypted ? 'SSL encryption' : 'no encryption'}`
          : `password authentication failed for user "${user}"`;
      socket.end(errorResponse(sqlstate, text));
    };
    socket.on('data', onData);
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    serve(socket, false);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  impostor.port = (server.address() as AddressInfo).port;
  impostor.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return impostor;
}

const impostors: Impostor[] = [];
afterAll(async () => {
  await closeAll();
  await Promise.all(impostors.map((impostor) => impostor.close()));
}, 30_000);

async function refusedLogin(acceptsTls: boolean, applicationName: string, sqlstate = '28000', sslMode: ConnectionConfig['sslMode'] = 'disable') {
  const impostor = await startImpostor(acceptsTls, sqlstate, sslMode !== 'disable');
  impostors.push(impostor);
  const config: ConnectionConfig = { host: '127.0.0.1', port: impostor.port, user: 'alice', password: PASSWORD, database: 'shop', sslMode, connectTimeoutMs: 5000, applicationName };
  return { impostor, error: await failure(execute(config, { text: 'SELECT 1' })) };
}

test('a server that accepts TLS: SSL_REQUIRED, naming the server, user, database and the SSL Mode', async () => {
  const { impostor, error } = await refusedLogin(true, 'tls-required-yes');
  expect(error.code).toBe('SSL_REQUIRED');
  expect(error.sqlstate).toBe('28000');
  expect(error.message).toBe(`127.0.0.1:${impostor.port} only accepts SSL connections for user "alice" and database "shop", and SSL Mode is "disable".`);
  expect(impostor.sslRequests).toBe(1); // the probe, after the refused plaintext login
  expect(impostor.logins).toBeGreaterThanOrEqual(1);
}, 30_000);

test('a server that refuses TLS too: the refusal stays AUTHENTICATION_FAILED', async () => {
  const { impostor, error } = await refusedLogin(false, 'tls-required-no');
  expect(error.code).toBe('AUTHENTICATION_FAILED');
  expect(error.sqlstate).toBe('28000');
  expect(impostor.sslRequests).toBe(1);
}, 30_000);

test('a wrong password (28P01) is not a TLS question: no probe, AUTHENTICATION_FAILED', async () => {
  const { impostor, error } = await refusedLogin(true, 'tls-required-password', '28P01');
  expect(error.code).toBe('AUTHENTICATION_FAILED');
  expect(error.sqlstate).toBe('28P01');
  expect(impostor.sslRequests).toBe(0);
}, 30_000);

test('a login refused over TLS (SSL Mode "require"): no probe, AUTHENTICATION_FAILED, not "SSL Mode is disable"', async () => {
  const { impostor, error } = await refusedLogin(true, 'tls-required-over-tls', '28000', 'require');
  expect(error.code).toBe('AUTHENTICATION_FAILED');
  expect(error.sqlstate).toBe('28000');
  expect(impostor.sslRequests).toBe(1); // the login's own
}, 30_000);
