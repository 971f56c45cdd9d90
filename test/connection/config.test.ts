/** resolveConfig: schema validation, libpq connection strings, defaults. No server needed. */
import { generateKeyPairSync } from 'node:crypto';
import { ERROR_CATALOGUE, PgActionsError, resolveConfig, type ResolvedConfig } from '../../connection/index.js';
import { createTestPki } from '../harness/certs.js';
import { expectNoSecretIn } from '../harness/secrets.js';

function problemsOf(config: unknown, root?: string): string[] {
  try {
    resolveConfig(config, root);
  } catch (error) {
    expect(error).toBeInstanceOf(PgActionsError);
    const e = error as PgActionsError;
    expectNoSecretIn(e);
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.title).toBe(ERROR_CATALOGUE.INVALID_INPUT.title);
    expect(e.fixes.length).toBeGreaterThan(0);
    expect(e.problems?.length).toBeGreaterThan(0);
    for (const problem of e.problems ?? []) expect(e.message).toContain(problem);
    return [...(e.problems ?? [])];
  }
  throw new Error(`expected ${JSON.stringify(config)} to be refused`);
}

const DEFAULTS = {
  port: 5432,
  sslMode: 'prefer',
  applicationName: 'pg-actions',
  connectTimeoutMs: 10000,
  statementTimeoutMs: 60000,
  maxResultBytes: 10485760,
  pooler: 'none',
} as const;

describe('defaults', () => {
  test('are applied to what is not given', () => {
    expect(resolveConfig({ host: 'db.example.com', database: 'shop', user: 'alice' })).toEqual({
      host: 'db.example.com',
      database: 'shop',
      user: 'alice',
      ...DEFAULTS,
    });
  });

  test('do not override what is given', () => {
    const given = {
      host: 'h', database: 'd', user: 'u', password: 'pw', port: 6543, sslMode: 'verify-full' as const, applicationName: 'etl',
      connectTimeoutMs: 2500, statementTimeoutMs: 1000, maxResultBytes: 2048, pooler: 'transaction' as const,
    };
    expect(resolveConfig(given)).toEqual(given);
  });

  test('undefined fields count as not given', () => {
    expect(resolveConfig({ host: 'h', database: 'd', user: 'u', port: undefined, sslMode: undefined })).toMatchObject({ port: 5432, sslMode: 'prefer' });
  });
});

describe('invalid configurations name every bad field', () => {
  test('a port that is not a number', () => {
    expect(problemsOf({ host: 'x', port: 'abc' })).toContain('connection.port must be a whole number');
  });

  test('an unknown field', () => {
    expect(problemsOf({ host: 'h', database: 'd', user: 'u', hostname: 'h2' })).toEqual(['connection.hostname is not a known field']);
  });

  test('an sslMode outside the enum', () => {
    expect(problemsOf({ host: 'h', database: 'd', user: 'u', sslMode: 'sometimes' })).toEqual([
      'connection.sslMode must be one of: "disable", "allow", "prefer", "require", "verify-ca", "verify-full"',
    ]);
  });

  test('host, database and user missing', () => {
    expect(problemsOf({})).toEqual([
      'connection.host is required (or give connection.connectionString)',
      'connection.database is required (or give connection.connectionString)',
      'connection.user is required (or give connection.connectionString)',
    ]);
    expect(problemsOf({ host: 'h', user: 'u' })).toEqual(['connection.database is required (or give connection.connectionString)']);
  });

  test('all problems at once, each naming its field', () => {
    const problems = problemsOf({ host: 'x', port: 'abc', sslMode: 'sometimes', bogus: 1, connectTimeoutMs: 50, sslCa: 'not a pem', maxResultBytes: 2048.5 });
    expect(problems).toEqual(expect.arrayContaining([
      'connection.port must be a whole number',
      'connection.bogus is not a known field',
      expect.stringMatching(/^connection\.sslMode must be one of/),
      'connection.connectTimeoutMs must be >= 100',
      'connection.sslCa is not in the expected format',
      'connection.maxResultBytes must be a whole number',
    ]));
    expect(problems).toHaveLength(6);
  });

  test('ranges', () => {
    expect(problemsOf({ host: 'h', database: 'd', user: 'u', port: 70000 })).toEqual(['connection.port must be <= 65535']);
    expect(problemsOf({ host: 'h', database: 'd', user: 'u', port: 0 })).toEqual(['connection.port must be >= 1']);
    expect(problemsOf({ host: 'h', database: 'd', user: 'u', maxResultBytes: 10 })).toEqual(['connection.maxResultBytes must be >= 1024']);
    expect(problemsOf({ host: '', database: 'd', user: 'u' })).toEqual([expect.stringMatching(/^connection\.host /)]);
  });

  test('a client certificate without its key', () => {
    const cert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
    expect(problemsOf({ host: 'h', database: 'd', user: 'u', sslCert: cert })).toEqual(['connection.sslKey is required when sslCert is given']);
  });

  describe('pasted TLS material is read before any connection attempt', () => {
    const pki = createTestPki();
    const base = { host: 'h', database: 'd', user: 'u', sslMode: 'verify-full' as const };

    test('a CA bundle, a client certificate and its key are accepted', () => {
      const config = resolveConfig({ ...base, sslCa: pki.caPem + pki.otherCaPem, sslCert: pki.clientCertPem, sslKey: pki.clientKeyPem });
      expect(config.sslKey).toBe(pki.clientKeyPem);
    });

    test('an unreadable certificate names the field (and which certificate of a bundle)', () => {
      const broken = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
      expect(problemsOf({ ...base, sslCa: pki.caPem + broken })).toEqual(['connection.sslCa: certificate 2 of 2 is not a readable PEM certificate']);
      expect(problemsOf({ ...base, sslCa: '-----BEGIN CERTIFICATE-----\nMIIB' })).toEqual(['connection.sslCa holds no complete PEM certificate']);
      expect(problemsOf({ ...base, sslCert: broken, sslKey: pki.clientKeyPem })).toEqual(['connection.sslCert is not a readable PEM certificate']);
    });

    test('a key that belongs to another certificate, never quoting the key', () => {
      const error = (() => {
        try {
          resolveConfig({ ...base, sslCert: pki.clientCertPem, sslKey: pki.serverKeyPem });
        } catch (caught) {
          return caught as PgActionsError;
        }
        throw new Error('expected a refusal');
      })();
      expect(error.problems).toEqual(['connection.sslKey does not belong to connection.sslCert']);
      const keyBody = pki.serverKeyPem.split('\n')[1]!;
      expect(JSON.stringify({ ...error, message: error.message })).not.toContain(keyBody);
    });

    test('an unreadable or passphrase-protected key', () => {
      const encrypted = generateKeyPairSync('ec', {
        namedCurve: 'P-256',
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' },
      }).privateKey;
      expect(problemsOf({ ...base, sslCert: pki.clientCertPem, sslKey: encrypted })).toEqual([
        expect.stringMatching(/^connection\.sslKey is encrypted with a passphrase; give the key unencrypted/),
      ]);
      expect(problemsOf({ ...base, sslCert: pki.clientCertPem, sslKey: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----' })).toEqual([
        'connection.sslKey is not a readable PEM private key',
      ]);
    });
  });

  test('not an object at all', () => {
    expect(problemsOf(null)).toEqual(['connection must be an object']);
    expect(problemsOf('postgres://u@h/d')).toEqual(['connection must be an object']);
  });

  test('the root path is the caller\'s', () => {
    expect(problemsOf({ host: 'x', port: 'abc' }, 'input.connection')).toContain('input.connection.port must be a whole number');
  });
});

describe('connection strings', () => {
  test('a URI with sslmode and a percent-encoded password', () => {
    const config = resolveConfig({ connectionString: 'postgres://alice:p%40ss%20w%2Frd%3A%25@db.example.com:6543/shop?sslmode=require' });
    expect(config).toEqual<ResolvedConfig>({
      ...DEFAULTS,
      host: 'db.example.com',
      port: 6543,
      database: 'shop',
      user: 'alice',
      password: 'p@ss w/rd:%',
      sslMode: 'require',
    });
    expect(config).not.toHaveProperty('connectionString');
  });

  test('postgresql:// with application_name and connect_timeout (seconds)', () => {
    expect(resolveConfig({ connectionString: 'postgresql://bob@10.0.0.5/reports?application_name=etl&connect_timeout=5' })).toMatchObject({
      host: '10.0.0.5', port: 5432, user: 'bob', database: 'reports', applicationName: 'etl', connectTimeoutMs: 5000,
    });
  });

  test('the keyword/value form', () => {
    expect(resolveConfig({ connectionString: "host=db.example.com port=6543 dbname=shop user=alice password='it\\'s a secret' sslmode=require" })).toEqual({
      ...DEFAULTS,
      host: 'db.example.com',
      port: 6543,
      database: 'shop',
      user: 'alice',
      password: "it's a secret",
      sslMode: 'require',
    });
    expect(resolveConfig({ connectionString: '  host = h   dbname = d user=u  ' })).toMatchObject({ host: 'h', database: 'd', user: 'u' });
  });

  test('explicit fields override the string', () => {
    const config = resolveConfig({
      connectionString: 'postgres://alice:from-string@h1:6543/shop?sslmode=require&application_name=etl',
      host: 'h2',
      password: 'explicit',
      sslMode: 'verify-full',
    });
    expect(config).toMatchObject({ host: 'h2', port: 6543, user: 'alice', database: 'shop', password: 'explicit', sslMode: 'verify-full', applicationName: 'etl' });
  });

  test('the string completes what the fields leave out', () => {
    expect(resolveConfig({ connectionString: 'host=h dbname=d', user: 'u' })).toMatchObject({ host: 'h', database: 'd', user: 'u' });
    expect(problemsOf({ connectionString: 'postgres://h/d' })).toEqual(['connection.user is required (or give connection.connectionString)']);
  });

  test.each([
    ['URI', 'postgres://u:pw@h/d?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem'],
    ['keyword/value', 'host=h dbname=d user=u sslrootcert=/etc/ssl/ca.pem'],
  ])('sslrootcert= is refused (%s): a step must not read local files', (_, connectionString) => {
    const problems = problemsOf({ connectionString });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^connection\.connectionString uses sslrootcert, which names a file/);
    expect(problems[0]).toMatch(/sslCa/);
  });

  test.each(['sslcert', 'sslkey', 'passfile', 'service'])('%s= is refused too', (name) => {
    expect(problemsOf({ connectionString: `postgres://u@h/d?${name}=x` })).toEqual([expect.stringContaining(`uses ${name}`)]);
  });

  test('a bad sslmode, a bad port, and text that is neither form', () => {
    expect(problemsOf({ connectionString: 'postgres://u@h/d?sslmode=sometimes' })).toEqual([
      'connection.connectionString has sslmode=sometimes; it must be one of: disable, allow, prefer, require, verify-ca, verify-full',
    ]);
    expect(problemsOf({ connectionString: 'host=h dbname=d user=u port=99999' })).toEqual([
      'connection.connectionString has a port that is not a number from 1 to 65535',
    ]);
    expect(problemsOf({ connectionString: 'postgres://u:pw@h:99999/d' })).toEqual([expect.stringMatching(/^connection\.connectionString /)]);
    expect(problemsOf({ connectionString: 'just some words' })).toEqual([
      'connection.connectionString is neither a postgres:// URI nor keyword=value pairs',
    ]);
  });

  test('an error never echoes the string (it may hold a password)', () => {
    for (const connectionString of [
      'postgres://u:hunter2-secret@h:99999/d',
      'postgres://u:hunter2-secret@h/d?sslrootcert=/x',
      "host=h password='hunter2-secret' dbname=d user=u 'junk",
    ]) {
      for (const problem of problemsOf({ connectionString })) expect(problem).not.toContain('hunter2-secret');
    }
  });

  // libpq refuses both of these; pg-actions documents "parsed with libpq semantics".
  test('an unknown parameter is refused as libpq does, so a typo cannot silently drop sslmode', () => {
    expect(problemsOf({ connectionString: 'postgres://u:pw@h/d?sslmod=require' })).toEqual([expect.stringContaining('sslmod')]);
    expect(problemsOf({ connectionString: 'host=h dbname=d user=u sslmod=require' })).toEqual([expect.stringContaining('sslmod')]);
  });

  test('an invalid percent-encoding is refused as libpq does', () => {
    expect(problemsOf({ connectionString: 'postgres://u:pw%zz@h/d' })).toEqual([expect.stringMatching(/^connection\.connectionString /)]);
  });
});

describe('nothing touches the network', () => {
  test('resolving a config for an unresolvable host and a closed port opens no socket and no lookup', () => {
    const before = process.getActiveResourcesInfo().filter((r) => r !== 'Timeout').sort();
    const configs = [
      resolveConfig({ host: 'no-such-host.invalid', port: 1, database: 'd', user: 'u', password: 'pw' }),
      resolveConfig({ connectionString: 'postgres://u:pw@no-such-host.invalid:1/d?sslmode=verify-full' }),
      resolveConfig({ connectionString: 'host=127.0.0.1 port=1 dbname=d user=u sslmode=require' }),
    ];
    // resolveConfig is synchronous: it returned without waiting for anything
    expect(configs.map((c) => c.host)).toEqual(['no-such-host.invalid', 'no-such-host.invalid', '127.0.0.1']);
    const after = process.getActiveResourcesInfo().filter((r) => r !== 'Timeout').sort();
    // Compared with before, not with none: a previous file in this worker may still be closing its sockets.
    expect(after).toEqual(before);
  });
});
