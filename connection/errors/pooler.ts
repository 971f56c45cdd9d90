/**
 * PgBouncer's own errors. They all carry SQLSTATE 08P01 and a fixed English text (PgBouncer does
 * not translate its messages), so, unlike the server's, they are told apart by that text. A
 * server error PgBouncer relays while logging in to the server also arrives as 08P01, with the
 * server's text (English unless the server's lc_messages says otherwise).
 */
import type { ErrorCode } from './catalogue.js';

/** The message for a pooler error, from the pooler's address (host:port), the database and the pooler's words. */
type Describe = (where: string, database: string, said: string) => string;

const inItsWords: Describe = (where, _database, said) => `The connection pooler at ${where} said: ${said}.`;

const POOLER_MESSAGES: readonly (readonly [RegExp, ErrorCode, Describe?])[] = [
  // Behind a `*` entry any name reaches the server, which refuses one it lacks: PgBouncer relays its text to the
  // clients waiting, then, within server_login_retry, answers from memory: since 1.24 with the text ("server login
  // has been failing, cached error: database "x" does not exist (server_login_retry)"), before without it ("…, try
  // again later (server_login_retry)"), which stays POOLER_SERVER_LOGIN_FAILED below. Listed before that rule: the
  // cached form starts as it does.
  [/^database ".*" does not exist$|^server login has been failing, cached error: database ".*" does not exist /, 'DATABASE_NOT_FOUND',
    (where, database) => `Database "${database}" does not exist on the server behind the connection pooler at ${where}.`],
  [/^unsupported startup parameter: /, 'POOLER_STARTUP_PARAMETER'],
  [/^no more connections allowed \(max_client_conn\)/, 'POOLER_TOO_MANY_CLIENTS'],
  // Its own login failing, or the server's refusal relayed (the server names the user; PgBouncer's own text does not).
  [/^server login (?:has been failing|failed)|^pgbouncer cannot connect to server|^client_login_timeout \(server down\)|authentication failed for user "/, 'POOLER_SERVER_LOGIN_FAILED'],
  [/^query_wait_timeout/, 'POOLER_QUERY_WAIT_TIMEOUT'],
  [/^database ".*" is disabled|^database removed|^pause mode|shutting down/, 'POOLER_SHUTTING_DOWN'],
  // PgBouncer refusing the client's own password or user.
  [/^(?:SASL|password) authentication failed$|^no such user/, 'AUTHENTICATION_FAILED'],
  [/^no such database: /, 'DATABASE_NOT_FOUND', (where, database) => `Database "${database}" is not served by the connection pooler at ${where}.`],
  // client_tls_sslmode require (or verify-*) and a client that did not ask for TLS: only SSL Mode "disable" gets here
  // ("allow" makes its TLS attempt on it, pools.ts).
  [/^SSL required$/, 'SSL_REQUIRED', (where) => `The connection pooler at ${where} only accepts SSL connections, and SSL Mode is "disable".`],
];

/** The code and message of an error PgBouncer itself sent, or undefined for anything else. */
export function poolerError(sqlstate: string, said: string, where: string, database: string): { code: ErrorCode; message: string } | undefined {
  const rule = poolerRule(sqlstate, said);
  return rule && { code: rule[1], message: (rule[2] ?? inItsWords)(where, database, said) };
}

/** The code for an error PgBouncer itself sent, or undefined for anything else. */
export function poolerErrorCode(sqlstate: string, said: string): ErrorCode | undefined {
  return poolerRule(sqlstate, said)?.[1];
}

function poolerRule(sqlstate: string, said: string) {
  if (sqlstate !== '08P01') return undefined;
  return POOLER_MESSAGES.find(([pattern]) => pattern.test(said));
}

/** For the docs. */
export const POOLER_SOURCE = 'a PgBouncer error (SQLSTATE `08P01`, matched by its fixed text)';
