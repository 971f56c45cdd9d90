/**
 * The Trigger panel's server side. An activation is kept in this process's memory (one
 * playground, one user): its trigger, config, connection and state never go to the page, which
 * only holds the session id. While the page has the session's event stream open (Server-Sent
 * Events), a subscription runs and each batch is acknowledged once its lines are written to the
 * page's socket; the state moves with it, so a reconnecting page resumes where it left off. The
 * subscription is closed when the page goes away, on Deactivate, and when the playground stops,
 * which also deactivates whatever is still active (nothing of the playground's is left behind).
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import {
  activateTrigger, deactivateTrigger, findTrigger, isPgActionsError, subscribeTrigger, type TriggerState, type TriggerSubscription,
} from '../index.js';
import { internalError, invalidInput, notFound } from './http-errors.js';
import { COMMON_HEADERS } from './http.js';

/** A local page has little reason for more; each one may hold a database session. */
export const MAX_SESSIONS = 10;
/** A comment line this often: a page that went away without closing is noticed by the failed write. */
const HEARTBEAT_MS = 15_000;

export interface TriggerSessionView {
  id: string;
  trigger: string;
  config: Record<string, unknown>;
  /** A page has the event stream open (a subscription is running). */
  streaming: boolean;
  /** Events handed to the page (and acknowledged) so far. */
  delivered: number;
}

export interface Session {
  id: string;
  key: string;
  /** Its activation (trigger, config, connection) as given, before activating filled in defaults. */
  activation: string;
  connection: unknown;
  config: Record<string, unknown>;
  state: TriggerState | undefined;
  delivered: number;
  stream: EventStream | undefined;
  /** The last stream's stopping: a new stream's subscription starts only once the old one has let go. */
  stopped: Promise<void>;
  /** Deactivate has begun: no new stream may start (a reconnecting page would outlive the activation). */
  deactivating: boolean;
}

interface EventStream {
  /** With a reason (another page opened the session's stream; it was deactivated) the page is told, and does not reconnect. */
  stop(reason?: 'replaced' | 'deactivated'): Promise<void>;
}

export class TriggerSessions {
  private readonly sessions = new Map<string, Session>();
  /**
   * Per activation (trigger, config, connection): its Activates and Deactivates, one after the other.
   * Run together, an install and a removal of the same trigger land in either order: the trigger was
   * left installed with no session to remove it, or the page was given a session already removed
   * (REVIEW3 R19, REVIEW4 R28).
   */
  private readonly chains = new Map<string, Promise<unknown>>();

  /** `logUnexpected` gets errors that are not PgActionsErrors (the page is told only that one happened). */
  constructor(private readonly logUnexpected: (error: unknown) => void) {}

  list(): TriggerSessionView[] {
    return [...this.sessions.values()].map(view);
  }

  get(id: string): Session {
    const session = this.sessions.get(id);
    if (!session || session.deactivating) throw notFound(`/api/trigger-sessions/${id} (no active trigger with this id; activate it again)`);
    return session;
  }

  /** Activates (installs what the trigger needs) and remembers it; the same activation again returns the same session. */
  async activate(key: string, connection: unknown, config: Record<string, unknown>): Promise<TriggerSessionView & { activated: boolean }> {
    const activation = JSON.stringify([key, config, connection]);
    return this.inTurn(activation, async () => {
      // Every earlier Deactivate of this activation has finished: a session still here is live (or its removal failed).
      const same = [...this.sessions.values()].find((s) => s.activation === activation);
      if (!same && this.sessions.size >= MAX_SESSIONS) {
        throw invalidInput(`at most ${MAX_SESSIONS} triggers may be active at once in the playground: deactivate one first`);
      }
      const { activated } = await activateTrigger(key, { connection, config });
      if (same) return { ...view(same), activated };
      const session: Session = { id: randomUUID(), key, activation, connection, config, state: undefined, delivered: 0, stream: undefined, stopped: Promise.resolve(), deactivating: false };
      this.sessions.set(session.id, session);
      return { ...view(session), activated };
    });
  }

  /** Stops the stream's subscription, then removes what activation installed. */
  async deactivate(id: string): Promise<{ deactivated: boolean }> {
    const session = this.get(id);
    // Marked before the first await: a stream (re)opened from now on is refused, not left running.
    session.deactivating = true;
    return this.inTurn(session.activation, async () => {
      try {
        await session.stream?.stop('deactivated');
        const result = await deactivateTrigger(session.key, { connection: session.connection, config: session.config });
        this.sessions.delete(id);
        return result;
      } finally {
        session.deactivating = false; // still listed only if deactivation failed: it may be tried again
      }
    });
  }

  /** Runs `work` after every earlier Activate and Deactivate of the same activation (failed or not). */
  private inTurn<T>(activation: string, work: () => Promise<T>): Promise<T> {
    const turn = (this.chains.get(activation) ?? Promise.resolve()).then(work, work);
    const settled = turn.then(() => undefined, () => undefined);
    this.chains.set(activation, settled);
    void settled.then(() => {
      if (this.chains.get(activation) === settled) this.chains.delete(activation);
    });
    return turn;
  }

  /** Takes over `res` as the session's event stream; a stream already open for it is closed first. */
  openStream(id: string, res: ServerResponse): void {
    const session = this.get(id);
    const previous = session.stream?.stop('replaced') ?? session.stopped;
    const stream = startStream(session, res, previous, (error) => this.pageError(error));
    session.stream = stream;
    res.on('close', () => {
      session.stopped = stream.stop();
      if (session.stream === stream) session.stream = undefined;
    });
  }

  /** On shutdown: every stream stopped, every activation removed (best effort, each on its own). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.sessions.keys()].map((id) => this.deactivate(id).catch((error: unknown) => this.logUnexpected(error))));
  }

  private pageError(error: unknown): unknown {
    if (isPgActionsError(error)) return error;
    this.logUnexpected(error);
    return internalError();
  }
}

function startStream(session: Session, res: ServerResponse, previousStopped: Promise<void>, pageError: (error: unknown) => unknown): EventStream {
  let stopping: Promise<void> | undefined;
  const closed = new Promise<never>((_, reject) => res.once('close', () => reject(new Error('the page closed the event stream'))));
  closed.catch(() => undefined);
  const send = (text: string) =>
    Promise.race([
      closed,
      new Promise<void>((resolve, reject) => {
        if (res.destroyed || res.writableEnded) return reject(new Error('the page closed the event stream'));
        res.write(text, (error) => (error ? reject(error) : resolve()));
      }),
    ]);
  const message = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

  res.writeHead(200, { ...COMMON_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', 'X-Accel-Buffering': 'no' });
  res.write('retry: 2000\n\n');
  const heartbeat = setInterval(() => res.write(': still here\n\n'), HEARTBEAT_MS);

  const started = (async (): Promise<TriggerSubscription | undefined> => {
    await previousStopped;
    try {
      const subscription = await subscribeTrigger(
        session.key,
        {
          connection: session.connection,
          config: session.config,
          state: session.state,
          onState: (state) => {
            session.state = state;
          },
          onError: (error) => void send(message('problem', { error: pageError(error) })).catch(() => undefined),
        },
        // The ack: resolves once the events' lines are written to the page's socket.
        async (events) => {
          await send(events.map((event) => message('trigger', event)).join(''));
          session.delivered += events.length;
        },
      );
      session.state ??= subscription.state; // a reconnecting page resumes here, not at "now" again
      void send(message('ready', view(session))).catch(() => undefined);
      return subscription;
    } catch (error) {
      await send(message('failed', { error: pageError(error) })).catch(() => undefined);
      res.end();
      return undefined;
    }
  })();

  return {
    stop: (reason) =>
      (stopping ??= (async () => {
        clearInterval(heartbeat);
        if (!res.writableEnded) res.end(reason ? message(reason, {}) : undefined);
        const subscription = await started;
        await subscription?.close();
      })()),
  };
}

/** What the page may see of a session: no connection, no state. */
function view(session: Session): TriggerSessionView {
  return { id: session.id, trigger: session.key, config: session.config, streaming: session.stream !== undefined, delivered: session.delivered };
}

/** The table a "make a change" request means: the one it names (among the trigger's), or the trigger's first. */
export function tableOf(session: { key: string; config: Record<string, unknown> }, requested: unknown): string {
  const { table, tables } = session.config;
  const watched = typeof table === 'string' ? [table] : Array.isArray(tables) ? tables.filter((t): t is string => typeof t === 'string') : [];
  if (watched.length === 0) {
    throw invalidInput(`${findTrigger(session.key)?.name ?? session.key} watches no table, so there is no row to change: make the change in another tab`);
  }
  if (requested === undefined) return watched[0]!;
  if (typeof requested !== 'string' || !watched.includes(requested)) throw invalidInput(`table must be one of the trigger's tables: ${watched.join(', ')}`);
  return requested;
}
