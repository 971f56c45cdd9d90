/**
 * The three example workflows of the PostgreSQL integration guide ("Example Workflows"), run
 * step by step against a real database, plus what the step refuses to do (the guards).
 */
import type { ConnectionConfig } from '../../index.js';
import { startReceiver } from './http-receiver.js';
import { Workflow, type WorkflowRecord } from './workflow.js';

interface CountsRow {
  total: string;
  active: string;
}

/** Schedule trigger → Query Rows (counts) → Email with the results (composed, not sent). */
export async function dailyUserReport(connection: ConnectionConfig, quiet: boolean): Promise<WorkflowRecord> {
  const workflow = new Workflow('Daily User Report', connection, quiet);
  workflow.fireTrigger('Schedule Trigger (daily at 9 AM)', { schedule: '0 9 * * *', firedAt: new Date().toISOString() });
  const report = (await workflow.postgres('userCounts', 'query-rows', {
    query: "SELECT COUNT(*) as total,\n       COUNT(*) FILTER (WHERE status = 'active') as active\nFROM users",
  })) as { rows: CountsRow[] };
  const counts = report.rows[0];
  await workflow.external('email', 'Email: Send report with results (composed here, not sent)', async () => {
    const message = {
      to: 'team@example.com',
      subject: 'Daily user report',
      text: `Users: ${counts?.total ?? 0} in total, ${counts?.active ?? 0} active.`,
    };
    return { input: message, output: { composed: true } };
  });
  return workflow.record;
}

/**
 * Schedule trigger → Query Rows (unsynced orders) → HTTP POST to an external API (a local
 * receiver) → Update Rows marking as synced exactly the ids the API acknowledged.
 */
export async function syncDataToExternalSystem(connection: ConnectionConfig, quiet: boolean): Promise<WorkflowRecord> {
  const receiver = await startReceiver();
  try {
    const workflow = new Workflow('Sync Data to External System', connection, quiet);
    workflow.fireTrigger('Schedule Trigger (every hour)', { schedule: '0 * * * *', firedAt: new Date().toISOString() });
    const pending = (await workflow.postgres('unsyncedOrders', 'query-rows', {
      query: 'SELECT * FROM orders\nWHERE synced = false\nORDER BY id\nLIMIT 100',
    })) as { rows: unknown[] };
    await workflow.external('sendToApi', `HTTP Request: POST ${receiver.url}`, async () => {
      const response = await fetch(receiver.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ orders: pending.rows }),
      });
      const body = (await response.json()) as unknown;
      return { input: { method: 'POST', url: receiver.url, body: { orders: `${pending.rows.length} orders` } }, output: { status: response.status, body } };
    });
    await workflow.postgres('markSynced', 'update-rows', {
      query: 'UPDATE orders SET synced = true\nWHERE id = ANY($1::int[])',
      // A lone {{ }} keeps its type: the acknowledged ids arrive as an array, bound as int[].
      parameters: ['{{steps.sendToApi.body.ids}}'],
    });
    return workflow.record;
  } finally {
    await receiver.close();
  }
}

/** Webhook trigger → Insert Row into audit_logs from the trigger's fields and {{now}}. */
export async function auditLogWorkflow(connection: ConnectionConfig, quiet: boolean): Promise<WorkflowRecord> {
  const workflow = new Workflow('Audit Log Workflow', connection, quiet);
  workflow.fireTrigger('Webhook Trigger', {
    userId: 42,
    action: 'user.login',
    details: { method: 'password', browser: 'Firefox 134', mfa: true },
    ip: '203.0.113.7',
  });
  await workflow.postgres('auditRow', 'insert-row', {
    table: 'audit_logs',
    columns: {
      user_id: '{{trigger.userId}}',
      action: '{{trigger.action}}',
      details: '{{trigger.details}}',
      ip_address: '{{trigger.ip}}',
      created_at: '{{now}}',
    },
  });
  return workflow.record;
}

/**
 * What a step will not do, each shown with its friendly error: the previous `npm start` demo,
 * now through the public actions.
 */
export async function guards(connection: ConnectionConfig, quiet: boolean): Promise<WorkflowRecord> {
  const workflow = new Workflow('Guards: what a step refuses', connection, quiet);
  workflow.fireTrigger('Webhook Trigger (hostile data)', { email: "x'); DROP TABLE users; --" });
  await workflow.postgres('quotedTemplate', 'query-rows', {
    // The "dangerous" form from the guide: the template still becomes a bound parameter.
    query: "SELECT id, email FROM users WHERE email = '{{trigger.email}}'",
  });
  await workflow.postgres('readOnly', 'query-rows', { query: 'DELETE FROM logs' }, { expectFailure: true });
  await workflow.postgres('timeout', 'execute-query', { query: 'SELECT pg_sleep(30)', timeoutMs: 500 }, { expectFailure: true });
  await workflow.postgres('resultCap', 'query-rows', {
    query: "SELECT repeat('x', 1000) AS filler FROM generate_series(1, 1000000)",
    maxResultBytes: 65536,
  }, { expectFailure: true });
  await workflow.postgres('duplicate', 'insert-row', {
    table: 'users',
    columns: { name: 'Duplicate', email: 'user1@example.com' },
  }, { expectFailure: true });
  await workflow.postgres('syntax', 'query-rows', { query: 'SELECT id,\n       name\n  FORM users' }, { expectFailure: true });
  return workflow.record;
}

export const WORKFLOWS = [dailyUserReport, syncDataToExternalSystem, auditLogWorkflow] as const;
