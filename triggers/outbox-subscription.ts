/**
 * Push delivery for an outbox (row-changes; schema-changes with an event trigger). A LISTEN session (connection/listen.ts) is woken by the
 * trigger's NOTIFY. Only the subscriber holding the lease reads, so with several workers each change
 * is handled by one of them. The lease is a row only pg-actions' roles can write (the cursor row,
 * outbox-sql.ts), not an advisory lock whose key any role could compute and hold (REVIEW7 R137): the
 * holder renews it from its LISTEN session; a standby takes it over within about a second once that
 * session's backend is gone, or once the lease lapses unrenewed (LEASE_SECONDS). Every read checks
 * the lease under the cursor row's lock, so a holder that lost it without noticing neither
 * acknowledges nor delivers again. Reading always starts after the position acknowledged in the
 * database, so a new holder (or a reconnect) catches up with everything, in position order. A batch
 * whose handler fails is read again, with the same ids.
 */
import { randomUUID } from 'node:crypto';
import { isPgActionsError } from '../connection/index.js';
import { openListenSession, type ListenSession } from '../connection/listen.js';
import { inTransaction } from '../connection/session.js';
import { settleWithin } from './close-wait.js';
import type { Deliver, RunningSubscription } from './definition.js';
import { checkOwner, readOutbox, type OutboxKind, type OutboxPosition, type Settled } from './outbox-reader.js';
import { LEASE_LOST_SQLSTATE, leaseUpgradeStatements, namesOf, ownerTag, releaseLeaseSql, renewLeaseSql, takeLeaseSql } from './outbox-sql.js';

/** How long a lease outlives its last renewal (a holder gone without its backend ending), and how often it is renewed. */
export const LEASE_SECONDS = 15;
const RENEW_MS = 3000;
/** SQLSTATE 42703: an activation made before the lease existed (its cursor has no lease columns). */
const UNDEFINED_COLUMN = '42703';
const STANDBY_RETRY_MS = 1000;
const RETRY_MAX_MS = 30_000;

export function subscribeOutbox<Event>(
  connection: unknown,
  fingerprint: string,
  config: Settled & { intervalSeconds: number },
  start: OutboxPosition,
  deliver: Deliver<Event, OutboxPosition>,
  onError: (error: unknown) => void,
  kind: OutboxKind<Event>,
): RunningSubscription {
  const names = namesOf(fingerprint, kind.prefix);
  const me = randomUUID();
  const lease = { take: takeLeaseSql(names), renew: renewLeaseSql(names), release: releaseLeaseSql(names) };
  let after = start.after;
  let leader = false;
  let closed = false;
  let failures = 0;
  let upgradeReported = false;
  let wake: (() => void) | undefined;
  let nudged = false; // a NOTIFY that came while reading: read again instead of sleeping
  let timer: NodeJS.Timeout | undefined;
  const nudge = () => {
    nudged = true;
    wake?.();
  };
  const sleep = (ms: number): Promise<void> => {
    if (nudged) {
      nudged = false; // one nudge, one immediate wake-up
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
    }).finally(() => clearTimeout(timer));
  };

  // An activation made by an older version: add the lease to it (the activating role owns it), once.
  const upgrade = () =>
    inTransaction(connection, async (query) => {
      for (const statement of leaseUpgradeStatements(names, `'${ownerTag(fingerprint, kind.trigger as 'row-changes' | 'schema-changes')}'`)) await query(statement);
    }, { name: `${kind.trigger} subscription (adding the lease to an activation made by an older version)`, again: 'subscribe again, or activate the trigger again' });
  const tryLead = async (session: ListenSession) => {
    await checkOwner(connection, kind.trigger); // before the lease's UPDATE names the cursor (REVIEW9 R156)
    try {
      leader = (await session.query(lease.take, [me, LEASE_SECONDS])).length > 0;
    } catch (error) {
      leader = false;
      if (!isPgActionsError(error) || error.sqlstate !== UNDEFINED_COLUMN) throw error;
      await upgrade().catch((failure: unknown) => {
        if (!upgradeReported) onError(failure);
        upgradeReported = true;
        throw failure;
      });
      leader = (await session.query(lease.take, [me, LEASE_SECONDS])).length > 0;
    }
  };
  let renewing = false;
  const renew = async () => {
    if (!leader || renewing || !session.connected) return;
    renewing = true;
    try {
      if ((await session.query(lease.renew, [me, LEASE_SECONDS])).length === 0) leader = false; // taken over
    } catch {
      // the session is down (onDisconnect) or busy: the next renewal, or the lapse, decides
    } finally {
      renewing = false;
    }
  };
  const renewal = setInterval(() => void renew(), RENEW_MS);
  renewal.unref();
  const session = openListenSession(connection, {
    channels: [names.trigger],
    onNotification: nudge,
    onConnect: async (s) => {
      leader = false;
      await tryLead(s).catch(() => undefined); // the standby loop tries again
      nudge();
    },
    onDisconnect: (error) => {
      leader = false;
      onError(error);
      nudge();
    },
  });
  const lost = (error: unknown) => isPgActionsError(error) && error.sqlstate === LEASE_LOST_SQLSTATE;

  const loop = async () => {
    while (!closed) {
      if (!leader) {
        let refused = false;
        if (session.connected) {
          await tryLead(session).catch((error: unknown) => {
            refused = isPgActionsError(error) && error.code === 'PERMISSION_DENIED'; // schema-owner.ts: reported, retried with back-off
            if (refused) onError(error);
          });
        }
        if (!leader) await sleep(refused ? Math.min(RETRY_MAX_MS, 250 * 2 ** failures++) : STANDBY_RETRY_MS);
        continue;
      }
      try {
        nudged = false;
        const batch = await readOutbox(connection, fingerprint, config, after, kind, me);
        if (closed) return;
        if (batch.events.length === 0) {
          after = batch.position.after;
          failures = 0;
          await sleep(config.intervalSeconds * 1000);
          continue;
        }
        await deliver(batch);
        after = batch.position.after; // acknowledged in the database by the next read
        failures = 0;
      } catch (error) {
        if (closed) return;
        if (lost(error)) {
          leader = false; // another subscriber holds the lease now: stand by
          continue;
        }
        onError(error);
        await sleep(Math.min(RETRY_MAX_MS, 250 * 2 ** failures++));
      }
    }
  };
  const running = loop();
  return {
    async close() {
      closed = true;
      nudge();
      await settleWithin(running);
      clearInterval(renewal);
      // Acknowledge the last handled batch before the lease goes (the next holder starts after it);
      // a batch whose handler is still running is not acknowledged, so it is delivered again.
      if (leader) {
        await readOutbox(connection, fingerprint, { ...config, batchSize: 1 }, after, kind, me).catch(() => undefined);
        if (session.connected) await session.query(lease.release, [me]).catch(() => undefined);
      }
      await session.close();
    },
  };
}
