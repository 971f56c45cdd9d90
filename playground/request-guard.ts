/**
 * The playground holds a working database connection, so other web pages the user has open must
 * not be able to drive it. Two checks, besides the JSON-only POSTs in http.ts:
 *  - Host must be an IP literal, localhost or the configured host name: a DNS-rebinding page
 *    reaches us under its own domain name and is refused;
 *  - Origin, when the browser sends one, must be this server's own.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { forbidden } from './http-errors.js';

export function guardRequest(req: IncomingMessage, configuredHost: string): void {
  const host = req.headers.host;
  if (!host || !acceptableHostName(hostName(host), configuredHost)) {
    throw forbidden('This request names a host the playground does not answer to.');
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${host}`) {
    throw forbidden('Requests from other web pages are refused.');
  }
}

function hostName(hostHeader: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hostHeader);
  if (bracketed) return bracketed[1]!;
  return hostHeader.replace(/:\d+$/, '');
}

function acceptableHostName(name: string, configuredHost: string): boolean {
  const lower = name.toLowerCase();
  return isIP(lower) !== 0 || lower === 'localhost' || lower === configuredHost.toLowerCase();
}
