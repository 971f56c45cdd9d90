/**
 * The playground with a connection that logs in by TLS client certificate (a real server whose
 * pg_hba.conf says `cert`): the page learns that a client key exists but never sees it, and the
 * saved key is reused only with the saved certificate on the same server.
 */
import { closeAll, type ConnectionConfig } from '../../index.js';
import { startPlayground, type Playground } from '../../playground/server.js';
import { createTestPki } from '../harness/certs.js';
import { startClientCertServer, type TestServer } from '../harness/servers.js';

const pki = createTestPki();
let server: TestServer;
let playground: Playground;
let saved: ConnectionConfig;

beforeAll(async () => {
  server = await startClientCertServer();
  saved = {
    host: server.host, port: server.port, database: 'postgres', user: server.user,
    sslMode: 'verify-full', sslCa: pki.caPem, sslCert: pki.clientCertPem, sslKey: pki.clientKeyPem,
  };
  playground = await startPlayground({ connection: saved });
}, 60_000);

afterAll(async () => {
  await playground?.close();
  await closeAll();
  await server?.dispose();
}, 30_000);

const keyBody = pki.clientKeyPem.split('\n').slice(1, -2).join('\n');

async function post(path: string, body: unknown): Promise<{ status: number; json: any }> {
  const headers = { Authorization: `Bearer ${playground.token}`, 'Content-Type': 'application/json' };
  const response = await fetch(new URL(path, playground.url), { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await response.text();
  expect(text).not.toContain(keyBody);
  return { status: response.status, json: JSON.parse(text) };
}

test('GET /api/connection shows the certificates and that a key is saved, never the key', async () => {
  const response = await fetch(new URL('/api/connection', playground.url), { headers: { Authorization: `Bearer ${playground.token}` } });
  const text = await response.text();
  expect(text).not.toContain(keyBody);
  const { sslKey: _key, ...visible } = saved;
  expect(JSON.parse(text)).toEqual({ configured: true, hasPassword: false, hasSslKey: true, ...visible });
});

test('the saved connection logs in with its client certificate', async () => {
  const reply = await post('/api/test-connection', { connection: 'default' });
  expect(reply.json).toEqual(expect.objectContaining({ ok: true, user: server.user, ssl: expect.objectContaining({ enabled: true }) }));
});

test('a typed copy without the key reuses the saved key (same server, user, database and certificate)', async () => {
  const { sslKey: _key, ...typed } = saved;
  const reply = await post('/api/test-connection', { connection: typed });
  expect(reply.json).toEqual(expect.objectContaining({ ok: true, database: saved.database }));
});

test('the saved key never goes to another host name or database, nor with another certificate', async () => {
  const { sslKey: _key, ...typed } = saved;
  const elsewhere = [{ ...typed, host: 'localhost' }, { ...typed, database: 'template1' }, { ...typed, sslCert: pki.untrustedClientCertPem }];
  for (const connection of elsewhere) {
    const reply = await post('/api/test-connection', { connection });
    expect(reply.status).toBe(400);
    expect(reply.json.error.code).toBe('INVALID_INPUT');
    expect(reply.json.error.message).toContain('sslKey is required when sslCert is given');
  }
});
