/**
 * resolveConfig's sshTunnel branch (connection/config.ts): a valid tunnel is resolved into the
 * configuration (the schema's default port filled in), a tunnel's own problems are INVALID_INPUT
 * naming its fields, and a configuration without a tunnel has none. Values only: no server.
 */
import { PgActionsError } from '../../connection/index.js';
import { resolveConfig } from '../../connection/config.js';

const base = { host: 'db.internal', database: 'app', user: 'flow', password: 'pw' };

test('a tunnel with a password is resolved, its port defaulted to 22', () => {
  const resolved = resolveConfig({ ...base, sshTunnel: { host: 'bastion', user: 'tunnel', password: 'tunnel-pw' } });
  expect(resolved.sshTunnel).toMatchObject({ host: 'bastion', port: 22, user: 'tunnel' });
  expect(resolved.host).toBe('db.internal');
});

test('a tunnel without password or key is INVALID_INPUT naming the tunnel', () => {
  let caught: unknown;
  try {
    resolveConfig({ ...base, sshTunnel: { host: 'bastion', user: 'tunnel' } });
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(PgActionsError);
  expect((caught as PgActionsError).code).toBe('INVALID_INPUT');
  expect((caught as PgActionsError).problems).toEqual(['connection.sshTunnel needs password or privateKey']);
});

test('without a tunnel the configuration has none', () => {
  expect(resolveConfig(base).sshTunnel).toBeUndefined();
  expect('sshTunnel' in resolveConfig(base)).toBe(false);
});
