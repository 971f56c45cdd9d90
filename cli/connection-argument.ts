/**
 * --connection: a libpq connection string (postgres://user@host/db?sslmode=require, sslmode
 * honoured by the library) or @file.json holding a ConnectionConfig, whose sshTunnel may name its
 * key file (privateKeyFile, schemas/connection-file.schema.json) instead of holding the key. A
 * password missing from both is taken from PGPASSWORD, as psql does, so it need not appear in the
 * process list.
 */
import { dirname, resolve } from 'node:path';
import type { ConnectionConfig, ConnectionFileFields } from '../index.js';
import connectionFileSchema from '../schemas/connection-file.schema.json' with { type: 'json' };
import { validatorFor } from '../schemas/validate.js';
import { requireOption } from './command.js';
import { cliFailure, usageError, type CliFailure } from './failures.js';
import { readJsonArgument } from './json-argument.js';
import { redactUrl, rememberSecret } from './redact.js';
import { sshFlagsGiven, withSshTunnel, type SshValues } from './ssh-arguments.js';
import { checkSshKeyFromFile, readSshKeyFile, type SshKeyFile } from './ssh-key-file.js';

type ConnectionValues = { connection?: string | boolean } & SshValues;

/** A command's required --connection, with the tunnel its --ssh-* flags describe. */
export function connectionFromOptions(command: string, values: ConnectionValues, env: NodeJS.ProcessEnv = process.env): ConnectionConfig {
  if (typeof values.connection !== 'string' && sshFlagsGiven(values).length) throw sshWithoutConnection(command, values);
  const value = requireOption(command, 'connection', typeof values.connection === 'string' ? values.connection : undefined);
  const keyFromFlag = typeof values['ssh-key-file'] === 'string';
  const { config, keyFile } = connectionAndKeyFile(value, env, keyFromFlag);
  const connection = withSshTunnel(command, config, values, env);
  const tunnel = connection.sshTunnel;
  const keyOrigin = keyFromFlag ? `the key file ${values['ssh-key-file']} (--ssh-key-file)` : keyFile && `the key file ${keyFile.written} (${keyFile.origin})`;
  if (keyOrigin && tunnel?.privateKey !== undefined) {
    const passphrase = typeof values['ssh-passphrase-env'] === 'string' ? 'the passphrase of --ssh-passphrase-env' : 'connection.sshTunnel.passphrase';
    checkSshKeyFromFile(tunnel.privateKey, tunnel.passphrase, { key: keyOrigin, passphrase });
  }
  return connection;
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
  return connectionAndKeyFile(value, env, false).config;
}

/**
 * The connection an argument gives, with its file's privateKeyFile read into privateKey (unless
 * --ssh-key-file replaces that key) and the key file it came from.
 */
function connectionAndKeyFile(value: string, env: NodeJS.ProcessEnv, keyFromFlag: boolean): { config: ConnectionConfig; keyFile?: SshKeyFile } {
  const fromFile = value.startsWith('@') ? configFromFile(value, keyFromFlag) : undefined;
  const config = fromFile?.config ?? { connectionString: value };
  const urlPassword = config.connectionString === undefined ? undefined : passwordInConnectionString(config.connectionString);
  rememberSecret(urlPassword);
  rememberConnectionSecrets(config);
  const keyFile = fromFile?.keyFile;
  if (config.password === undefined && urlPassword === undefined && env.PGPASSWORD) {
    rememberSecret(env.PGPASSWORD);
    return { config: { ...config, password: env.PGPASSWORD }, keyFile };
  }
  return { config, keyFile };
}

/** What to call the target in output: the URL with its password masked, or user@host:port/db. */
export function describeConnection(config: ConnectionConfig): string {
  if (config.connectionString) return redactUrl(config.connectionString);
  const port = config.port === undefined ? '' : `:${config.port}`;
  return `${config.user ?? '?'}@${config.host ?? '?'}${port}/${config.database ?? '?'}`;
}

function configFromFile(value: string, keyFromFlag: boolean): { config: ConnectionConfig; keyFile?: SshKeyFile } {
  const parsed = readJsonArgument(value, '--connection');
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw usageError(`--connection ${value} must hold a JSON object (a ConnectionConfig)`, [
      'Write the connection as {"host": "…", "database": "…", "user": "…", "sslMode": "require"} (see schemas/connection.schema.json).',
    ]);
  }
  // Field-by-field validation is the library's: it names every bad field with exit 2. Only the
  // fields the command resolves itself are checked here.
  rememberConnectionSecrets(parsed); // before any check below can throw a message (REVIEW5 R104)
  const problems = checkFileFields(parsed, 'connection');
  if (problems.length) throw usageError(`--connection ${value}: ${problems.join('; ')}`, [KEY_FILE_FIX]);
  const { sshTunnel } = parsed as ConnectionFileFields;
  if (sshTunnel?.privateKeyFile === undefined) return { config: parsed as ConnectionConfig };
  const { privateKeyFile, ...tunnel } = sshTunnel as ConnectionFileFields['sshTunnel'] & NonNullable<ConnectionConfig['sshTunnel']>;
  if (tunnel.privateKey !== undefined) {
    throw usageError(`--connection ${value}: connection.sshTunnel has both privateKey and privateKeyFile; give one`, [KEY_FILE_FIX]);
  }
  const source = value.slice(1);
  const keyFile: SshKeyFile = {
    written: privateKeyFile!,
    origin: `connection.sshTunnel.privateKeyFile in ${source === '-' ? 'stdin' : source}`,
    base: source === '-' ? process.cwd() : dirname(resolve(source)),
  };
  // --ssh-key-file replaces this key: the file it names is not read.
  if (keyFromFlag) return { config: { ...(parsed as ConnectionConfig), sshTunnel: tunnel } };
  return { config: { ...(parsed as ConnectionConfig), sshTunnel: { ...tunnel, privateKey: readSshKeyFile(keyFile) } }, keyFile };
}

const checkFileFields = validatorFor(connectionFileSchema);

/**
 * Every secret field of a connection, remembered for redaction. Also given a connection file as
 * parsed, before it is checked: whatever else is wrong with it, a failing check's message must not
 * show them.
 */
function rememberConnectionSecrets(config: unknown): void {
  const fields = (value: unknown) => (typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {});
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const connection = fields(config);
  const tunnel = fields(connection.sshTunnel);
  for (const value of [connection.password, connection.sslKey, tunnel.password, tunnel.privateKey, tunnel.passphrase]) rememberSecret(text(value));
}
const KEY_FILE_FIX = 'Give sshTunnel.privateKeyFile as the path of the key file (e.g. "~/.ssh/id_ed25519"), or the key text as sshTunnel.privateKey: one of the two.';

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
