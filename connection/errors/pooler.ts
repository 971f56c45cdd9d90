/**
 * PgBouncer's own errors. They all carry SQLSTATE 08P01 and a fixed English text (PgBouncer does
 * not translate its messages), so, unlike the server's, they are told apart by that text. A
 * server error PgBouncer relays while logging in to the server also arrives as 08P01.
 */
import type { ErrorCode } from './catalogue.js';

const POOLER_MESSAGES: readonly (readonly [RegExp, ErrorCode])[] = [
  [/^unsupported startup parameter: /, 'POOLER_STARTUP_PARAMETER'],
  [/^no more connections allowed \(max_client_conn\)/, 'POOLER_TOO_MANY_CLIENTS'],
  // Its own login failing, or the server's refusal relayed (the server names the user; PgBouncer's own text does not).
  [/^server login (?:has been failing|failed)|^pgbouncer cannot connect to server|^client_login_timeout \(server down\)|authentication failed for user "/, 'POOLER_SERVER_LOGIN_FAILED'],
  [/^query_wait_timeout/, 'POOLER_QUERY_WAIT_TIMEOUT'],
  [/^database ".*" is disabled|^database removed|^pause mode|shutting down/, 'POOLER_SHUTTING_DOWN'],
  // PgBouncer refusing the client's own password or user.
  [/^(?:SASL|password) authentication failed$|^no such user/, 'AUTHENTICATION_FAILED'],
  [/^no such database: /, 'DATABASE_NOT_FOUND'],
];

/** The code for an error PgBouncer itself sent, or undefined for anything else. */
export function poolerErrorCode(sqlstate: string, message: string): ErrorCode | undefined {
  if (sqlstate !== '08P01') return undefined;
  return POOLER_MESSAGES.find(([pattern]) => pattern.test(message))?.[1];
}

/** For the docs. */
export const POOLER_SOURCE = 'a PgBouncer error (SQLSTATE `08P01`, matched by its fixed text)';
