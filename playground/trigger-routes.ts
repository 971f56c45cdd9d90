/**
 * The Trigger panel's API: the triggers with their config schemas, activate, the live event
 * stream (Server-Sent Events), "make a change", deactivate. State lives in TriggerSessions.
 */
import { triggers } from '../index.js';
import type { Route } from './api.js';
import { invalidInput, notFound } from './http-errors.js';
import { asObject } from './http.js';
import { CHANGE_OPS, makeChange, sendNotification, type ChangeOp } from './sample-change.js';
import type { SavedConnection } from './saved-connection.js';
import { tableOf, type TriggerSessions } from './trigger-sessions.js';

export function triggerRoutes(saved: SavedConnection, sessions: TriggerSessions): Route[] {
  return [
    {
      method: 'GET',
      path: /^\/api\/triggers$/,
      handle: async () => ({
        triggers: triggers.map(({ key, name, description, config, example, installs, subscribe }) => ({
          key, name, description, config, example: example.config, installs, push: subscribe !== undefined,
        })),
      }),
    },
    { method: 'GET', path: /^\/api\/trigger-sessions$/, handle: async () => ({ sessions: sessions.list() }) },
    {
      method: 'POST',
      path: /^\/api\/triggers\/([^/]+)\/activate$/,
      handle: async (raw, [key]) => {
        if (!triggers.some((trigger) => trigger.key === key)) throw notFound(`/api/triggers/${key}/activate (no trigger "${key}"; see GET /api/triggers)`);
        const body = asObject(raw);
        const config = body.config ?? {};
        if (typeof config !== 'object' || config === null || Array.isArray(config)) throw invalidInput('config must be an object such as { "tables": ["orders"] }');
        return sessions.activate(key!, saved.resolve(body.connection), config as Record<string, unknown>);
      },
    },
    {
      method: 'GET',
      path: /^\/api\/trigger-sessions\/([^/]+)\/events$/,
      stream: (_req, res, [id]) => sessions.openStream(id!, res),
    },
    {
      method: 'POST',
      path: /^\/api\/trigger-sessions\/([^/]+)\/change$/,
      handle: async (raw, [id]) => {
        const session = sessions.get(id!);
        const body = asObject(raw);
        if (session.key === 'listen') return { change: await sendNotification(session.connection, String(session.config.channel)) };
        const op = body.op ?? 'insert';
        if (!CHANGE_OPS.includes(op as ChangeOp)) throw invalidInput(`op must be one of ${CHANGE_OPS.map((o) => `"${o}"`).join(', ')}`);
        const column = typeof session.config.column === 'string' ? session.config.column : undefined;
        return { change: await makeChange(session.connection, tableOf(session, body.table), op as ChangeOp, column) };
      },
    },
    { method: 'POST', path: /^\/api\/trigger-sessions\/([^/]+)\/deactivate$/, handle: async (_raw, [id]) => sessions.deactivate(id!) },
  ];
}
