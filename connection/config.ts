/**
 * Connection configuration: validated against schemas/connection.schema.json, merged with a
 * libpq connection string, and filled with the schema's defaults. Nothing here touches the network.
 */
import { parse as parseUri } from 'pg-connection-string';
import connectionSchema from '../schemas/connection.schema.json' with { type: 'json' };
import type { ConnectionConfig } from '../schemas/types.gen.js';
import { validatorFor } from '../schemas/validate.js';
import { PgActionsError } from './errors/index.js';
import { pemProblems } from './pem.js';
import { resolveSshTunnel, type ResolvedSshTunnel } from './ssh-config.js';

export type { ConnectionConfig };
export type SslMode = NonNullable<ConnectionConfig['sslMode']>;

/** A configuration with every default applied: what the pool is built from. */
export interface ResolvedConfig {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  sslMode: SslMode;
  sslCa?: string;
  sslCert?: string;
  sslKey?: string;
  applicationName: string;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  maxResultBytes: number;
  pooler: NonNullable<ConnectionConfig['pooler']>;
  /** Reach host:port through this SSH server (host and port as the SSH server sees them). */
  sshTunnel?: ResolvedSshTunnel;
}

/** The schema's ceiling for maxResultBytes; also what any response may hold at most (see result-gate.ts). */
export const MAX_RESULT_BYTES: number = connectionSchema.properties.maxResultBytes.maximum;

const checkConfig = validatorFor(connectionSchema);
const defaults = Object.fromEntries(
  Object.entries(connectionSchema.properties).flatMap(([key, property]) => ('default' in property ? [[key, property.default]] : [])),
) as Pick<ResolvedConfig, 'port' | 'sslMode' | 'applicationName' | 'connectTimeoutMs' | 'statementTimeoutMs' | 'maxResultBytes' | 'pooler'>;

/** Validates and completes a configuration; throws INVALID_INPUT naming every bad field. */
export function resolveConfig(config: unknown, root = 'connection'): ResolvedConfig {
  const problems = checkConfig(config, root).map((problem) => (problem === `${root}.sshTunnel.privateKeyFile is not a known field` ? keyFileHere(root) : problem));
  if (problems.length) throw invalid(problems);
  const given = config as ConnectionConfig;
  const fromString = given.connectionString ? parseConnectionString(given.connectionString, root) : {};
  const merged = { ...defaults, ...fromString, ...withoutUndefined(given) };
  delete (merged as ConnectionConfig).connectionString;
  const missing = (['host', 'database', 'user'] as const).filter((key) => !merged[key]);
  if (missing.length) {
    throw invalid(missing.map((key) => `${root}.${key} is required (or give ${root}.connectionString)`));
  }
  if (merged.host!.startsWith('/')) {
    // pg takes it as a Unix socket directory on the machine running the step, where peer or
    // trust authentication would let a step in as that machine's own OS user.
    throw invalid([`${root}.host names a Unix socket on the machine running the step; give a host name or IP address`]);
  }
  if ((merged.sslCert === undefined) !== (merged.sslKey === undefined)) {
    throw invalid([`${root}.${merged.sslCert ? 'sslKey' : 'sslCert'} is required when ${merged.sslCert ? 'sslCert' : 'sslKey'} is given`]);
  }
  const pem = pemProblems(merged, root);
  if (pem.length) throw invalid(pem);
  if (given.sshTunnel) {
    const { tunnel, problems } = resolveSshTunnel(given.sshTunnel, root);
    if (problems.length) throw invalid(problems);
    return { ...merged, sshTunnel: tunnel } as ResolvedConfig;
  }
  return merged as ResolvedConfig;
}

/** The pg-actions command's connection file may name a key file; a step may not (it would read its worker's files). */
function keyFileHere(root: string): string {
  return `${root}.sshTunnel.privateKeyFile is read only by the pg-actions command (its --connection file); a step takes the key's text in ${root}.sshTunnel.privateKey`;
}

function invalid(problems: string[]): PgActionsError {
  return new PgActionsError('INVALID_INPUT', { message: problems.join('; '), problems });
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

// Parameters that name files on this machine: a flow step must not read local files.
const FILE_PARAMETERS = ['sslrootcert', 'sslcert', 'sslkey', 'sslcrl', 'sslcrldir', 'passfile', 'service'];
// What pg-actions reads from a connection string, and libpq parameters that only tune transport
// details and are safe to ignore. Anything else is refused: a typo such as `sslmod=require`
// must not silently leave the connection weaker than the author asked for.
const USED_PARAMETERS = ['host', 'port', 'dbname', 'user', 'password', 'sslmode', 'application_name', 'connect_timeout'];
const IGNORED_PARAMETERS = [
  'fallback_application_name', 'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'tcp_user_timeout',
  'client_encoding', 'sslcompression', 'sslsni', 'gssencmode', 'target_session_attrs', 'load_balance_hosts',
];
const SSL_MODES: readonly string[] = connectionSchema.properties.sslMode.enum;

/**
 * Reads a libpq connection string: a URI (postgres://…) or keyword/value pairs
 * (host=… dbname=…). Never echoes the string in an error: it may hold a password.
 */
export function parseConnectionString(text: string, root = 'connection'): Partial<ResolvedConfig> {
  const field = `${root}.connectionString`;
  const params = /^postgres(ql)?:\/\//i.test(text.trim()) ? uriParams(text.trim(), field) : keywordParams(text, field);
  const fileParam = FILE_PARAMETERS.find((name) => params[name] !== undefined);
  if (fileParam) {
    throw invalid([`${field} uses ${fileParam}, which names a file on the server running the step; paste certificates into sslCa / sslCert / sslKey instead`]);
  }
  const unknown = Object.keys(params).filter((name) => !USED_PARAMETERS.includes(name) && !IGNORED_PARAMETERS.includes(name));
  if (unknown.length) {
    throw invalid([`${field} has parameter${unknown.length > 1 ? 's' : ''} pg-actions does not support: ${unknown.join(', ')} (supported: ${USED_PARAMETERS.join(', ')})`]);
  }
  const sslMode = params.sslmode;
  if (sslMode !== undefined && !SSL_MODES.includes(sslMode)) {
    throw invalid([`${field} has sslmode=${sslMode}; it must be one of: ${SSL_MODES.join(', ')}`]);
  }
  const port = params.port === undefined ? undefined : Number(params.port);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
    throw invalid([`${field} has a port that is not a number from 1 to 65535`]);
  }
  const connectTimeoutSeconds = params.connect_timeout === undefined ? undefined : Number(params.connect_timeout);
  return withoutUndefined({
    host: params.host,
    port,
    database: params.dbname,
    user: params.user,
    password: params.password,
    sslMode: sslMode as SslMode | undefined,
    applicationName: params.application_name,
    connectTimeoutMs: connectTimeoutSeconds && connectTimeoutSeconds > 0 ? Math.max(100, connectTimeoutSeconds * 1000) : undefined,
  });
}

function uriParams(uri: string, field: string): Record<string, string | undefined> {
  let parsed: ReturnType<typeof parseUri>;
  let query: URLSearchParams;
  if (/%(?![0-9A-Fa-f]{2})/.test(uri)) throw invalid([`${field} has an invalid percent-encoded character (write % as %25)`]);
  try {
    query = new URL(uri.replace(/^postgres(ql)?:/i, 'http:')).searchParams;
    if (FILE_PARAMETERS.some((name) => query.has(name))) return Object.fromEntries(query);
    parsed = parseUri(uri, { useLibpqCompat: true });
  } catch {
    throw invalid([`${field} is not a valid postgres:// URI`]);
  }
  const str = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  return {
    ...Object.fromEntries(query),
    host: str(parsed.host),
    port: str(parsed.port),
    dbname: str(parsed.database),
    user: str(parsed.user),
    password: typeof parsed.password === 'string' ? parsed.password : undefined,
    sslmode: query.get('sslmode') ?? undefined,
  };
}

/** libpq keyword/value format: key=value pairs, values optionally single-quoted with \ escapes. */
function keywordParams(text: string, field: string): Record<string, string> {
  const params: Record<string, string> = {};
  const pattern = /\s*([A-Za-z_]+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|([^\s']*))/gy;
  let match: RegExpExecArray | null;
  let end = 0;
  while ((match = pattern.exec(text)) !== null && match[0] !== '') {
    params[match[1]!.toLowerCase()] = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3]!;
    end = pattern.lastIndex;
  }
  if (text.slice(end).trim() !== '' || Object.keys(params).length === 0) {
    throw invalid([`${field} is neither a postgres:// URI nor keyword=value pairs`]);
  }
  return params;
}
