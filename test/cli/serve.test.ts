/** `pg-actions serve --connection … --port 0`: prints the playground URL, serves it, ends cleanly on SIGTERM. */
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { useTestDatabase } from '../harness/use-test-database.js';
import { acceptsConnections } from '../harness/failures.js';
import { databaseUrl, expectNoPasswordPrinted, startCli } from './cli.js';

const db = useTestDatabase('cli_serve');
afterAll(async () => {
  expectNoPasswordPrinted();
}, 30_000);

async function waitFor<T>(probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50)); // polling interval, not a wait for a condition
  }
}

test('serve prints a URL whose /api/actions answers, and SIGTERM ends it with exit 0', async () => {
  const { child, output } = startCli(['serve', '--connection', databaseUrl(db), '--port', '0']);
  const exited = once(child, 'close');
  try {
    // Both lines, whichever pipe read they arrive in.
    const url = await waitFor(() => (/Database: /.test(output().stdout) ? /playground: (http:\/\/\S+)/.exec(output().stdout)?.[1] : undefined), 15_000);
    expect(output().stdout).toMatch(/Database: postgres:\/\/[^:]+:\*\*\*@/);
    // Listening on loopback only: 127.0.0.2 (loopback, another address) is refused, as any other interface is.
    const { port } = new URL(url);
    expect(await acceptsConnections('127.0.0.1', Number(port))).toBe(true);
    expect(await acceptsConnections('127.0.0.2', Number(port))).toBe(false);
    const token = new URL(url).searchParams.get('token');
    expect(token).toMatch(/^[\w-]{32}$/);
    expect((await fetch(new URL('api/actions', url))).status).toBe(401);
    const response = await fetch(new URL('api/actions', url), { headers: { Authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    expect(JSON.stringify(await response.json())).toContain('query-rows');
  } finally {
    child.kill('SIGTERM');
  }
  const [code, signal] = await exited;
  expect({ code, signal, stderr: output().stderr }).toEqual({ code: 0, signal: null, stderr: '' });
});

test('serve with a bad --port is exit 2', async () => {
  const { child, output } = startCli(['serve', '--connection', databaseUrl(db), '--port', 'eighty']);
  const [code] = await once(child, 'close');
  expect(code).toBe(2);
  expect(output().stderr).toContain('--port must be a number');
});

test('serve on a port another program holds: exit 1, LISTEN_FAILED naming the port, with its fixes', async () => {
  const holder = createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  const port = (holder.address() as AddressInfo).port;
  try {
    const { child, output } = startCli(['serve', '--connection', databaseUrl(db), '--port', String(port), '--json']);
    const [code] = await once(child, 'close');
    expect(code).toBe(1);
    const { error } = JSON.parse(output().stderr.trim().split('\n').pop()!) as { error: { code: string; message: string; fixes: string[] } };
    expect(error).toMatchObject({ code: 'LISTEN_FAILED', message: `the default host:${port}: EADDRINUSE` });
    expect(error.fixes[0]).toBe('Choose another port with --port (0 picks a free one).');
  } finally {
    holder.close();
  }
});
