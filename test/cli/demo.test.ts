/** `pg-actions demo --connection`: the three example workflows change the database as described. */
import { useTestDatabase } from '../harness/use-test-database.js';
import { databaseUrl, expectNoPasswordPrinted, runCli } from './cli.js';

const db = useTestDatabase('cli_demo');
afterAll(async () => {
  expectNoPasswordPrinted();
}, 30_000);

interface StepRecord {
  title: string;
  action?: string;
  sql?: string;
  parameters?: unknown[];
  output?: Record<string, unknown>;
  error?: { code: string };
}

test('demo runs the three workflows step by step and leaves their effects in the database', async () => {
  const result = await runCli(['demo', '--connection', databaseUrl(db)]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  for (const name of ['Daily User Report', 'Sync Data to External System', 'Audit Log Workflow']) expect(result.stdout).toContain(`━━ ${name} ━━`);
  // Each PostgreSQL step shows the SQL actually sent and its parameters.
  expect(result.stdout).toContain('WHERE id = ANY($1::int[])');
  expect(result.stdout).toContain('INSERT INTO "audit_logs" ("user_id", "action", "details", "ip_address", "created_at") VALUES ($1, $2, $3, $4, $5) RETURNING *');

  // Sync: every order that was unsynced was POSTed and marked synced.
  expect(await db.sql('SELECT count(*)::int AS unsynced FROM orders WHERE NOT synced')).toEqual([{ unsynced: 0 }]);
  // Audit: the webhook's fields landed in audit_logs, {{now}} as created_at.
  const [audit] = await db.sql(`SELECT user_id, action, details, host(ip_address) AS ip, created_at > now() - interval '5 minutes' AS recent
                                  FROM audit_logs WHERE ip_address = '203.0.113.7'`);
  expect(audit).toEqual({ user_id: 42, action: 'user.login', details: { method: 'password', browser: 'Firefox 134', mfa: true }, ip: '203.0.113.7', recent: true });
});

test('demo --json reports every step; the sync updates exactly the ids the receiver acknowledged', async () => {
  await db.sql('UPDATE orders SET synced = false WHERE id IN (3, 4, 7)');
  const result = await runCli(['demo', '--connection', databaseUrl(db), '--json']);
  expect(result.code).toBe(0);
  const { workflows } = JSON.parse(result.stdout) as { workflows: { name: string; steps: StepRecord[] }[] };
  expect(workflows.map((workflow) => workflow.name)).toEqual([
    'Daily User Report', 'Sync Data to External System', 'Audit Log Workflow', 'Guards: what a step refuses',
  ]);
  const sync = workflows[1]!.steps;
  expect(sync.map((step) => step.title)).toEqual([
    'Schedule Trigger (every hour)', 'PostgreSQL: Query Rows', expect.stringMatching(/^HTTP Request: POST http:\/\/127\.0\.0\.1:\d+\/orders$/), 'PostgreSQL: Update Rows',
  ]);
  expect(sync[2]!.output).toEqual({ status: 200, body: { accepted: 3, ids: [3, 4, 7] } });
  expect(sync[3]).toMatchObject({ sql: 'UPDATE orders SET synced = true\nWHERE id = ANY($1::int[])', parameters: [[3, 4, 7]], output: { rowCount: 3 } });
  const guards = workflows[3]!.steps.flatMap((step) => (step.error ? [step.error.code] : []));
  expect(guards).toEqual(['READ_ONLY_VIOLATION', 'QUERY_TIMEOUT', 'RESULT_TOO_LARGE', 'UNIQUE_VIOLATION', 'SYNTAX_ERROR']);
  expect(await db.sql('SELECT count(*)::int AS n FROM audit_logs WHERE ip_address = $1', ['203.0.113.7'])).toEqual([{ n: 2 }]);
});
