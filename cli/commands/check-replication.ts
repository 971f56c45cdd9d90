/** `pg-actions check-replication`: is this database ready for change data capture, and what to fix. */
import { diagnoseReplication, type DiagnoseOptions, type ReplicationDiagnosis } from '../../index.js';
import { CONNECTION_OPTION, parseCommandLine, printUsage, requireOption, type Command } from '../command.js';
import { connectionFromOptions, describeConnection } from '../connection-argument.js';
import { SSH_USAGE } from '../ssh-arguments.js';
import { EXIT_FAILURE, EXIT_OK, usageError } from '../failures.js';
import { printJson, printLine } from '../output.js';

type HeartbeatChoice = NonNullable<DiagnoseOptions['heartbeat']>;
const HEARTBEATS: readonly HeartbeatChoice[] = ['auto', 'message', 'table'];

export const checkReplicationCommand: Command = {
  name: 'check-replication',
  summary: 'Check a database for change data capture (wal_level, REPLICATION, slots, tables) and print the fixes',
  usage: `pg-actions check-replication --connection <postgres-url | @config.json> --tables <t1,schema.t2> [--publication <name>] [--slot <name>] [--heartbeat auto|message|table] [--json]

  --connection   postgres://user@host:5432/db, or @file.json with a ConnectionConfig
  --tables       the tables to capture, comma-separated
  --publication  an existing publication to use (created by the tables' owner)
  --slot         a replication slot that may exist already
  --heartbeat    the trigger's heartbeat setting (default auto): checks what its heartbeat table needs
  --json         print the diagnosis object as JSON

Exit code 0 when ready (warnings allowed), 1 when a check failed.

${SSH_USAGE}

Example:
  pg-actions check-replication --connection 'postgres://cdc_reader@db.example.com/app' --tables public.orders,public.customers`,

  async run(args, session) {
    const options = { ...CONNECTION_OPTION, tables: { type: 'string' }, publication: { type: 'string' }, slot: { type: 'string' }, heartbeat: { type: 'string' } } as const;
    const parsed = parseCommandLine('check-replication', args, options);
    if (parsed.help) return printUsage(this.usage);
    const connection = connectionFromOptions('check-replication', parsed.values);
    const tables = requireOption('check-replication', 'tables', parsed.values.tables).split(',').map((t) => t.trim()).filter(Boolean);
    if (tables.length === 0) throw usageError('check-replication: --tables names no table');
    const heartbeat = parsed.values.heartbeat ?? 'auto';
    if (!HEARTBEATS.includes(heartbeat as HeartbeatChoice)) throw usageError(`check-replication: --heartbeat must be one of ${HEARTBEATS.join(', ')}`);
    const diagnosis = await diagnoseReplication(connection, { tables, publication: parsed.values.publication, slot: parsed.values.slot, heartbeat: heartbeat as HeartbeatChoice });
    if (session.json) printJson(diagnosis);
    else printDiagnosis(describeConnection(connection), diagnosis);
    return diagnosis.ready ? EXIT_OK : EXIT_FAILURE;
  },
};

function printDiagnosis(target: string, diagnosis: ReplicationDiagnosis): void {
  printLine(readiness(diagnosis));
  printLine(`  target    ${target}`);
  printLine(`  server    PostgreSQL ${diagnosis.serverVersion}, user ${diagnosis.user}, database ${diagnosis.database}`);
  printReplicationChecks(diagnosis);
}

function readiness(diagnosis: ReplicationDiagnosis): string {
  const failed = diagnosis.checks.filter((check) => check.level === 'failed').length;
  return diagnosis.ready ? 'Ready for change data capture' : `Not ready for change data capture: ${failed} problem${failed === 1 ? '' : 's'}`;
}

/** Each failed check and warning with its fixes, then the least-privilege set-up (also test-connection --cdc-tables). */
export function printReplicationChecks(diagnosis: ReplicationDiagnosis, heading = false): void {
  if (heading) printLine(readiness(diagnosis));
  for (const check of diagnosis.checks) {
    printLine('');
    printLine(`${check.level === 'failed' ? 'FAILED ' : 'WARNING'} ${check.code}: ${check.message}`);
    for (const fix of check.fixes) printLine(`  fix: ${fix}`);
  }
  printLine('');
  printLine('Least-privilege set-up:');
  for (const line of diagnosis.setup) printLine(`  ${line}`);
}
