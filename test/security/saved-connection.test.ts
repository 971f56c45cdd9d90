/**
 * The playground's saved password goes only where it was saved for: same host, port, user and
 * database, over TLS at least as strict (same or stricter sslMode, same CA). An impostor on the
 * saved host and port that refuses TLS records whatever password it is sent.
 */
import { closeAll, type ConnectionConfig } from '../../index.js';
import { startPlayground, type Playground } from '../../playground/server.js';
import { createTestPki } from '../harness/certs.js';
import { expectNoSecretIn, watchSecret } from '../harness/secrets.js';
import { startPasswordListener, tcpHandlesClosed, type PasswordListener } from '../harness/password-listener.js';

let listener: PasswordListener;
const opened: Playground[] = [];

beforeAll(async () => {
  watchSecret(SAVED_PASSWORD);
  listener = await startPasswordListener('cleartext');
});

afterAll(async () => {
  await Promise.all(opened.map((playground) => playground.close()));
  await listener.close();
  await closeAll();
  await tcpHandlesClosed();
});

beforeEach(() => {
  listener.visits.length = 0;
});

async function playgroundSaving(saved: ConnectionConfig): Promise<(typed: ConnectionConfig) => Promise<{ status: number; code?: string }>> {
  const playground = await startPlayground({ connection: saved });
  opened.push(playground);
  const token = new URL(playground.url).searchParams.get('token');
  return async (typed) => {
    const response = await fetch(new URL('/api/test-connection', playground.url), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ connection: typed }),
    });
    const text = await response.text();
    expectNoSecretIn(undefined, text);
    const body = JSON.parse(text) as { error?: { code: string } };
    return { status: response.status, code: body.error?.code };
  };
}

const SAVED_PASSWORD = 'saved-verify-full-password';

test('a saved verify-full password is never sent under disable, allow or prefer', async () => {
  const ca = createTestPki().caPem;
  const saved: ConnectionConfig = { host: '127.0.0.1', port: listener.port, user: 'flow', database: 'app', password: SAVED_PASSWORD, sslMode: 'verify-full', sslCa: ca };
  const testTyped = await playgroundSaving(saved);
  const { password: _omitted, ...typed } = saved;
  for (const sslMode of ['disable', 'allow', 'prefer'] as const) {
    const reply = await testTyped({ ...typed, sslMode });
    expect({ sslMode, ...reply }).toEqual({ sslMode, status: 422, code: 'AUTHENTICATION_FAILED' });
  }
  // The impostor refuses TLS: it was reached in plaintext every time, and got no password.
  expect(listener.visits).toHaveLength(3);
  expect(listener.passwords()).toEqual([]);
});

test('reused only for the same host, port, user and database with TLS as strict, else the password is asked for', async () => {
  const ca = createTestPki().caPem;
  const saved: ConnectionConfig = { host: '127.0.0.1', port: listener.port, user: 'flow', database: 'app', password: SAVED_PASSWORD, sslMode: 'allow' };
  const testTyped = await playgroundSaving(saved);
  const { password: _omitted, ...typed } = saved;
  const refused: ConnectionConfig[] = [
    { ...typed, sslMode: 'disable' },
    { ...typed, database: 'other' },
    { ...typed, user: 'other' },
    { ...typed, host: 'localhost' },
    { ...typed, sslCa: ca }, // a CA the saved connection did not trust
  ];
  for (const connection of refused) {
    // (localhost may resolve to ::1, where nothing listens: refused rather than asked for a password)
    expect(await testTyped(connection)).toEqual({ status: 422, code: expect.stringMatching(/^(AUTHENTICATION_FAILED|CONNECTION_REFUSED)$/) });
  }
  expect(listener.passwords()).toEqual([]);
  // Same target, same or stricter mode that the impostor lets through in plaintext (allow): reused.
  // (allow then tries TLS, which the impostor refuses: SSL_NOT_SUPPORTED)
  expect((await testTyped({ ...typed })).status).toBe(422);
  expect(listener.passwords()).toEqual([SAVED_PASSWORD]);
  // A password typed in the page always wins.
  await testTyped({ ...typed, sslMode: 'disable', password: 'typed-now' });
  expect(listener.passwords()).toEqual([SAVED_PASSWORD, 'typed-now']);
});
