/**
 * The playground's saved connection with an SSH tunnel: the page never sees the SSH password,
 * key or passphrase, and a connection typed in the page gets them (or the saved database
 * password) only for the same SSH server, user and host key.
 */
import { SavedConnection } from '../../playground/saved-connection.js';
import type { ConnectionConfig } from '../../index.js';

const FINGERPRINT = 'SHA256:' + 'A'.repeat(43);
const saved: ConnectionConfig = {
  host: '10.0.3.12',
  database: 'app',
  user: 'flow_user',
  password: 'db-secret-password',
  sslMode: 'require',
  sshTunnel: {
    host: 'bastion.example.com',
    user: 'tunnel',
    password: 'ssh-secret-password',
    privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-body\n-----END OPENSSH PRIVATE KEY-----\n',
    passphrase: 'secret-passphrase',
    hostKeyFingerprint: FINGERPRINT,
  },
};
const SECRETS = ['db-secret-password', 'ssh-secret-password', 'secret-key-body', 'secret-passphrase'];
const connection = new SavedConnection(saved);
const typed = (ssh: Partial<NonNullable<ConnectionConfig['sshTunnel']>>, extra: Partial<ConnectionConfig> = {}): ConnectionConfig => {
  const { password: _, sshTunnel, ...plain } = saved;
  const { password: _p, privateKey: _k, passphrase: _s, ...tunnel } = sshTunnel!;
  return { ...plain, sshTunnel: { ...tunnel, ...ssh }, ...extra };
};

test('GET /api/connection shows the tunnel without its secrets, saying which exist', () => {
  const view = connection.describe();
  const text = JSON.stringify(view);
  for (const secret of SECRETS) expect(text).not.toContain(secret);
  expect(view.sshTunnel).toEqual({ host: 'bastion.example.com', user: 'tunnel', hostKeyFingerprint: FINGERPRINT, hasPassword: true, hasPrivateKey: true });
});

test('the SSH secrets are among what the server never logs', () => {
  expect(connection.secrets()).toEqual(expect.arrayContaining(['ssh-secret-password', saved.sshTunnel!.privateKey, 'secret-passphrase']));
});

test('a typed connection through the same SSH server, user and host key gets the saved SSH and database secrets', () => {
  for (const fingerprint of [FINGERPRINT, FINGERPRINT.slice('SHA256:'.length)]) {
    const resolved = connection.resolve(typed({ hostKeyFingerprint: fingerprint, port: 22, password: '' }));
    expect(resolved.password).toBe('db-secret-password');
    expect(resolved.sshTunnel).toMatchObject({ password: 'ssh-secret-password', privateKey: saved.sshTunnel!.privateKey, passphrase: 'secret-passphrase' });
  }
});

test.each([
  ['another SSH host', { host: 'evil.example.com' }],
  ['another SSH port', { port: 2222 }],
  ['another SSH user', { user: 'root' }],
  ['another host key', { hostKeyFingerprint: 'SHA256:' + 'B'.repeat(43) }],
  ['no host key check', { hostKeyFingerprint: undefined }],
])('%s: no saved secret goes with it, SSH or database', (_, change) => {
  const resolved = connection.resolve(typed(change));
  expect(resolved.password).toBeUndefined();
  expect(resolved.sshTunnel!.password).toBeUndefined();
  expect(resolved.sshTunnel!.privateKey).toBeUndefined();
  expect(resolved.sshTunnel!.passphrase).toBeUndefined();
});

test('the saved database password does not go through a tunnel when the saved connection had none, nor straight when it had one', () => {
  const { sshTunnel: _, ...direct } = saved;
  expect(new SavedConnection(direct).resolve(typed({ password: 'x' })).password).toBeUndefined();
  expect(connection.resolve({ ...typed({}), sshTunnel: undefined }).password).toBeUndefined();
});

test('a typed SSH password is used as given, not replaced by the saved key', () => {
  const resolved = connection.resolve(typed({ password: 'typed-ssh-password' }));
  expect(resolved.sshTunnel).toEqual(expect.objectContaining({ password: 'typed-ssh-password' }));
  expect(resolved.sshTunnel!.privateKey).toBeUndefined();
});
