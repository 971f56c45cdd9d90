/**
 * The playground's JSON API: a thin layer over the package's public entry. Each route takes the
 * parsed body and returns what to send; errors are thrown and rendered in one place (server.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  actions, findAction, listColumns, listSchemas, listTables, preview, runAction, testConnection,
  type StepContext,
} from '../index.js';
import { invalidInput, notFound } from './http-errors.js';
import { asObject } from './http.js';
import type { SavedConnection } from './saved-connection.js';

export interface Route {
  method: 'GET' | 'POST';
  /** Matched against the whole path; capture groups become params. */
  path: RegExp;
  /** Returns what to send as JSON. */
  handle?(body: unknown, params: string[]): Promise<unknown>;
  /** Or takes over the response (an event stream); errors thrown before it writes are rendered as usual. */
  stream?(req: IncomingMessage, res: ServerResponse, params: string[]): void;
}

export function apiRoutes(saved: SavedConnection): Route[] {
  const connectionOf = (body: Record<string, unknown>) => saved.resolve(body.connection);

  return [
    {
      method: 'GET',
      path: /^\/api\/actions$/,
      handle: async () => ({
        actions: actions.map(({ key, name, description, input, output, example }) => ({ key, name, description, input, output, example: example.input })),
      }),
    },
    { method: 'GET', path: /^\/api\/connection$/, handle: async () => saved.describe() },
    {
      method: 'POST',
      path: /^\/api\/test-connection$/,
      handle: async (raw) => {
        const result = await testConnection(connectionOf(asObject(raw)));
        if (!result.ok) throw result.error;
        return result;
      },
    },
    {
      method: 'POST',
      path: /^\/api\/preview$/,
      handle: async (raw) => {
        const body = asObject(raw);
        if (typeof body.action !== 'string') throw invalidInput('action must be an action key such as "query-rows"');
        return preview(body.action, { connection: connectionOf(body), input: body.input, context: contextOf(body) });
      },
    },
    {
      method: 'POST',
      path: /^\/api\/actions\/([^/]+)\/run$/,
      handle: async (raw, [key]) => {
        if (!findAction(key!)) throw notFound(`/api/actions/${key}/run (no action "${key}"; see GET /api/actions)`);
        const body = asObject(raw);
        return { output: await runAction(key!, { connection: connectionOf(body), input: body.input, context: contextOf(body) }) };
      },
    },
    { method: 'POST', path: /^\/api\/schemas$/, handle: async (raw) => ({ schemas: await listSchemas(connectionOf(asObject(raw))) }) },
    {
      method: 'POST',
      path: /^\/api\/tables$/,
      handle: async (raw) => {
        const body = asObject(raw);
        if (body.schema !== undefined && typeof body.schema !== 'string') throw invalidInput('schema must be a string');
        return { tables: await listTables(connectionOf(body), body.schema === undefined ? {} : { schema: body.schema }) };
      },
    },
    {
      method: 'POST',
      path: /^\/api\/columns$/,
      handle: async (raw) => {
        const body = asObject(raw);
        if (typeof body.table !== 'string') throw invalidInput('table must be a table name such as "users" or "public.users"');
        return { columns: await listColumns(connectionOf(body), body.table) };
      },
    },
  ];
}

function contextOf(body: Record<string, unknown>): StepContext {
  const context = body.context ?? {};
  if (typeof context !== 'object' || context === null || Array.isArray(context)) {
    throw invalidInput('context must be an object such as { "trigger": { … } }');
  }
  return context as StepContext;
}
