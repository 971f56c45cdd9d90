/**
 * A step may not reach a Unix socket on the machine that runs it: there, peer or trust
 * authentication would let the step in as that machine's OS user, with no credential given.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeAll, resolveConfig, testConnection } from '../../connection/index.js';

let dir: string;
let server: Server;
let connections = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pg-actions-socket-'));
  server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(join(dir, '.s.PGSQL.5432'), resolve));
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await closeAll();
  rmSync(dir, { recursive: true, force: true });
});

test('a socket directory as host is INVALID_INPUT naming connection.host, and nothing connects', async () => {
  const result = await testConnection({ host: dir, port: 5432, user: 'postgres', database: 'postgres', sslMode: 'disable' });
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.error.code).toBe('INVALID_INPUT');
  expect(result.error.problems).toEqual(['connection.host names a Unix socket on the machine running the step; give a host name or IP address']);
  expect(connections).toBe(0);
});

test('also when a connection string names it (URIs with a socket host are already refused as invalid)', () => {
  expect(() => resolveConfig({ connectionString: `host=${dir} dbname=d user=u` })).toThrow(/^connection\.host names a Unix socket/);
  expect(() => resolveConfig({ connectionString: `postgresql://u@/d?host=${dir}` })).toThrow(/^connection\.connectionString is not a valid/);
});
