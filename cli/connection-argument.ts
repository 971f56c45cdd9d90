/**
 * --connection: a libpq connection string (postgres://user@host/db?sslmode=require, sslmode
 * honoured by the library) or @file.json holding a ConnectionConfig. A password missing from both
 * is taken from PGPASSWORD, as psql does, so it need not appear in the process list.
 */
import type { ConnectionConfig } from '../index.js';
import { requireOption } from './command.js';
import { cliFailure, usageError, type CliFailure } from './failures.js';
import { readJsonArgument } from './json-argument.js';
import { redactUrl, rememberSecret } from './redact.js';
import { sshFlagsGiven, withSshTunnel, type SshValues } from './ssh-arguments.js';

type ConnectionValues = { connection?: string | boolean } & SshValues;

/** A command's required --connection, with the tunnel its --ssh-* flags describe. */
export function connectionFromOptions(command: string, values: ConnectionValues, env: NodeJS.ProcessEnv = process.env): ConnectionConfig {
  if (typeof values.connection !== 'string' && sshFlagsGiven(values).length) throw sshWithoutConnection(command, values);
  const value = requireOption(command, 'connection', typeof values.connection === 'string' ? values.connection : undefined);
  return withSshTunnel(command, connectionFromArgument(value, env), values, env);
}

/** For commands whose --connection is optional (the embedded database otherwise, which no tunnel reaches). */
export function optionalConnection(command: string, values: ConnectionValues, env: NodeJS.ProcessEnv = process.env): ConnectionConfig | undefined {
  if (typeof values.connection === 'string') return connectionFromOptions(command, values, env);
  if (sshFlagsGiven(values).length) throw sshWithoutConnection(command, values, 'embedded');
  return undefined;
}

/** --ssh-* flags without --connection, caught before any database (the embedded one included) is opened. */
function sshWithoutConnection(command: string, values: SshValues, otherwise?: 'embedded'): CliFailure {
  const flags = sshFlagsGiven(values);
  const embedded = otherwise === 'embedded' ? `; without it ${command} uses the embedded database on this machine, which no SSH tunnel reaches` : '';
  return cliFailure('sshWithoutConnection', `${command}: ${flags.join(' ')} ${flags.length === 1 ? 'needs' : 'need'} --connection (the database to reach through the SSH server)${embedded}`);
}

export function connectionFromArgument(value: string, env: NodeJS.ProcessEnv = process.env): ConnectionConfig {
  const config = value.startsWith('@') ? configFromFile(value) : { connectionString: value };
  const urlPassword = config.connectionString === undefined ? undefined : passwordInConnectionString(config.connectionString);
  rememberSecret(urlPassword);
  rememberSecret(config.password);
  rememberSecret(config.sslKey);
  rememberSecret(config.sshTunnel?.password);
  rememberSecret(config.sshTunnel?.privateKey);
  rememberSecret(config.sshTunnel?.passphrase);
  if (config.password === undefined && urlPassword === undefined && env.PGPASSWORD) {
    rememberSecret(env.PGPASSWORD);
    return { ...config, password: env.PGPASSWORD };
  }
  return config;
}

/** What to call the target in output: the URL with its password masked, or user@host:port/db. */
export function describeConnection(config: ConnectionConfig): string {
  if (config.connectionString) return redactUrl(config.connectionString);
  const port = config.port === undefined ? '' : `:${config.port}`;
  return `${config.user ?? '?'}@${config.host ?? '?'}${port}/${config.database ?? '?'}`;
}

function configFromFile(value: string): ConnectionConfig {
  const parsed = readJsonArgument(value, '--connection');
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw usageError(`--connection ${value} must hold a JSON object (a ConnectionConfig)`, [
      'Write the connection as {"host": "…", "database": "…", "user": "…", "sslMode": "require"} (see schemas/connection.schema.json).',
    ]);
  }
  // Field-by-field validation is the library's: it names every bad field with exit 2.
  return parsed as ConnectionConfig;
}

/** The password a connection string carries, so it can be masked and PGPASSWORD not applied over it. */
function passwordInConnectionString(text: string): string | undefined {
  if (/^postgres(ql)?:\/\//i.test(text.trim())) {
    try {
      const url = new URL(text.trim().replace(/^postgres(ql)?:/i, 'http:'));
      const inQuery = url.searchParams.get('password');
      if (inQuery !== null) return inQuery;
      return url.password === '' ? undefined : decodeURIComponent(url.password);
    } catch {
      return undefined; // the library reports the malformed URI without echoing it
    }
  }
  const match = /(?:^|\s)password\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))/i.exec(text);
  return match ? (match[1]?.replace(/\\(.)/g, '$1') ?? match[2]) : undefined;
}
