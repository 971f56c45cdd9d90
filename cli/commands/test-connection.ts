/** `pg-actions test-connection`: the step's "Test connection" button, from a terminal. */
import { testConnection, type ConnectionDiagnosis } from '../../index.js';
import { CONNECTION_OPTION, parseCommandLine, printUsage, requireOption, type Command } from '../command.js';
import { connectionFromArgument, describeConnection } from '../connection-argument.js';
import { EXIT_OK } from '../failures.js';
import { printJson, printLine } from '../output.js';

export const testConnectionCommand: Command = {
  name: 'test-connection',
  summary: 'Connect and report server version, TLS, user, database, latency and warnings',
  usage: `pg-actions test-connection --connection <postgres-url | @config.json> [--json]

  --connection  postgres://user@host:5432/db?sslmode=verify-full, or @file.json with a ConnectionConfig
  --json        print the diagnosis object (and errors) as JSON

Example:
  PGPASSWORD=… pg-actions test-connection --connection 'postgres://flow_user@db.example.com/app?sslmode=require'`,

  async run(args, session) {
    const parsed = parseCommandLine('test-connection', args, CONNECTION_OPTION);
    if (parsed.help) return printUsage(this.usage);
    const connection = connectionFromArgument(requireOption('test-connection', 'connection', parsed.values.connection));
    const result = await testConnection(connection);
    if (!result.ok) throw result.error;
    if (session.json) printJson(result);
    else printDiagnosis(describeConnection(connection), result);
    return EXIT_OK;
  },
};

function printDiagnosis(target: string, diagnosis: ConnectionDiagnosis): void {
  const { ssl } = diagnosis;
  const tls = ssl.enabled ? `${ssl.protocol ?? 'TLS'}, ${ssl.cipher ?? 'unknown cipher'}` : 'not encrypted';
  printLine(`Connected to PostgreSQL ${diagnosis.serverVersion}`);
  printLine(`  target    ${target}`);
  printLine(`  user      ${diagnosis.user}`);
  printLine(`  database  ${diagnosis.database}`);
  printLine(`  TLS       ${tls}`);
  printLine(`  latency   ${diagnosis.latencyMs} ms`);
  if (diagnosis.warnings.length) {
    printLine('');
    printLine('Warnings:');
    diagnosis.warnings.forEach((warning, index) => printLine(`  ${index + 1}. ${warning}`));
  }
}
