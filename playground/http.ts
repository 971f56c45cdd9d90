/**
 * The small HTTP toolkit the playground needs: JSON in (size-capped), JSON out, and the headers
 * every response carries. No framework: node's http is enough for a local, single-user page.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, tooLarge, unsupportedMediaType, invalidInput } from './http-errors.js';

export const MAX_BODY_BYTES = 1024 * 1024;

/** On every response. Deliberately no Access-Control-* header: other origins get nothing. */
export const COMMON_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
};

/** The page loads only its own script and stylesheet and talks only to its own API. */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function send(res: ServerResponse, status: number, contentType: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...COMMON_HEADERS, 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value), headers);
}

/**
 * Reads a JSON body of at most `limit` bytes. Requiring application/json also means a page on
 * another origin cannot send one without a CORS preflight, which this server never grants.
 */
export async function readJson(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw unsupportedMediaType();
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the body, which may hold a password: say less.
    throw invalidInput('the request body is not valid JSON');
  }
}

/** The body as an object, or a 400 naming what was expected. */
export function asObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidInput('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** After an early error the rest of an oversized body is not worth reading: close once answered. */
export function closeAfterReply(error: unknown): boolean {
  return error instanceof HttpError && error.status === 413;
}
