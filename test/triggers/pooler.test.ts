/**
 * listen and row-changes subscriptions need a server session of their own: behind a real
 * PgBouncer in transaction pooling they are refused with INVALID_INPUT naming connection.pooler
 * (LISTEN would stay on a backend other clients use, and two subscribers could both get the
 * lease); in session pooling they work.
 */
import pg from 'pg';
import { closeAll, type ConnectionConfig } from '../../connection/index.js';
import { activateTrigger, listActivations, removeActivation, subscribeTrigger, type TriggerEvent } from '../../triggers/index.js';
import { serverLogin } from '../harness/db.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { describeWithPgBouncer, startPgBouncer, type PgBouncer, usePgBouncer } from '../harness/pgbouncer.js';
import { failureOf, waitFor } from './helpers.js';

describeWithPgBouncer('listening sessions behind PgBouncer', () => {
  const db = useTestDatabase('tpooler');
  beforeAll(async () => {
    await db.sql('CREATE TABLE orders (id serial PRIMARY KEY, customer text)');
  });

  describe('transaction pooling', () => {
    let bouncer: PgBouncer;
    let connection: ConnectionConfig;
    beforeAll(async () => {
      bouncer = await startPgBouncer({ server: serverLogin(), mode: 'transaction', poolSize: 2 });
      connection = bouncer.config(db.name, { pooler: 'transaction' });
    });
    afterAll(async () => {
      await closeAll();
      await bouncer.dispose();
    });

    test('listen is refused, naming connection.pooler and the fix; no LISTEN is left on a server backend', async () => {
      const error = await failureOf(subscribeTrigger('listen', { connection, config: { channel: 'jobs' } }, () => undefined));
      expect(error.code).toBe('INVALID_INPUT');
      expect(error.message).toContain('connection.pooler');
      expect(error.fixes.join(' ')).toMatch(/session-mode|direct/);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const listening = await db.sql("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'");
      expect(listening).toEqual([]);
    });

    test('a row-changes subscription is refused the same way (its lease would not be exclusive)', async () => {
      await activateTrigger('row-changes', { connection: db.config, config: { tables: ['orders'] } });
      try {
        const error = await failureOf(subscribeTrigger('row-changes', { connection, config: { tables: ['orders'] } }, () => undefined));
        expect(error.code).toBe('INVALID_INPUT');
        expect(error.message).toContain('connection.pooler');
      } finally {
        for (const a of await listActivations(db.config)) await removeActivation(db.config, a.fingerprint);
      }
    });
  });

  describe('session pooling', () => {
    const bouncer = usePgBouncer({ server: serverLogin(), mode: 'session', poolSize: 3 });

    test('listen works', async () => {
      const seen: TriggerEvent[] = [];
      const subscription = await subscribeTrigger('listen', { connection: bouncer.config(db.name, { pooler: 'session' }), config: { channel: 'jobs' } }, (events) => {
        seen.push(...events);
      });
      const sender = new pg.Client({ ...db.config, ssl: false });
      await sender.connect();
      try {
        await waitFor(async () => {
          await sender.query("SELECT pg_notify('jobs', 'hello')");
          return seen.length > 0;
        }, 'a notification through session pooling');
      } finally {
        await sender.end();
        await subscription.close();
      }
    });
  });
});
