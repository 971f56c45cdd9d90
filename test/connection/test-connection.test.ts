import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { ConnectionDiagnosis, ConnectionTestResult } from '../../connection/index.js';
import { serverUrl } from '../harness/db.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { watchSecret } from '../harness/secrets.js';
import { refusedPort, testConnectionChecked as testConnection } from '../harness/failures.js';

const db = useTestDatabase('testconn');
const role = `pga_tc_${randomBytes(4).toString('hex')}`;
const rolePassword = `tc-${randomBytes(8).toString('hex')}`;

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${role} LOGIN PASSWORD '${rolePassword}'`);
  watchSecret(rolePassword);
}, 30_000);

afterAll(async () => {
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  await admin.query(`DROP ROLE IF EXISTS ${role}`);
  await admin.end();
}, 30_000);

function diagnosis(result: ConnectionTestResult): ConnectionDiagnosis {
  if (!result.ok) throw new Error(`expected ok, got ${result.error.code}: ${result.error.message}`);
  return result;
}

test('as the superuser: ok, who and where, latency, and the warnings', async () => {
  const result = diagnosis(await testConnection(db.config));
  const [{ server_version }] = (await db.sql<{ server_version: string }>('SHOW server_version')) as [{ server_version: string }];
  expect(result.ok).toBe(true);
  expect(result.serverVersion).toBe(server_version);
  expect(result.user).toBe(db.config.user);
  expect(result.database).toBe(db.name);
  expect(typeof result.latencyMs).toBe('number');
  expect(Number.isFinite(result.latencyMs)).toBe(true);
  expect(result.latencyMs).toBeGreaterThan(0);
  expect(result.latencyMs).toBeLessThan(5000);
  expect(result.ssl).toEqual({ enabled: false, protocol: null, cipher: null });

  const superuser = result.warnings.filter((w) => /superuser/i.test(w));
  expect(superuser).toHaveLength(1);
  expect(superuser[0]).toContain(`"${db.config.user}"`);
  expect(superuser[0]).toMatch(/CREATE ROLE \w+ LOGIN PASSWORD/);
  expect(superuser[0]).toContain(`GRANT CONNECT ON DATABASE "${db.name}" TO`);

  const plaintext = result.warnings.filter((w) => /not encrypted/i.test(w));
  expect(plaintext).toHaveLength(1);
  expect(plaintext[0]).toMatch(/SSL Mode "prefer"/);
  expect(plaintext[0]).toMatch(/verify-full/);
  expect(result.warnings).toHaveLength(2);
  // JSON-safe: a host can store the diagnosis as it is
  expect(JSON.parse(JSON.stringify(result))).toEqual(result);
});

test('the diagnosis names the SSL mode that was asked for', async () => {
  const result = diagnosis(await testConnection({ ...db.config, sslMode: 'disable' }));
  expect(result.warnings.find((w) => /not encrypted/i.test(w))).toMatch(/SSL Mode "disable"/);
});

test('as a role without superuser: no superuser warning', async () => {
  const result = diagnosis(await testConnection({ ...db.config, user: role, password: rolePassword }));
  expect(result.user).toBe(role);
  expect(result.database).toBe(db.name);
  expect(result.warnings.some((w) => /superuser/i.test(w))).toBe(false);
  expect(result.warnings.some((w) => /not encrypted/i.test(w))).toBe(true);
});

test('a refused port: { ok: false, error } with the code, never a throw', async () => {
  const port = await refusedPort();
  const result = await testConnection({ ...db.config, host: '127.0.0.1', port });
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(Object.keys(result).sort()).toEqual(['error', 'ok']);
  expect(result.error.code).toBe('CONNECTION_REFUSED');
  expect(result.error.message).toContain(`127.0.0.1:${port}`);
  expect(result.error.fixes.length).toBeGreaterThan(0);
});

test('a wrong password for the role: AUTHENTICATION_FAILED', async () => {
  const result = await testConnection({ ...db.config, user: role, password: 'wrong-password' });
  expect(result.ok ? 'ok' : result.error.code).toBe('AUTHENTICATION_FAILED');
});

test('an invalid configuration: { ok: false } with INVALID_INPUT', async () => {
  const result = await testConnection({ host: '127.0.0.1', port: 0, database: 'x', user: 'y' });
  expect(result.ok ? 'ok' : result.error.code).toBe('INVALID_INPUT');
  expect(result.ok ? [] : result.error.problems).toEqual(['connection.port must be >= 1']);
});

test('a server older than the tested range (12) is warned about; 12 and later are not', async () => {
  // The real 12+ path is covered above (and by npm run test:matrix); an 11 cannot be started here.
  const { warningsFor } = await import('../../connection/test-connection.js');
  const row = { version: '11.22', version_num: 110022, user: 'app', database: 'app', superuser: false, ssl: true, protocol: 'TLSv1.3', cipher: 'x' };
  expect(warningsFor(row, 'verify-full', true)).toEqual([
    'PostgreSQL 11.22 is older than 12, the oldest version pg-actions is tested against (12 to 18); upgrade the server, or check each step\'s output carefully.',
  ]);
  expect(warningsFor({ ...row, version: '12.22', version_num: 120022 }, 'verify-full', true)).toEqual([]);
});
