/** resolveConfig: schema validation, libpq connection strings, defaults. No server needed. */
import { generateKeyPairSync } from 'node:crypto';
import { ERROR_CATALOGUE, parseConnectionString, PgActionsError, resolveConfig, type ResolvedConfig } from '../../connection/index.js';
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

  test("a key file path is the CLI's connection file's field, not a step's: the problem says where the key goes instead", () => {
    const tunnel = { host: 'bastion', user: 'tunnel', privateKeyFile: '~/.ssh/id_ed25519' };
    expect(problemsOf({ host: 'h', database: 'd', user: 'u', sshTunnel: tunnel })).toEqual([
      "connection.sshTunnel.privateKeyFile is read only by the pg-actions command (its --connection file); a step takes the key's text in connection.sshTunnel.privateKey",
    ]);
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

describe('connection-string parameters, one by one', () => {
  test.each(['sslrootcert', 'sslcert', 'sslkey', 'sslcrl', 'sslcrldir', 'passfile', 'service'])('%s (names a local file) is refused in both forms, with the fix', (name) => {
    const problem = `connection.connectionString uses ${name}, which names a file on the server running the step; paste certificates into sslCa / sslCert / sslKey instead`;
    expect(problemsOf({ connectionString: `postgres://u@h/d?${name}=x` })).toEqual([problem]);
    expect(problemsOf({ connectionString: `host=h dbname=d user=u ${name}=x` })).toEqual([problem]);
  });

  test.each([
    'fallback_application_name', 'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'tcp_user_timeout',
    'client_encoding', 'sslcompression', 'sslsni', 'gssencmode', 'target_session_attrs', 'load_balance_hosts',
  ])('%s (transport tuning) is accepted and changes nothing', (name) => {
    const plain = resolveConfig({ connectionString: 'host=h dbname=d user=u' });
    expect(resolveConfig({ connectionString: `host=h dbname=d user=u ${name}=1` })).toEqual(plain);
    expect(resolveConfig({ connectionString: `postgres://u@h/d?${name}=1` })).toEqual(resolveConfig({ connectionString: 'postgres://u@h/d' }));
  });

  test('each parameter pg-actions reads lands in its field; several unknown ones are all named, with what is supported', () => {
    expect(resolveConfig({ connectionString: "host=H port=7 dbname=D user=U password=P sslmode=verify-ca application_name=A connect_timeout=3" })).toEqual({
      ...DEFAULTS, host: 'H', port: 7, database: 'D', user: 'U', password: 'P', sslMode: 'verify-ca', applicationName: 'A', connectTimeoutMs: 3000,
    });
    expect(problemsOf({ connectionString: 'host=h dbname=d user=u colour=blue size=2' })).toEqual([
      'connection.connectionString has parameters pg-actions does not support: colour, size (supported: host, port, dbname, user, password, sslmode, application_name, connect_timeout)',
    ]);
    expect(problemsOf({ connectionString: 'host=h dbname=d user=u colour=blue' })).toEqual([
      'connection.connectionString has parameter pg-actions does not support: colour (supported: host, port, dbname, user, password, sslmode, application_name, connect_timeout)',
    ]);
  });

  test('ports 1 and 65535 are taken; 0, 65536 and 5.5 are not', () => {
    expect(resolveConfig({ connectionString: 'host=h dbname=d user=u port=1' }).port).toBe(1);
    expect(resolveConfig({ connectionString: 'postgres://u@h:65535/d' }).port).toBe(65535);
    for (const port of ['0', '65536', '5.5', 'x']) {
      expect(problemsOf({ connectionString: `host=h dbname=d user=u port=${port}` })).toEqual(['connection.connectionString has a port that is not a number from 1 to 65535']);
    }
  });

  test('connect_timeout is seconds, at least 100 ms; 0 (libpq: wait forever) and nothing leave the default', () => {
    const timeout = (value: string) => resolveConfig({ connectionString: `host=h dbname=d user=u connect_timeout=${value}` }).connectTimeoutMs;
    expect([timeout('2'), timeout('0.05'), timeout('0.25'), timeout('0'), timeout('-3')]).toEqual([2000, 100, 250, DEFAULTS.connectTimeoutMs, DEFAULTS.connectTimeoutMs]);
  });

  test('URIs: an empty password is a password; empty host, user or database parts are not given; a file parameter is found before parsing', () => {
    expect(resolveConfig({ connectionString: 'postgres://u:@h/d' }).password).toBe('');
    expect(problemsOf({ connectionString: 'postgres:///d' })).toEqual(['connection.host is required (or give connection.connectionString)', 'connection.user is required (or give connection.connectionString)']);
    expect(problemsOf({ connectionString: 'POSTGRES://u@h/' })).toEqual(['connection.database is required (or give connection.connectionString)']);
    expect(problemsOf({ connectionString: '  postgresql://u@h:6543/d?sslrootcert=%zz' })).toEqual([expect.stringMatching(/invalid percent-encoded|uses sslrootcert/)]);
    expect(problemsOf({ connectionString: 'postgres://u@h:6543/d?x=%2' })).toEqual(['connection.connectionString has an invalid percent-encoded character (write % as %25)']);
    expect(problemsOf({ connectionString: 'postgres://u@[::1/d' })).toEqual(['connection.connectionString is not a valid postgres:// URI']);
  });

  test('keyword/value: quoted values with escapes and spaces, keys in any case, nothing left over', () => {
    expect(resolveConfig({ connectionString: "HOST=h DBname='my db' user='o\\'brien' password='a\\\\b'" })).toMatchObject({ host: 'h', database: 'my db', user: "o'brien", password: 'a\\b' });
    expect(resolveConfig({ connectionString: "host=h dbname=d user=u password=''" }).password).toBe('');
    for (const text of ["host=h dbname='unterminated", 'host=h dbname=d user=u trailing', '   ', '=x']) {
      expect(problemsOf({ connectionString: text })).toEqual(['connection.connectionString is neither a postgres:// URI nor keyword=value pairs']);
    }
  });

  test('the root path names every problem, and a host given as a Unix socket directory is refused', () => {
    expect(problemsOf({ connectionString: 'host=h dbname=d user=u colour=1' }, 'config.db')).toEqual([expect.stringMatching(/^config\.db\.connectionString has parameter/)]);
    expect(problemsOf({ host: '/var/run/postgresql', database: 'd', user: 'u' })).toEqual(['connection.host names a Unix socket on the machine running the step; give a host name or IP address']);
    expect(problemsOf({ connectionString: 'host=/tmp dbname=d user=u' }, 'x')).toEqual(['x.host names a Unix socket on the machine running the step; give a host name or IP address']);
  });
});

describe('what the mutation run found unpinned', () => {
  test('a URI with spaces around it is read as that URI; a keyword value that holds "postgres://" keeps the keyword form', () => {
    expect(resolveConfig({ connectionString: '  postgres://u@h:6543/d  ' })).toMatchObject({ host: 'h', port: 6543, user: 'u', database: 'd' });
    expect(resolveConfig({ connectionString: "host=h dbname=d user=u application_name='postgres://not-a-uri'" })).toMatchObject({ host: 'h', applicationName: 'postgres://not-a-uri' });
  });

  test('several problems make one message, joined with "; "', () => {
    try {
      resolveConfig({ port: 'x', sslMode: 'sometimes' });
      throw new Error('expected a refusal');
    } catch (error) {
      const e = error as PgActionsError;
      expect(e.problems!.length).toBeGreaterThan(1);
      expect(e.message).toBe(e.problems!.join('; '));
    }
  });

  test('parseConnectionString on its own names connection.connectionString', () => {
    expect(() => parseConnectionString('just words')).toThrow('connection.connectionString is neither a postgres:// URI nor keyword=value pairs');
  });
});
