/**
 * The playground: a local web page where a flow author tries a step end to end (connection,
 * action, fields, trigger data, live preview, run; a trigger's live events feeding that trigger
 * data), backed by a small JSON API. It binds
 * 127.0.0.1 by default, keeps the configured connection, password included, on the server, and
 * answers API calls only with its access token (access-token.ts; docs/security.md).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isPgActionsError, type ConnectionConfig } from '../index.js';
import { isLoopbackHost, newToken, presentedToken, tokenCookie, tokenMatches } from './access-token.js';
import { apiRoutes, type Route } from './api.js';
import { badRequest, HttpError, internalError, methodNotAllowed, notFound, statusOf, unauthorized } from './http-errors.js';
import { closeAfterReply, PAGE_CSP, readJson, send, sendJson } from './http.js';
import { guardRequest } from './request-guard.js';
import { SavedConnection } from './saved-connection.js';
import { triggerRoutes } from './trigger-routes.js';
import { TriggerSessions } from './trigger-sessions.js';
import { isPagePath, readPageFile } from './static-files.js';

export interface PlaygroundOptions {
  /** Prefill of the page's connection form; kept server-side, the page calls it "default". */
  connection?: ConnectionConfig;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0: any free port (read it from `url`). */
  port?: number;
  /** The token every API call must present; default a new random one. false: none (loopback hosts only). */
  token?: string | false;
}

export interface Playground {
  /** Opens the page; carries ?token=… when the playground has a token. */
  url: string;
  token?: string;
  /**
   * Closes the Trigger panel's event streams and deactivates the triggers it activated, then stops
   * accepting requests and drops open connections. Database pools stay: closeAll() ends them.
   */
  close(): Promise<void>;
}

export async function startPlayground(options: PlaygroundOptions = {}): Promise<Playground> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token === false ? undefined : (options.token ?? newToken());
  if (token === undefined && !isLoopbackHost(host)) {
    throw new Error(`The playground listens on ${host}, which other machines can reach, so it needs its access token (no --no-token).`);
  }
  const saved = new SavedConnection(options.connection);
  const secrets = () => [...saved.secrets(), ...(token ? [token] : [])];
  const sessions = new TriggerSessions((error) => logUnexpected(error, secrets()));
  const routes = [...apiRoutes(saved), ...triggerRoutes(saved, sessions)];
  const access: Access = { host, token, port: 0 };
  const server = createServer((req, res) => {
    handle(req, res, routes, access).catch((error: unknown) => fail(res, error, secrets()));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  access.port = port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${urlHost}:${port}/${token ? `?token=${token}` : ''}`,
    ...(token ? { token } : {}),
    close: async () => {
      // Event streams first (their subscriptions end), then what the Trigger panel activated.
      await sessions.closeAll();
      await new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

interface Access {
  host: string;
  token: string | undefined;
  port: number;
}

async function handle(req: IncomingMessage, res: ServerResponse, routes: readonly Route[], access: Access): Promise<void> {
  guardRequest(req, access.host);
  const method = req.method ?? 'GET';
  const url = requestUrl(req.url);
  const path = url.pathname;

  if (!path.startsWith('/api/')) {
    if (!isPagePath(path)) throw notFound(path);
    if (method !== 'GET') throw methodNotAllowed(method, ['GET']);
    const offered = url.searchParams.get('token');
    if (access.token && offered !== null) {
      if (!tokenMatches(offered, access.token)) throw unauthorized();
      // Traded for a cookie, and out of the address bar (history, screenshots, shoulder surfing).
      send(res, 303, 'text/plain; charset=utf-8', '', { Location: path, 'Set-Cookie': tokenCookie(access.port, access.token) });
      return;
    }
    const file = await readPageFile(path);
    if (!file) throw notFound(path);
    send(res, 200, file.type, file.body, { 'Content-Security-Policy': PAGE_CSP });
    return;
  }

  if (access.token && !tokenMatches(presentedToken(req, access.port), access.token)) throw unauthorized();
  const matching = routes.map((route) => ({ route, match: route.path.exec(path) })).filter((m) => m.match !== null);
  if (matching.length === 0) throw notFound(path);
  const found = matching.find((m) => m.route.method === method);
  if (!found) throw methodNotAllowed(method, matching.map((m) => m.route.method));
  const params = found.match!.slice(1);
  if (found.route.stream) return found.route.stream(req, res, params);
  const body = method === 'POST' ? await readJson(req) : undefined;
  const result = await found.route.handle!(body, params);
  sendJson(res, 200, result);
}

/** The request target as a URL; one that is not (GET //[) is the client's mistake: 400. */
function requestUrl(target: string | undefined): URL {
  try {
    return new URL(target ?? '/', 'http://playground');
  } catch {
    throw badRequest('The request target is not a valid URL path.');
  }
}

function fail(res: ServerResponse, error: unknown, secrets: readonly string[]): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (isPgActionsError(error)) {
    sendJson(res, statusOf(error), { error });
    return;
  }
  let httpError: HttpError;
  if (error instanceof HttpError) httpError = error;
  else {
    // Unexpected: details go to the terminal (without secrets), the page gets a generic error.
    logUnexpected(error, secrets);
    httpError = internalError();
  }
  const headers = closeAfterReply(httpError) ? { ...httpError.headers, Connection: 'close' } : httpError.headers;
  sendJson(res, httpError.status, { error: httpError }, headers);
}

function logUnexpected(error: unknown, secrets: readonly string[]): void {
  console.error(`playground: ${redact(error instanceof Error ? (error.stack ?? error.message) : String(error), secrets)}`);
}

function redact(text: string, secrets: readonly string[]): string {
  return secrets.reduce((out, secret) => out.split(secret).join('[redacted]'), text);
}
