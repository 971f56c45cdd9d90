/**
 * The playground's access token, as Jupyter's: `serve` prints a URL carrying a random token; the
 * page trades it for a cookie (then drops it from the address bar), and every API call must
 * present it, as that cookie or as `Authorization: Bearer <token>` (scripts). Without it, anyone
 * who can reach the port could run SQL with the saved connection. A token may be left off only
 * on a loopback address (serve --no-token).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Per port: browsers share cookies between ports of one host, and each playground has its own token. */
export function cookieName(port: number): string {
  return `pg_actions_token_${port}`;
}

/** Set-Cookie value: never sent to another site, never readable by scripts. */
export function tokenCookie(port: number, token: string): string {
  return `${cookieName(port)}=${token}; Path=/; HttpOnly; SameSite=Strict`;
}

/** The token a request carries (Authorization header first, then the cookie), if any. */
export function presentedToken(req: IncomingMessage, port: number): string | undefined {
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (bearer) return bearer[1];
  const name = cookieName(port);
  for (const pair of (req.headers.cookie ?? '').split(';')) {
    const [key, ...value] = pair.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

/** Constant-time comparison (of digests, so lengths never differ). */
export function tokenMatches(presented: string | undefined, token: string): boolean {
  if (presented === undefined) return false;
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(presented), digest(token));
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. 0.0.0.0 and :: are every interface. */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (name === 'localhost' || name === '::1') return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  return /^::ffff:127\./.test(name);
}
