/**
 * The reference's three "Example Workflows" as chains of steps. Each PostgreSQL step runs
 * through runAction; the steps that are not PostgreSQL (email, HTTP) are played by the test,
 * and later steps read earlier outputs through templates ({{steps.<name>.…}}), as a flow
 * engine hands them over: `steps` holds each finished step's output under its name.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { renderValue } from '../../templating/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { run } from './helpers.js';

const db = useTestDatabase('workflows');

beforeAll(async () => {
  await db.sql(`CREATE TABLE users (
    id serial PRIMARY KEY, name text, email text UNIQUE, status text NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz, last_login timestamptz)`);
  await db.sql(`CREATE TABLE orders (
    id serial PRIMARY KEY, customer text, amount numeric(10,2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), synced boolean NOT NULL DEFAULT false)`);
  await db.sql(`CREATE TABLE audit_logs (
    id serial PRIMARY KEY, user_id int, action text NOT NULL, details jsonb, ip_address inet, created_at timestamptz)`);
}, 60_000);

test('Daily User Report: counts (bigint as strings) feed the email step through templates', async () => {
  await db.sql(`INSERT INTO users (name, email, status) VALUES
    ('John Doe', 'john@example.com', 'active'), ('Jane Roe', 'jane@example.com', 'inactive'), ('Ann Lee', 'ann@example.com', 'active')`);
  const steps: Record<string, unknown> = {};
  // 1. Schedule trigger (daily at 9 AM): no data, only the time.
  const now = '2026-01-15T09:00:00.000Z';

  // 2. PostgreSQL: Query Rows.
  steps.report = await run('query-rows', {
    connection: db.config,
    input: { query: "SELECT COUNT(*) as total,\n       COUNT(*) FILTER (WHERE status = 'active') as active\nFROM users" },
    context: { steps, now },
  });
  expect(steps.report).toEqual({ rows: [{ total: '3', active: '2' }], rowCount: 1 });

  // 3. Email: the host renders its fields with the same templating.
  const body = renderValue(
    'Report of {{now}}: {{steps.report.rows.[0].total}} users, {{steps.report.rows.[0].active}} active',
    { trigger: {}, steps, now: new Date(now) },
    'email.body',
  );
  expect(body).toBe('Report of 2026-01-15T09:00:00.000Z: 3 users, 2 active');
});

/** A stand-in for the external API: records every POSTed body and acknowledges the ids it took. */
async function startReceiver(): Promise<{ server: Server; url: string; received: unknown[] }> {
  const received: unknown[] = [];
  const server = createServer(async (request: IncomingMessage, response) => {
    let text = '';
    for await (const chunk of request) text += String(chunk);
    const body = JSON.parse(text) as { orders: { id: number }[] };
    received.push(body);
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ accepted: body.orders.length, ids: body.orders.map((order) => order.id) }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`, received };
}

test('Sync Data to External System: pending orders are sent, then exactly those are marked synced', async () => {
  await db.sql(`INSERT INTO orders (customer, amount, created_at, synced) VALUES
    ('a', 10.00, '2026-01-14T09:00:00Z', true),
    ('b', 20.50, '2026-01-15T08:00:00Z', false),
    ('c', 0.99, '2026-01-15T08:30:00.25Z', false),
    ('d', 30.00, '2026-01-15T09:00:00Z', true),
    ('e', 1234.56, '2026-01-15T09:15:00Z', false)`);
  const receiver = await startReceiver();
  try {
    const flow = async () => {
      const steps: Record<string, unknown> = {};
      // 2. PostgreSQL: Query Rows.
      const pending = await run('query-rows', {
        connection: db.config,
        input: { query: 'SELECT * FROM orders\nWHERE synced = false\nLIMIT 100' },
        context: { steps },
      });
      steps.pending = pending;

      // 3. HTTP Request: the body maps {{steps.pending.rows}} (a lone expression keeps its type:
      // the rows array itself). The HTTP step's output is the API's JSON answer.
      const payload = renderValue({ orders: '{{steps.pending.rows}}' }, { steps }, 'http.body');
      const response = await fetch(receiver.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
      expect(response.status).toBe(200);
      steps.sync = await response.json();

      // 4. PostgreSQL: Update Rows. Templates hold paths only (no map over rows), so the ids come
      // from the HTTP step's answer, {{steps.sync.ids}}: the ids the external system confirmed.
      // That is also the safer choice: an order the API did not take stays unsynced. The array is
      // bound as int[]; the reference's uncast ANY($1) works, PostgreSQL infers int[] from id.
      const marked = await run('update-rows', {
        connection: db.config,
        input: { query: 'UPDATE orders SET synced = true\nWHERE id = ANY($1)', parameters: ['{{steps.sync.ids}}'] },
        context: { steps },
      });
      return { pending, marked };
    };

    const first = await flow();
    expect(first.pending).toEqual({
      rows: [
        { id: 2, customer: 'b', amount: '20.50', created_at: '2026-01-15T08:00:00Z', synced: false },
        { id: 3, customer: 'c', amount: '0.99', created_at: '2026-01-15T08:30:00.25Z', synced: false },
        { id: 5, customer: 'e', amount: '1234.56', created_at: '2026-01-15T09:15:00Z', synced: false },
      ],
      rowCount: 3,
    });
    expect(receiver.received).toEqual([{ orders: first.pending.rows }]);
    expect(first.marked).toEqual({ rowCount: 3 });
    expect(await db.sql('SELECT id, synced FROM orders ORDER BY id')).toEqual([1, 2, 3, 4, 5].map((id) => ({ id, synced: true })));

    // The next hourly run finds nothing: an empty batch is sent and nothing is updated.
    const second = await flow();
    expect(second.pending).toEqual({ rows: [], rowCount: 0 });
    expect(receiver.received).toEqual([{ orders: first.pending.rows }, { orders: [] }]);
    expect(second.marked).toEqual({ rowCount: 0 });
  } finally {
    receiver.server.close();
  }
});

test('Audit Log Workflow: a webhook event lands in audit_logs with jsonb details and an inet address', async () => {
  const trigger = {
    userId: 42,
    action: 'user.login',
    details: { method: 'password', mfa: true, attempts: 2, tags: ['web', 'eu'], agent: { name: 'Firefox', version: '128.0' }, note: "l'été ☀" },
    ip: '203.0.113.7',
  };
  const now = '2026-01-15T10:30:00.000Z';
  const steps: Record<string, unknown> = {};
  // 2. PostgreSQL: Insert Row.
  const audit = await run('insert-row', {
    connection: db.config,
    input: {
      table: 'audit_logs',
      columns: { user_id: '{{trigger.userId}}', action: '{{trigger.action}}', details: '{{trigger.details}}', ip_address: '{{trigger.ip}}', created_at: '{{now}}' },
    },
    context: { trigger, steps, now },
  });
  expect(audit).toEqual({
    insertedId: 1,
    rowCount: 1,
    row: { id: 1, user_id: 42, action: 'user.login', details: trigger.details, ip_address: '203.0.113.7', created_at: '2026-01-15T10:30:00Z' },
  });
  const stored = await db.sql(
    `SELECT user_id, action, details, jsonb_typeof(details) AS kind, host(ip_address) AS ip, family(ip_address) AS family,
            created_at = $1::timestamptz AS at_now FROM audit_logs`,
    [now],
  );
  expect(stored).toEqual([{ user_id: 42, action: 'user.login', details: trigger.details, kind: 'object', ip: '203.0.113.7', family: 4, at_now: true }]);

  // A later step reads the new row's id through {{steps.audit.insertedId}} (a number: typed).
  steps.audit = audit;
  const readBack = await run('query-rows', {
    connection: db.config,
    input: { query: "SELECT action, details->'agent'->>'name' AS agent FROM audit_logs WHERE id = {{steps.audit.insertedId}}" },
    context: { steps },
  });
  expect(readBack).toEqual({ rows: [{ action: 'user.login', agent: 'Firefox' }], rowCount: 1 });

  // An IPv6 webhook source works the same way.
  const v6 = await run('insert-row', {
    connection: db.config,
    input: { table: 'audit_logs', columns: { user_id: '{{trigger.userId}}', action: 'user.logout', details: '{{trigger.details}}', ip_address: '{{trigger.ip}}', created_at: '{{now}}' } },
    context: { trigger: { userId: 42, details: [], ip: '2001:db8::1' }, now },
  });
  expect(v6.row).toMatchObject({ id: 2, details: [], ip_address: '2001:db8::1' });
});
