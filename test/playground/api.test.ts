/**
 * The playground's HTTP API against a real database: every endpoint's success shape, every
 * status code the server can answer, the headers it must (and must never) send, and that no
 * response ever carries the password it was started with.
 */
import { request as httpRequest } from 'node:http';
import { startPlayground, type Playground } from '../../playground/server.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { acceptsConnections } from '../harness/failures.js';

const db = useTestDatabase('playground_api', {
  beforeDrop: async () => {
    await playground?.close();
  },
});
let playground: Playground;
let password: string;

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** Every reply is checked for the password and for CORS headers, whatever the test asserts. */
function inspect(status: number, headers: Headers, text: string): Reply {
  expect(text).not.toContain(password);
  for (const name of headers.keys()) expect(name.toLowerCase()).not.toMatch(/^access-control-/);
  expect(headers.get('x-content-type-options')).toBe('nosniff');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status, headers, text, json };
}

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const init: RequestInit = { method, headers: { ...auth(), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await fetch(new URL(path, playground.url), init);
  return inspect(response.status, response.headers, await response.text());
}

/** The access token every API call carries (the page sends it as a cookie). */
const auth = (of: Playground = playground): Record<string, string> => ({ Authorization: `Bearer ${of.token}` });

const post = (path: string, body: unknown, headers?: Record<string, string>) => call('POST', path, body, headers);

function expectErrorShape(reply: Reply, status: number, code: string): Record<string, any> {
  expect(reply.status).toBe(status);
  expect(reply.headers.get('content-type')).toBe('application/json; charset=utf-8');
  const error = reply.json.error;
  expect(error).toEqual(expect.objectContaining({ code, title: expect.any(String), message: expect.any(String), fixes: expect.any(Array) }));
  return error;
}

beforeAll(async () => {
  password = db.config.password!;
  expect(password.length).toBeGreaterThan(4);
  await db.sql(`CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL, status text NOT NULL DEFAULT 'active')`);
  playground = await startPlayground({ connection: db.config });
}, 60_000);

describe('the page', () => {
  test('is served with a strict Content-Security-Policy and no-sniff', async () => {
    const page = await call('GET', '/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.text).toContain('data-testid="test-connection"');
    expect((await call('GET', '/app.js')).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await call('GET', '/style.css')).headers.get('content-type')).toBe('text/css; charset=utf-8');
  });

  test('binds 127.0.0.1 by default: reachable there, and not on any other address', async () => {
    const { hostname, port } = new URL(playground.url);
    expect(hostname).toBe('127.0.0.1');
    expect(await acceptsConnections('127.0.0.1', Number(port))).toBe(true);
    // 127.0.0.2 is loopback too, but only a listener on 0.0.0.0 (every interface) answers there.
    expect(await acceptsConnections('127.0.0.2', Number(port))).toBe(false);
  });
});

describe('GET endpoints', () => {
  test('/api/actions lists every action with its schemas, in picker order', async () => {
    const reply = await call('GET', '/api/actions');
    expect(reply.status).toBe(200);
    const actions = reply.json.actions as Array<Record<string, any>>;
    expect(actions.map((a) => a.key)).toEqual(['query-rows', 'insert-row', 'update-rows', 'delete-rows', 'execute-query', 'schema-overview']);
    for (const action of actions) {
      expect(action).toEqual(expect.objectContaining({ name: expect.any(String), description: expect.any(String), input: expect.any(Object), output: expect.any(Object) }));
    }
    const insert = actions.find((a) => a.key === 'insert-row')!;
    expect(insert.name).toBe('Insert Row');
    expect(insert.input.properties.table['x-widget']).toBe('table');
    expect(insert.input.properties.columns['x-widget']).toBe('columns');
    expect(insert.output.required).toEqual(['insertedId', 'rowCount', 'row']);
  });

  test('/api/connection describes the saved connection without its password', async () => {
    const reply = await call('GET', '/api/connection');
    expect(reply.status).toBe(200);
    const { password: _password, ...rest } = db.config;
    expect(reply.json).toEqual({ configured: true, hasPassword: true, hasSslKey: false, ...rest });
    expect(reply.json).not.toHaveProperty('password');
  });
});

describe('POST /api/test-connection', () => {
  test('diagnoses the saved connection', async () => {
    const reply = await post('/api/test-connection', { connection: 'default' });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual(expect.objectContaining({
      ok: true, serverVersion: expect.stringMatching(/^\d+/), user: db.config.user, database: db.name,
      ssl: expect.objectContaining({ enabled: expect.any(Boolean) }), warnings: expect.any(Array),
    }));
  });

  test('a typed connection for the same server and user reuses the saved password', async () => {
    const { password: _omitted, ...typed } = db.config;
    expect((await post('/api/test-connection', { connection: typed })).json.ok).toBe(true);
  });

  test('the saved password is never sent to a different server', async () => {
    const { password: _omitted, ...typed } = db.config;
    const reply = await post('/api/test-connection', { connection: { ...typed, host: 'localhost' } });
    expect(reply.status).toBe(422);
    expect(reply.json.error.code).toBe('AUTHENTICATION_FAILED');
  });

  test('a wrong password is a 422 with the friendly error and its fixes, never the password typed', async () => {
    const wrong = 'wrong-' + password;
    const reply = await post('/api/test-connection', { connection: { ...db.config, password: wrong } });
    const error = expectErrorShape(reply, 422, 'AUTHENTICATION_FAILED');
    expect(error.title).toBe('Authentication failed');
    expect(error.fixes.length).toBeGreaterThan(1);
    expect(reply.text).not.toContain(wrong);
  });

  test('an invalid connection object is a 400 naming each field', async () => {
    const error = expectErrorShape(await post('/api/test-connection', { connection: { host: 'x', port: 'nope' } }), 400, 'INVALID_INPUT');
    expect(error.problems).toEqual(expect.arrayContaining([expect.stringContaining('connection.port')]));
    expectErrorShape(await post('/api/test-connection', { connection: 42 }), 400, 'INVALID_INPUT');
  });
});

describe('POST /api/preview', () => {
  test('returns the SQL text and bound values, templates rendered from the trigger data', async () => {
    const reply = await post('/api/preview', {
      action: 'insert-row',
      connection: 'default',
      input: { table: 'users', columns: { name: '{{trigger.name}}', email: '{{trigger.email}}' } },
      context: { trigger: { name: 'Ada', email: 'ada@example.com' } },
    });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ text: 'INSERT INTO "users" ("name", "email") VALUES ($1, $2) RETURNING *', values: ['Ada', 'ada@example.com'] });
  });

  test('templates in SQL text become parameters, keeping their types', async () => {
    const reply = await post('/api/preview', {
      action: 'query-rows', connection: 'default',
      input: { query: 'SELECT * FROM users WHERE id = ANY({{trigger.ids}})' },
      context: { trigger: { ids: [1, 2] } },
    });
    expect(reply.json).toEqual({ text: 'SELECT * FROM users WHERE id = ANY($1::pg_catalog.int8[])', values: [[1, 2]] });
  });

  test('a template error or invalid input is a 400', async () => {
    const template = await post('/api/preview', { action: 'query-rows', connection: 'default', input: { query: 'SELECT {{trigger.missing.deeper}}' }, context: { trigger: {} } });
    expectErrorShape(template, 400, 'TEMPLATE_ERROR');
    const invalid = await post('/api/preview', { action: 'query-rows', connection: 'default', input: {} });
    expect(expectErrorShape(invalid, 400, 'INVALID_INPUT').problems).toEqual(['input.query is required']);
    expectErrorShape(await post('/api/preview', { connection: 'default', input: {} }), 400, 'INVALID_INPUT');
    expectErrorShape(await post('/api/preview', { action: 'query-rows', connection: 'default', input: { query: 'SELECT 1' }, context: 'x' }), 400, 'INVALID_INPUT');
  });
});

describe('POST /api/actions/:key/run', () => {
  test('runs Insert Row and returns its output; the row is really in the database', async () => {
    const reply = await post('/api/actions/insert-row/run', {
      connection: 'default',
      input: { table: 'users', columns: { name: '{{trigger.name}}', email: '{{trigger.email}}' } },
      context: { trigger: { name: 'Ada', email: 'ada@example.com' } },
    });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ output: { insertedId: 1, rowCount: 1, row: { id: 1, name: 'Ada', email: 'ada@example.com', status: 'active' } } });
    expect(await db.sql('SELECT id, name, email FROM users')).toEqual([{ id: 1, name: 'Ada', email: 'ada@example.com' }]);
  });

  test('runs Query Rows with parameters', async () => {
    const reply = await post('/api/actions/query-rows/run', {
      connection: 'default', input: { query: 'SELECT name FROM users WHERE email = $1', parameters: ['{{trigger.email}}'] }, context: { trigger: { email: 'ada@example.com' } },
    });
    expect(reply.json).toEqual({ output: { rows: [{ name: 'Ada' }], rowCount: 1 } });
  });

  test('runs Schema Overview with exact counts', async () => {
    const reply = await post('/api/actions/schema-overview/run', { connection: 'default', input: { schema: 'public', exact: true } });
    expect((reply.json.output as { rowCounts: unknown }).rowCounts).toMatchObject({ users: 1 });
  });

  test('a database error is a 422 carrying code, title, message, fixes and SQLSTATE', async () => {
    const syntax = expectErrorShape(await post('/api/actions/query-rows/run', { connection: 'default', input: { query: 'SELEC name FROM users' } }), 422, 'SYNTAX_ERROR');
    expect(syntax).toEqual(expect.objectContaining({ title: 'Syntax error in SQL query', sqlstate: '42601', location: { line: 1, column: 1 } }));
    const duplicate = await post('/api/actions/insert-row/run', { connection: 'default', input: { table: 'users', columns: { name: 'Ada', email: 'ada@example.com' } } });
    expect(expectErrorShape(duplicate, 422, 'UNIQUE_VIOLATION').constraint).toBe('users_email_key');
  });

  test('invalid input is a 400; an unknown action is a 404', async () => {
    expectErrorShape(await post('/api/actions/insert-row/run', { connection: 'default', input: { table: 'users' } }), 400, 'INVALID_INPUT');
    expectErrorShape(await post('/api/actions/drop-database/run', { connection: 'default', input: {} }), 404, 'NOT_FOUND');
  });
});

describe('pickers', () => {
  test('/api/schemas, /api/tables and /api/columns answer with plain JSON', async () => {
    expect((await post('/api/schemas', { connection: 'default' })).json).toEqual({ schemas: [{ name: 'public' }] });
    expect((await post('/api/tables', { connection: 'default' })).json).toEqual({
      tables: [{ schema: 'public', name: 'users', kind: 'table', estimatedRows: null }],
    });
    expect((await post('/api/tables', { connection: 'default', schema: 'public' })).json.tables).toHaveLength(1);
    const columns = (await post('/api/columns', { connection: 'default', table: 'users' })).json.columns as Array<Record<string, unknown>>;
    expect(columns.map((c) => [c.name, c.type, c.requiredOnInsert, c.inPrimaryKey])).toEqual([
      ['id', 'integer', false, true],
      ['name', 'text', true, false],
      ['email', 'text', true, false],
      ['status', 'text', false, false],
    ]);
  });

  test('an unknown table is a 422 UNDEFINED_TABLE; a missing table name a 400', async () => {
    const error = expectErrorShape(await post('/api/columns', { connection: 'default', table: 'nope' }), 422, 'UNDEFINED_TABLE');
    expect(error.sqlstate).toBe('42P01');
    expectErrorShape(await post('/api/columns', { connection: 'default' }), 400, 'INVALID_INPUT');
    expectErrorShape(await post('/api/tables', { connection: 'default', schema: 7 }), 400, 'INVALID_INPUT');
  });
});

describe('HTTP rules', () => {
  test('a body that is not JSON is a 400 that does not quote it', async () => {
    const reply = await post('/api/preview', `{"connection": {"password": "${password}"`);
    expectErrorShape(reply, 400, 'INVALID_INPUT');
    expectErrorShape(await post('/api/preview', '[1, 2]'), 400, 'INVALID_INPUT');
  });

  test('a body over 1 MB is a 413, whether its length is declared or streamed', async () => {
    const big = JSON.stringify({ connection: 'default', input: { query: 'x'.repeat(1_100_000) } });
    expectErrorShape(await post('/api/preview', big), 413, 'REQUEST_TOO_LARGE');
    const streamed = await new Promise<Reply>((resolve, reject) => {
      const url = new URL('/api/preview', playground.url);
      const req = httpRequest(url, { method: 'POST', headers: { ...auth(), 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve(inspect(res.statusCode!, new Headers(res.headers as Record<string, string>), text)));
      });
      req.on('error', reject);
      for (let i = 0; i < 12; i++) req.write('x'.repeat(100_000));
      req.end();
    });
    expectErrorShape(streamed, 413, 'REQUEST_TOO_LARGE');
  });

  test('POST requires Content-Type: application/json (415), so other pages cannot post without a preflight', async () => {
    expectErrorShape(await call('POST', '/api/test-connection', '{"connection":"default"}', { 'Content-Type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('unknown paths are a 404, for the API and for files', async () => {
    expectErrorShape(await call('GET', '/api/nothing'), 404, 'NOT_FOUND');
    expectErrorShape(await call('GET', '/../../etc/passwd'), 404, 'NOT_FOUND');
    expectErrorShape(await call('GET', '/server.ts'), 404, 'NOT_FOUND');
  });

  test('only GET and POST: other methods are a 405 with Allow', async () => {
    const wrongMethod = await call('GET', '/api/preview');
    expectErrorShape(wrongMethod, 405, 'METHOD_NOT_ALLOWED');
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect((await post('/api/actions', {})).headers.get('allow')).toBe('GET');
    for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      expectErrorShape(await call(method, '/api/test-connection'), 405, 'METHOD_NOT_ALLOWED');
    }
    expect((await call('HEAD', '/')).status).toBe(405);
    const preflight = await call('OPTIONS', '/api/run', undefined, { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' });
    expect(preflight.status).toBe(403); // refused before any routing: no preflight is ever granted
  });

  test('requests from another origin, or under another host name, are refused with 403', async () => {
    expectErrorShape(await post('/api/test-connection', { connection: 'default' }, { Origin: 'https://evil.example' }), 403, 'FORBIDDEN');
    const rebound = await new Promise<Reply>((resolve, reject) => {
      const url = new URL('/api/connection', playground.url);
      httpRequest(url, { headers: { ...auth(), Host: `evil.example:${url.port}` } }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve(inspect(res.statusCode!, new Headers(res.headers as Record<string, string>), text)));
      }).on('error', reject).end();
    });
    expectErrorShape(rebound, 403, 'FORBIDDEN');
    expect((await call('GET', '/api/connection', undefined, { Origin: new URL(playground.url).origin })).status).toBe(200);
  });
});

test('without a saved connection, "default" is a 400 and typed connections work', async () => {
  const bare = await startPlayground();
  try {
    const connection = await fetch(new URL('/api/connection', bare.url), { headers: auth(bare) });
    expect(await connection.json()).toEqual({ configured: false, hasPassword: false, hasSslKey: false });
    const reply = await fetch(new URL('/api/test-connection', bare.url), { method: 'POST', headers: { ...auth(bare), 'Content-Type': 'application/json' }, body: JSON.stringify({ connection: 'default' }) });
    expect(reply.status).toBe(400);
    expect(((await reply.json()) as { error: { code: string } }).error.code).toBe('INVALID_INPUT');
    const typed = await fetch(new URL('/api/test-connection', bare.url), { method: 'POST', headers: { ...auth(bare), 'Content-Type': 'application/json' }, body: JSON.stringify({ connection: db.config }) });
    expect(typed.status).toBe(200);
    expect(await typed.text()).not.toContain(password);
  } finally {
    await bare.close();
  }
  await expect(fetch(new URL('/api/connection', bare.url))).rejects.toThrow();
});
