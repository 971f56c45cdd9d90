/**
 * Errors that belong to HTTP rather than to PostgreSQL (unknown path, wrong method, body too
 * large…), in the same shape as PgActionsError's JSON so the page renders every error one way.
 */
import { PgActionsError } from '../index.js';

export type HttpErrorCode =
  | 'BAD_REQUEST' | 'UNAUTHORIZED' | 'NOT_FOUND' | 'METHOD_NOT_ALLOWED' | 'REQUEST_TOO_LARGE' | 'UNSUPPORTED_MEDIA_TYPE' | 'FORBIDDEN' | 'INTERNAL_ERROR';

export class HttpError extends Error {
  override readonly name = 'HttpError';

  constructor(
    readonly status: number,
    readonly code: HttpErrorCode,
    readonly title: string,
    message: string,
    readonly fixes: readonly string[] = [],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, title: this.title, message: this.message, fixes: this.fixes };
  }
}

export const badRequest = (why: string) => new HttpError(400, 'BAD_REQUEST', 'Bad request', why, ['Open the playground at / ; the API lives under /api.']);

export const unauthorized = () =>
  new HttpError(401, 'UNAUTHORIZED', 'Access token required', 'This playground answers only requests that carry its access token.', [
    'Open the playground with the URL `pg-actions serve` printed (it ends in ?token=…).',
    'From a script, send the header Authorization: Bearer <token>.',
  ]);

export const notFound = (path: string) =>
  new HttpError(404, 'NOT_FOUND', 'Not found', `Nothing is served at ${path}.`, ['Open the playground at / ; the API lives under /api.']);

export const methodNotAllowed = (method: string, allowed: readonly string[]) =>
  new HttpError(405, 'METHOD_NOT_ALLOWED', 'Method not allowed', `${method} is not accepted here; use ${allowed.join(' or ')}.`, [], {
    Allow: allowed.join(', '),
  });

export const tooLarge = (limit: number) =>
  new HttpError(413, 'REQUEST_TOO_LARGE', 'Request too large', `The request body is larger than ${limit} bytes.`, [
    'Send less trigger data, or a shorter query.',
  ]);

export const unsupportedMediaType = () =>
  new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'JSON expected', 'POST requests must send Content-Type: application/json.', [
    'Set the header Content-Type: application/json.',
  ]);

export const forbidden = (why: string) => new HttpError(403, 'FORBIDDEN', 'Forbidden', why, ['Open the playground from its own address.']);

/** 400 for what the user typed (input, templates, JSON), 422 for what the database said. */
const USER_INPUT_CODES = new Set(['INVALID_INPUT', 'TEMPLATE_ERROR']);

export function statusOf(error: PgActionsError | HttpError): number {
  if (error instanceof HttpError) return error.status;
  return USER_INPUT_CODES.has(error.code) ? 400 : 422;
}

export function invalidInput(problem: string): PgActionsError {
  return new PgActionsError('INVALID_INPUT', { message: problem, problems: [problem] });
}

export function internalError(): HttpError {
  return new HttpError(500, 'INTERNAL_ERROR', 'Unexpected error', 'The playground hit an unexpected error; details are in its terminal.', [
    'Try again; if it keeps happening, report it with the terminal output.',
  ]);
}
