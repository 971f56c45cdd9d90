/**
 * Maps whatever failed (a server ErrorResponse, a socket error, a TLS verification error, a
 * node-postgres client error) to one PgActionsError. Server errors are mapped by SQLSTATE,
 * never by message text; the message text of node-postgres' own client errors is fixed by
 * that library and is matched only where it carries no code.
 */
import type { ErrorCode } from './catalogue.js';
import { PgActionsError, type ServerErrorFields } from './error.js';
import { poolerError, POOLER_SOURCE } from './pooler.js';

export interface FailureContext {
  phase: 'connect' | 'statement';
  host: string;
  port: number;
  user: string;
  database: string;
  connectTimeoutMs: number;
  /** Values that must never appear in output (the password, a client key). */
  secrets: readonly string[];
  query?: string;
  parameters?: readonly unknown[];
  /** The step's deadline passed (server statement_timeout or the client deadline). */
  /** ignoredCancel: the statement went on after the CancelRequest, so its session was cut instead. */
  timedOut?: { afterMs: number; ignoredCancel?: boolean };
  /** The result passed the byte cap. */
  overflowed?: { maxResultBytes: number };
  /** The server refused plaintext but accepts TLS (learnt by a probe). */
  serverRequiresTls?: boolean;
}

const BY_SQLSTATE: Record<string, ErrorCode> = {
  '28P01': 'AUTHENTICATION_FAILED',
  '28000': 'AUTHENTICATION_FAILED',
  '3D000': 'DATABASE_NOT_FOUND',
  '42501': 'PERMISSION_DENIED',
  '42601': 'SYNTAX_ERROR',
  '42P01': 'UNDEFINED_TABLE',
  '42703': 'UNDEFINED_COLUMN',
  '42804': 'INVALID_VALUE', // datatype mismatch
  '42P18': 'INVALID_VALUE', // could not determine the type of a parameter
  '23505': 'UNIQUE_VIOLATION',
  '23503': 'FOREIGN_KEY_VIOLATION',
  '23502': 'NOT_NULL_VIOLATION',
  '23514': 'CHECK_VIOLATION',
  '25006': 'READ_ONLY_VIOLATION',
  '53300': 'TOO_MANY_CONNECTIONS',
  '53400': 'TEMP_FILE_LIMIT_EXCEEDED', // configuration_limit_exceeded: temp_file_limit
  '40P01': 'DEADLOCK_DETECTED',
  '40001': 'SERIALIZATION_FAILURE',
  '55P03': 'LOCK_NOT_AVAILABLE',
  '57014': 'QUERY_TIMEOUT',
  '57P01': 'CONNECTION_LOST', // terminated by an administrator / server shutting down
  '57P02': 'CONNECTION_LOST', // crash shutdown
  '57P03': 'CONNECTION_REFUSED', // the server is starting up or shutting down
};
const BY_SQLSTATE_CLASS: Record<string, ErrorCode> = { '08': 'CONNECTION_LOST', '22': 'INVALID_VALUE', '28': 'AUTHENTICATION_FAILED' };

const BY_SOCKET_CODE: Record<string, ErrorCode> = {
  ECONNREFUSED: 'CONNECTION_REFUSED',
  EHOSTUNREACH: 'CONNECTION_REFUSED',
  ENETUNREACH: 'CONNECTION_REFUSED',
  EADDRNOTAVAIL: 'CONNECTION_REFUSED',
  ENOTFOUND: 'HOST_NOT_FOUND',
  EAI_AGAIN: 'HOST_NOT_FOUND',
  EAI_NONAME: 'HOST_NOT_FOUND',
  ETIMEDOUT: 'CONNECTION_TIMEOUT',
  ECONNRESET: 'CONNECTION_LOST',
  EPIPE: 'CONNECTION_LOST',
};
const TLS_VERIFY_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED', 'CERT_REJECTED', 'HOSTNAME_MISMATCH', 'CERT_CHAIN_TOO_LONG', 'INVALID_CA',
]);

/** TLS alerts a server sends when it refuses the certificate we presented. */
const SERVER_REJECTED_CLIENT_CERT = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(?:UNKNOWN_CA|BAD_CERTIFICATE|UNSUPPORTED_CERTIFICATE|CERTIFICATE_\w+)$/;

interface RawError {
  name?: string;
  message?: string;
  code?: string;
  severity?: string;
  detail?: string;
  hint?: string;
  position?: string;
  schema?: string;
  table?: string;
  column?: string;
  constraint?: string;
  dataType?: string;
  reason?: string;
  /** The server function that raised it (ErrorResponse field R), e.g. exec_bind_message. */
  routine?: string;
}

export function toPgActionsError(error: unknown, context: FailureContext): PgActionsError {
  if (error instanceof PgActionsError) return error;
  const raw = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as RawError;
  const base = { cause: error, query: context.query, parameters: context.parameters };
  if (context.overflowed) {
    return build('RESULT_TOO_LARGE', `The result passed the ${formatBytes(context.overflowed.maxResultBytes)} cap; reading stopped and the query was aborted.`, base, context);
  }
  const sqlstate = isServerError(raw) ? raw.code! : undefined;
  if (sqlstate) return fromServer(sqlstate, raw, base, context);
  if (context.timedOut) {
    return build('QUERY_TIMEOUT', timeoutMessage(context.timedOut), base, context);
  }
  const clientCode = raw.code ?? '';
  const message = raw.message ?? '';
  const where = `${context.host}:${context.port}`;
  if (TLS_VERIFY_CODES.has(clientCode)) {
    const hostMismatch = clientCode === 'ERR_TLS_CERT_ALTNAME_INVALID' || clientCode === 'HOSTNAME_MISMATCH';
    return build('SSL_CERTIFICATE_INVALID', hostMismatch
      ? `The server certificate is not valid for the host name "${context.host}" (${raw.reason ?? clientCode}).`
      : `The server certificate of ${where} could not be verified (${clientCode}).`, base, context);
  }
  if (SERVER_REJECTED_CLIENT_CERT.test(clientCode)) {
    return build('SSL_CLIENT_CERTIFICATE_REJECTED', `${where} rejected the client certificate (TLS alert: ${clientCode.replace(/^ERR_SSL_\w+?_ALERT_/, '').toLowerCase().replace(/_/g, ' ')}).`, base, context);
  }
  const socketCode = BY_SOCKET_CODE[clientCode];
  if (socketCode) return build(socketCode, socketMessage(socketCode, context), base, context);
  // node-postgres' own errors, which carry no code.
  if (message === 'The server does not support SSL connections') {
    return build('SSL_NOT_SUPPORTED', `${where} does not accept SSL connections, but SSL Mode requires it.`, base, context);
  }
  // pg's own connect timeout, or our deadline (p-timeout's TimeoutError) on a query made while connecting.
  if ((/timeout/i.test(message) || raw.name === 'TimeoutError') && context.phase === 'connect') {
    return build('CONNECTION_TIMEOUT', socketMessage('CONNECTION_TIMEOUT', context), base, context);
  }
  if (/^Connection terminated|not queryable|Client was closed/i.test(message)) {
    return build('CONNECTION_LOST', socketMessage('CONNECTION_LOST', context), base, context);
  }
  return build('DATABASE_ERROR', message || 'Unknown error', base, context);
}

function fromServer(sqlstate: string, raw: RawError, base: object, context: FailureContext): PgActionsError {
  const pooler = poolerError(sqlstate, raw.message ?? '', `${context.host}:${context.port}`, context.database);
  if (pooler) return build(pooler.code, pooler.message, { ...base, sqlstate }, context);
  let code: ErrorCode = BY_SQLSTATE[sqlstate] ?? BY_SQLSTATE_CLASS[sqlstate.slice(0, 2)] ?? 'DATABASE_ERROR';
  // Redacted before capitalising: a message that begins with the password would hide it from redaction.
  let message = sentence(redact(raw.message ?? '', context.secrets));
  const fields: ServerErrorFields & { location?: { line: number; column: number }; fixes?: readonly string[]; problems?: string[] } = {
    sqlstate,
    detail: raw.detail,
    hint: raw.hint,
    position: raw.position ? Number(raw.position) : undefined,
    schema: raw.schema,
    table: raw.table,
    column: raw.column,
    constraint: raw.constraint,
    dataType: raw.dataType,
  };
  if (code === 'AUTHENTICATION_FAILED' && sqlstate === '28000' && context.serverRequiresTls) {
    code = 'SSL_REQUIRED';
    message = `${context.host}:${context.port} only accepts SSL connections for user "${context.user}" and database "${context.database}", and SSL Mode is "disable".`;
  } else if (code === 'QUERY_TIMEOUT' && !context.timedOut) {
    // Cancelled by somebody else (pg_cancel_backend): not our timeout.
    code = 'DATABASE_ERROR';
  } else if (code === 'QUERY_TIMEOUT' && context.timedOut) {
    message = timeoutMessage(context.timedOut);
  } else if (code === 'SYNTAX_ERROR' && fields.position && context.query) {
    fields.location = lineAndColumn(context.query, fields.position);
    message = `${message} (line ${fields.location.line}, column ${fields.location.column}).`;
  } else if (code === 'UNIQUE_VIOLATION' && raw.detail) {
    const key = /^Key \((.*)\)=\((.*)\) already exists\.$/s.exec(raw.detail);
    if (key) message = `A row with ${key[1]} = ${key[2]} already exists (constraint ${raw.constraint ?? 'unique'}).`;
  } else if (code === 'DATABASE_NOT_FOUND') {
    message = `Database "${context.database}" does not exist on ${context.host}:${context.port}.`;
  } else if (code === 'CONNECTION_LOST') {
    message = `${socketMessage('CONNECTION_LOST', context)} The server said: ${message}`;
  }
  if (sqlstate === '08P01' && raw.routine === 'exec_bind_message') {
    // The one protocol violation input can cause: a value count that differs from the $n the
    // query uses (the server counts the highest $n). The numbers are a bonus when the text has them
    // (a translated server's has not). Told by the server's routine, never translated: a pooler's own
    // 08P01 (PgBouncer's query_timeout, "SSL required") carries none.
    const counts = /(\d+) parameters?, but prepared statement "[^"]*" requires (\d+)/.exec(raw.message ?? '');
    code = 'INVALID_INPUT';
    message = counts
      ? `The query uses placeholders up to $${counts[2]}, but ${counts[1]} value(s) were sent (parameters plus any {{ }} in the query).`
      : 'The number of parameters given does not match the $1, $2… placeholders in the query.';
    fields.problems = ['input.parameters must have one value for each placeholder $1…$n in input.query'];
    fields.fixes = ['Give one parameter for each placeholder $1…$n used in the query.'];
  }
  return build(code, message, { ...base, ...fields }, context);
}

function socketMessage(code: ErrorCode, context: FailureContext): string {
  const where = `${context.host}:${context.port}`;
  switch (code) {
    case 'CONNECTION_REFUSED': return `Could not connect to ${where}: the connection was refused.`;
    case 'HOST_NOT_FOUND': return `The host "${context.host}" could not be found.`;
    case 'CONNECTION_TIMEOUT': return `${where} did not complete the connection within ${context.connectTimeoutMs} ms.`;
    case 'CONNECTION_LOST': return `The connection to ${where} was lost.`;
    default: return `Could not use ${where}.`;
  }
}

function isServerError(raw: RawError): boolean {
  return typeof raw.code === 'string' && /^[0-9A-Z]{5}$/.test(raw.code) && typeof raw.severity === 'string';
}

/** 1-based character position → 1-based line and column. */
export function lineAndColumn(text: string, position: number): { line: number; column: number } {
  const before = [...text].slice(0, position - 1).join('');
  const lines = before.split('\n');
  return { line: lines.length, column: [...lines[lines.length - 1]!].length + 1 };
}

function sentence(text: string): string {
  return text ? text[0]!.toUpperCase() + text.slice(1) : text;
}

function formatBytes(bytes: number): string {
  return bytes >= 1048576 ? `${+(bytes / 1048576).toFixed(1)} MB` : `${+(bytes / 1024).toFixed(1)} KB`;
}

function build(code: ErrorCode, message: string, init: object, context: FailureContext): PgActionsError {
  const fields = init as Record<string, unknown>;
  const scrub = (text: unknown) => (typeof text === 'string' ? redact(text, context.secrets) : text);
  return new PgActionsError(code, {
    ...fields,
    message: redact(message, context.secrets),
    detail: scrub(fields.detail) as string | undefined,
    hint: scrub(fields.hint) as string | undefined,
    cause: redactCause(fields.cause, context.secrets),
  });
}

/**
 * The original error stays attached as `cause` for debugging, and hosts print it (util.inspect
 * shows `[cause]`, loggers walk it), so it must not carry a secret either: a server message can
 * echo a value equal to the password ("invalid input syntax for type integer: …"). Returns the
 * cause itself when it holds no secret, otherwise a copy (same prototype) with every string
 * redacted, nested errors included.
 */
function redactCause(cause: unknown, secrets: readonly string[], depth = 0): unknown {
  if (!secrets.some((secret) => secret.length >= 4)) return cause;
  if (typeof cause === 'string') return redact(cause, secrets);
  if (typeof cause !== 'object' || cause === null || depth > 5) return cause;
  if (Array.isArray(cause)) {
    // AggregateError.errors, for one
    const items = cause.map((item: unknown) => redactCause(item, secrets, depth + 1));
    return items.some((item, i) => item !== cause[i]) ? items : cause;
  }
  if (!(cause instanceof Error) && Object.getPrototypeOf(cause) !== Object.prototype) return cause;
  let changed = false;
  const copy = Object.create(Object.getPrototypeOf(cause) as object | null) as Record<PropertyKey, unknown>;
  for (const key of Reflect.ownKeys(cause)) {
    const descriptor = Object.getOwnPropertyDescriptor(cause, key)!;
    // An accessor (V8's `stack` on some versions) is read once and kept as a plain value.
    const value = 'value' in descriptor ? descriptor.value : (cause as Record<PropertyKey, unknown>)[key];
    const clean = redactCause(value, secrets, depth + 1);
    if (clean !== value) changed = true;
    Object.defineProperty(copy, key, {
      value: clean,
      enumerable: descriptor.enumerable ?? false,
      writable: true,
      configurable: true,
    });
  }
  return changed ? copy : cause;
}

/** Replaces every secret in a text; secrets shorter than 4 characters would redact noise. */
export function redact(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) if (secret.length >= 4) result = result.split(secret).join('••••••');
  return result;
}

/** For the docs: which server SQLSTATEs and client conditions produce each code (derived from the tables above). */
export const SQLSTATE_SOURCES: Partial<Record<ErrorCode, string>> = (() => {
  const sources: Partial<Record<ErrorCode, string[]>> = {};
  const add = (code: ErrorCode, what: string) => (sources[code] ??= []).push(what);
  for (const [sqlstate, code] of Object.entries(BY_SQLSTATE)) add(code, `SQLSTATE \`${sqlstate}\``);
  for (const [prefix, code] of Object.entries(BY_SQLSTATE_CLASS)) add(code, `SQLSTATE class \`${prefix}\``);
  for (const [socketCode, code] of Object.entries(BY_SOCKET_CODE)) add(code, `socket \`${socketCode}\``);
  for (const code of ['POOLER_STARTUP_PARAMETER', 'POOLER_TOO_MANY_CLIENTS', 'POOLER_SERVER_LOGIN_FAILED', 'POOLER_QUERY_WAIT_TIMEOUT', 'POOLER_SHUTTING_DOWN'] as const) {
    add(code, POOLER_SOURCE);
  }
  add('AUTHENTICATION_FAILED', 'PgBouncer refusing the user or password ("SASL authentication failed", "no such user"; `08P01`)');
  add('DATABASE_NOT_FOUND', 'PgBouncer serving no such database ("no such database"), or relaying the server\'s refusal behind a `*` entry ("database … does not exist", PgBouncer 1.24+ also within server_login_retry; `08P01`)');
  add('CONNECTION_REFUSED', 'through `sshTunnel`: the SSH server could not connect to host:port (channel open failure "connect failed")');
  add('SSH_HOST_UNREACHABLE', 'the SSH server of `sshTunnel` refusing, not resolving, not answering or not speaking SSH within `connectTimeoutMs`');
  add('SSH_AUTH_FAILED', 'the SSH server rejecting the user with every method given (`password`, `privateKey`)');
  add('SSH_HOST_KEY_MISMATCH', 'a host key whose SHA256 fingerprint is not `sshTunnel.hostKeyFingerprint`');
  add('SSH_FORWARDING_REFUSED', 'the SSH server refusing the forwarded (direct-tcpip) channel: `AllowTcpForwarding no`, `PermitOpen`, `no-port-forwarding`');
  add('SSL_CERTIFICATE_INVALID', 'TLS verification failure (untrusted chain, host-name mismatch, expired)');
  add('SSL_CLIENT_CERTIFICATE_REJECTED', 'a TLS alert from the server refusing our client certificate (unknown CA, bad or expired certificate)');
  add('SSL_NOT_SUPPORTED', 'the server answers "N" to the SSL request');
  add('SSL_REQUIRED', 'SQLSTATE `28000` on a plaintext attempt when the server accepts TLS, PgBouncer\'s "SSL required" (client_tls_sslmode require; `08P01`)');
  add('CONNECTION_TIMEOUT', 'no complete connection within `connectTimeoutMs`');
  add('POOL_EXHAUSTED', 'every pooled connection busy until the step deadline (or `connectTimeoutMs`), the wait for one being part of the step');
  add('QUERY_TIMEOUT', 'the step deadline (`statementTimeoutMs` or the step override)');
  add('COMMIT_UNCONFIRMED', 'the step deadline passing after the statement finished, while its COMMIT waited (synchronous replication) or its answer travelled');
  add('RESULT_TOO_LARGE', 'rows passing `maxResultBytes` (memory: bytes plus per-row, per-column and JSON-structure costs) while streaming; the statement is cancelled');
  add('RESULT_UNREADABLE', 'a result value the row reader fails on (an exception in a type parser, caught in the socket\'s data handler)');
  add('INVALID_INPUT', 'schema validation of configuration or input; parameter count mismatch (`08P01`); a statement of the wrong kind');
  add('TEMPLATE_ERROR', 'rendering `{{ }}` templates');
  add('DATABASE_ERROR', 'any other SQLSTATE (kept in `sqlstate`)');
  return Object.fromEntries(Object.entries(sources).map(([code, list]) => [code, list.join(', ')]));
})();

function timeoutMessage(timedOut: NonNullable<FailureContext['timedOut']>): string {
  return timedOut.ignoredCancel
    ? `The statement did not finish within ${timedOut.afterMs} ms and kept running after it was cancelled (it catches the cancel), so its connection was closed and the server told to end it.`
    : `The statement did not finish within ${timedOut.afterMs} ms and was cancelled on the server.`;
}
