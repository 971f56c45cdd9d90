/**
 * Who may use the playground: only a caller with its access token (cookie traded from the URL
 * `serve` prints, or Authorization: Bearer), a token being optional on loopback only; and a
 * request target that is not a URL is the client's 400, never a 500 with a stack trace.
 */
import { jest } from '@jest/globals';
import { once } from 'node:events';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { startPlayground, type Playground } from '../../playground/server.js';
import { printedPlaygroundUrl, startCli } from '../cli/cli.js';
import { tcpHandlesClosed } from '../harness/password-listener.js';
import { expectNoSecretIn, watchSecret } from '../harness/secrets.js';

const opened: Playground[] = [];
async function open(options: Parameters<typeof startPlayground>[0] = {}): Promise<Playground> {
  const playground = await startPlayground(options);
  watchSecret(playground.token); // a reply that echoes it is a leak
  opened.push(playground);
  return playground;
}

afterAll(async () => {
  await Promise.all(opened.map((playground) => playground.close()));
  await tcpHandlesClosed();
});

async function status(url: string | URL, headers: Record<string, string> = {}): Promise<{ status: number; code?: string; text: string }> {
  const response = await fetch(url, { headers, redirect: 'manual' });
  const text = await response.text();
  expectNoSecretIn(undefined, text);
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: response.status, code, text };
}

/** An IPv4 address of this machine other than loopback, when it has one (else loopback: still through the 0.0.0.0 socket). */
function ownAddress(): string {
  const external = Object.values(networkInterfaces()).flat().find((entry) => entry && entry.family === 'IPv4' && !entry.internal);
  return external?.address ?? '127.0.0.1';
}

test('every API call needs the token: none or a wrong one is a 401 that does not echo it', async () => {
  const playground = await open();
  expect(playground.token).toMatch(/^[\w-]{32}$/);
  expect(new URL(playground.url).searchParams.get('token')).toBe(playground.token);
  const api = new URL('/api/connection', playground.url);
  expect(await status(api)).toEqual(expect.objectContaining({ status: 401, code: 'UNAUTHORIZED' }));
  const wrong = `${playground.token}x`;
  const refused = await status(api, { Authorization: `Bearer ${wrong}` });
  expect(refused).toEqual(expect.objectContaining({ status: 401, code: 'UNAUTHORIZED' }));
  expect(refused.text).not.toContain(playground.token!);
  expect((await status(api, { Cookie: `pg_actions_token_${api.port}=${wrong}` })).status).toBe(401);
  // Unknown API paths too: nothing about the API is told without the token.
  expect((await status(new URL('/api/nothing', playground.url))).status).toBe(401);
  expect((await status(api, { Authorization: `Bearer ${playground.token}` })).status).toBe(200);
});

test('the URL serve prints is traded for an HttpOnly, SameSite=Strict cookie and dropped from the address bar', async () => {
  const playground = await open();
  const response = await fetch(playground.url, { redirect: 'manual' });
  expect(response.status).toBe(303);
  expect(response.headers.get('location')).toBe('/');
  const cookie = response.headers.get('set-cookie')!;
  const port = new URL(playground.url).port;
  expect(cookie).toBe(`pg_actions_token_${port}=${playground.token}; Path=/; HttpOnly; SameSite=Strict`);
  const api = new URL('/api/connection', playground.url);
  expect((await status(api, { Cookie: cookie.split(';')[0]! })).status).toBe(200);
  // The page itself holds nothing secret; a wrong token in its URL is refused.
  expect((await status(new URL('/', playground.url))).status).toBe(200);
  expect((await status(new URL('/?token=guess', playground.url))).status).toBe(401);
});

test('no token only on loopback: token false works there and is refused on 0.0.0.0', async () => {
  const open_ = await open({ token: false });
  expect(open_.url).not.toContain('token');
  expect((await status(new URL('/api/connection', open_.url))).status).toBe(200);
  const attempt = await startPlayground({ host: '0.0.0.0', token: false }).then(
    (started) => (opened.push(started), 'started without a token'),
    (error: Error) => error.message,
  );
  expect(attempt).toMatch(/needs its access token/);
});

test('listening on 0.0.0.0, a request to this machine\'s own address needs the token', async () => {
  const playground = await open({ host: '0.0.0.0' });
  const api = new URL(`http://${ownAddress()}:${new URL(playground.url).port}/api/connection`);
  expect(await status(api)).toEqual(expect.objectContaining({ status: 401, code: 'UNAUTHORIZED' }));
  expect((await status(api, { Authorization: `Bearer ${playground.token}` })).status).toBe(200);
});

describe('pg-actions serve --host 0.0.0.0', () => {
  test('prints a token URL; the token is required at this machine\'s address', async () => {
    const { child, output } = startCli(['serve', '--host', '0.0.0.0', '--port', '0', '--connection', 'postgres://flow@127.0.0.1:1/app']);
    const exited = once(child, 'close');
    try {
      const printed = await printedPlaygroundUrl(output);
      const token = printed.searchParams.get('token');
      expect(token).toMatch(/^[\w-]{32}$/);
      // Built from this machine's own address and the port, not from the printed host.
      const api = `http://${ownAddress()}:${printed.port}/api/connection`;
      expect((await status(api)).status).toBe(401);
      expect((await status(api, { Authorization: `Bearer ${token}` })).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    await exited;
  });

  test('--no-token on a non-loopback host is exit 2, before anything starts', async () => {
    const { child, output } = startCli(['serve', '--host', '0.0.0.0', '--no-token', '--connection', 'postgres://flow@127.0.0.1:1/app']);
    const [code] = await once(child, 'close');
    expect(code).toBe(2);
    expect(output().stderr).toContain('--no-token is only allowed on a loopback --host');
  });
});

test('a request target that is not a URL (GET //[) is a 400, with nothing printed on the terminal', async () => {
  const playground = await open();
  const errors = jest.spyOn(console, 'error').mockImplementation(() => {});
  try {
    const { port } = new URL(playground.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.end(`GET //[ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${playground.token}\r\nConnection: close\r\n\r\n`);
    let reply = '';
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString()));
    await once(socket, 'close');
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(reply).toContain('"code":"BAD_REQUEST"');
    expect(reply).not.toMatch(/at \w+ \(|TypeError|Invalid URL/);
    expect(errors).not.toHaveBeenCalled();
  } finally {
    errors.mockRestore();
  }
});
