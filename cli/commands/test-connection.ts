/** `pg-actions test-connection`: the step's "Test connection" button, from a terminal. */
import { testConnection, type ConnectionDiagnosis } from '../../index.js';
import { CONNECTION_OPTION, parseCommandLine, printUsage, type Command } from '../command.js';
import { connectionFromOptions, describeConnection } from '../connection-argument.js';
import { SSH_USAGE } from '../ssh-arguments.js';
import { EXIT_FAILURE, EXIT_OK, usageError } from '../failures.js';
import { printReplicationChecks } from './check-replication.js';
import { printJson, printLine } from '../output.js';

export const testConnectionCommand: Command = {
  name: 'test-connection',
  summary: 'Connect and report server version, TLS, user, database, latency and warnings (--cdc-tables: change capture too)',
  usage: `pg-actions test-connection --connection <postgres-url | @config.json> [--cdc-tables <t1,schema.t2> [--cdc-publication <name>]] [--json]

  --connection       postgres://user@host:5432/db?sslmode=verify-full, or @file.json with a ConnectionConfig
  --cdc-tables       also check these tables for change data capture (table-changes-cdc), as Test
                     connection does with that trigger chosen; exit 1 when a check failed
  --cdc-publication  the existing publication that trigger would use
  --json             print the diagnosis object (and errors) as JSON

${SSH_USAGE}

Example:
  PGPASSWORD=… pg-actions test-connection --connection 'postgres://flow_user@db.example.com/app?sslmode=require'`,

  async run(args, session) {
    const options = { ...CONNECTION_OPTION, 'cdc-tables': { type: 'string' }, 'cdc-publication': { type: 'string' } } as const;
    const parsed = parseCommandLine('test-connection', args, options);
    if (parsed.help) return printUsage(this.usage);
    const changeCapture = changeCaptureOf(parsed.values['cdc-tables'], parsed.values['cdc-publication']);
    const connection = connectionFromOptions('test-connection', parsed.values);
    const result = await testConnection(connection, changeCapture ? { changeCapture } : {});
    if (!result.ok) throw result.error;
    if (session.json) printJson(result);
    else printDiagnosis(describeConnection(connection), result);
    return result.changeCapture && !result.changeCapture.ready ? EXIT_FAILURE : EXIT_OK;
  },
};

function changeCaptureOf(tables: string | undefined, publication: string | undefined): { tables: string[]; publication?: string } | undefined {
  if (tables === undefined) {
    if (publication !== undefined) throw usageError('test-connection: --cdc-publication needs --cdc-tables');
    return undefined;
  }
  const names = tables.split(',').map((table) => table.trim()).filter(Boolean);
  if (names.length === 0) throw usageError('test-connection: --cdc-tables names no table');
  return publication === undefined ? { tables: names } : { tables: names, publication };
}

function printDiagnosis(target: string, diagnosis: ConnectionDiagnosis): void {
  const { ssl } = diagnosis;
  const tls = ssl.enabled ? `${ssl.protocol ?? 'TLS'}, ${ssl.cipher ?? 'unknown cipher'}` : 'not encrypted';
  printLine(`Connected to PostgreSQL ${diagnosis.serverVersion}`);
  printLine(`  target    ${target}`);
  printLine(`  user      ${diagnosis.user}`);
  printLine(`  database  ${diagnosis.database}`);
  printLine(`  TLS       ${tls}`);
  printLine(`  latency   ${diagnosis.latencyMs} ms`);
  const ssh = diagnosis.sshTunnel;
  if (ssh) printLine(`  SSH       through ${ssh.host}:${ssh.port}, host key ${ssh.hostKeyFingerprint ?? 'unknown'} (${ssh.hostKeyVerified ? 'verified' : 'not verified'})`);
  if (diagnosis.warnings.length) {
    printLine('');
    printLine('Warnings:');
    diagnosis.warnings.forEach((warning, index) => printLine(`  ${index + 1}. ${warning}`));
  }
  if (diagnosis.changeCapture) {
    printLine('');
    printReplicationChecks(diagnosis.changeCapture, true);
  }
}
