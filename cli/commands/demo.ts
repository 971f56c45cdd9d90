/**
 * `pg-actions demo`: the guide's three example workflows, step by step, on a real database:
 * each PostgreSQL step with its input, the SQL and parameters it sends, and its output; then the
 * guards (read-only, timeout, result cap, friendly errors).
 */
import { runAction, type ConnectionConfig } from '../../index.js';
import { CONNECTION_OPTION, parseCommandLine, printUsage, type Command, type CommandSession } from '../command.js';
import { describeConnection, optionalConnection } from '../connection-argument.js';
import { SSH_USAGE } from '../ssh-arguments.js';
import { auditLogWorkflow, dailyUserReport, guards, syncDataToExternalSystem } from '../demo/workflows.js';
import { openLocalDatabase } from '../embedded-session.js';
import { EXIT_OK } from '../failures.js';
import { printJson, printLine, progress } from '../output.js';
import { ensureSampleSchema } from '../sample-data.js';

/** On the embedded server the demo gets a database of its own, recreated each run: repeatable, and the playground's data stays as it is. */
const DEMO_DATABASE = 'pg_actions_demo';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run the example workflows (user report, order sync, audit log) step by step',
  usage: `pg-actions demo [--connection <postgres-url | @config.json>] [--json]

  Runs "Daily User Report", "Sync Data to External System" (POSTing to a local HTTP receiver) and
  "Audit Log Workflow", then shows the guards. Without --connection it uses the embedded
  PostgreSQL (started from .cache/pg-actions-db) and a fresh database "${DEMO_DATABASE}" in it.
  With --connection it creates the sample tables (users, orders, sessions, logs, audit_logs) where
  missing and changes their data: use a scratch database.

  --json  print { database, workflows: [{ name, steps: [...] }] } instead of the step-by-step view

${SSH_USAGE}

Example:
  pg-actions demo --connection postgres://postgres@localhost:5432/scratch`,

  async run(args, session) {
    const parsed = parseCommandLine('demo', args, CONNECTION_OPTION);
    if (parsed.help) return printUsage(this.usage);
    const given = optionalConnection('demo', parsed.values);
    const { connection, description } = given ? givenDatabase(given) : await demoDatabase(session);
    const quiet = session.json;
    if (!quiet) printLine(`Database: ${description}`);
    progress('creating the sample tables where missing');
    await ensureSampleSchema(connection);
    const workflows = [];
    for (const workflow of [dailyUserReport, syncDataToExternalSystem, auditLogWorkflow, guards]) {
      workflows.push(await workflow(connection, quiet));
    }
    if (quiet) printJson({ database: description, workflows });
    return EXIT_OK;
  },
};

function givenDatabase(connection: ConnectionConfig) {
  return { connection, description: describeConnection(connection) };
}

async function demoDatabase(session: CommandSession): Promise<{ connection: ConnectionConfig; description: string }> {
  const local = await openLocalDatabase();
  session.onExit(local.close);
  progress(`recreating database ${DEMO_DATABASE}`);
  await runAction('execute-query', { connection: local.connection, input: { query: `DROP DATABASE IF EXISTS ${DEMO_DATABASE} WITH (FORCE)` } });
  await runAction('execute-query', { connection: local.connection, input: { query: `CREATE DATABASE ${DEMO_DATABASE}` } });
  return { connection: { ...local.connection, database: DEMO_DATABASE }, description: `${local.description}, database ${DEMO_DATABASE}` };
}
