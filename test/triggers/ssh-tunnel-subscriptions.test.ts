/**
 * The push triggers through an SSH tunnel (a real OpenSSH server on loopback as the bastion, a
 * wal_level=logical server of its own behind it): listen's LISTEN session and table-changes-cdc's
 * replication connection are channels of the pool's one SSH connection. Killing sshd's session
 * processes drops that connection under them: they reconnect through a new one and nothing the
 * server still has is lost (NOTIFYs sent while disconnected are gone by PostgreSQL's design;
 * changes are not). The pool sweeper must not close the tunnel under an open session.
 */
import { closeAll, type ConnectionConfig, type PgActionsError } from '../../connection/index.js';
import { closeIdlePools, openPoolCount } from '../../connection/pools.js';
import { activateTrigger, subscribeTrigger, type TriggerEvent, type TriggerSubscription } from '../../triggers/index.js';
import { parseLsn } from '../../triggers/replication/lsn.js';
import { sleep } from '../harness/failures.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { expectNoSecretIn } from '../harness/secrets.js';
import { describeWithSshd, startSshd, type Sshd } from '../harness/sshd.js';
import { waitFor } from './helpers.js';

const SWEEP_AFTER_MS = 6 * 60_000; // the sweeper closes pools unused for 5 minutes

describeWithSshd('listen and table-changes-cdc through an SSH tunnel (real sshd)', () => {
  let sshd: Sshd;
  let n = 0;
  const opened: TriggerSubscription[] = [];
  const server = useReplicationServer({
    settings: { wal_sender_timeout: '5s' },
    // the pools tunnel through sshd: closed before it goes
    beforeStop: async () => {
      await closeAll();
      await sshd?.dispose();
    },
  });

  beforeAll(async () => {
    sshd = await startSshd();
  }, 60_000);

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((subscription) => subscription.close()));
    await closeAll();
  });

  const through = (database = 'postgres', bastion = sshd): ConnectionConfig => ({
    ...server.config({ database }),
    sshTunnel: bastion.tunnel(),
    connectTimeoutMs: 5000,
  });
  const dbPort = () => server.server.port;

  interface Collector {
    events: TriggerEvent[];
    errors: unknown[];
  }

  async function subscribe(
    key: string, connection: ConnectionConfig, config: object,
    handler: (events: TriggerEvent[]) => Promise<void> | void = () => {}, errors: unknown[] = [],
  ): Promise<Collector> {
    const collector: Collector = { events: [], errors };
    const subscription = await subscribeTrigger(key, { connection, config, onError: (error) => void collector.errors.push(error) }, async (events) => {
      await handler(events);
      collector.events.push(...events);
    });
    opened.push(subscription);
    return collector;
  }

  /** The backend that runs LISTEN on `channel` (its last query), or undefined. */
  async function listener(channel: string): Promise<number | undefined> {
    const rows = await server.sql('SELECT pid FROM pg_stat_activity WHERE query = $1', [`LISTEN "${channel}"`]);
    return rows[0]?.pid as number | undefined;
  }

  const codes = (errors: unknown[]) => errors.map((error) => (error as { code?: string }).code);

  describe('listen', () => {
    test('a NOTIFY arrives through the tunnel; the tunnel dropping reconnects through a new SSH connection and listens again', async () => {
      const before = sshd.forwardsTo(dbPort());
      const got = await subscribe('listen', through(), { channel: 'via_bastion' });
      const first = await waitFor(() => listener('via_bastion'), 'LISTEN');
      // The probe of the pooled path and the listening session: both channels of one SSH connection.
      expect(sshd.forwardsTo(dbPort()) - before).toBeGreaterThanOrEqual(2);
      const [session] = sshd.sessions();
      expect(sshd.sessions()).toHaveLength(1);
      await server.sql("SELECT pg_notify('via_bastion', '{\"n\": 1}')");
      await waitFor(() => got.events.length === 1, 'the first NOTIFY');
      expect(got.events[0]).toMatchObject({ channel: 'via_bastion', payload: { n: 1 } });

      // The SSH connection drops: the LISTEN backend goes with it (it was carried by SSH), and comes back.
      expect(sshd.killSessions()).toBe(1);
      await waitFor(() => got.errors.length > 0, 'the drop reported');
      expect(codes(got.errors)[0]).toBe('CONNECTION_LOST');
      const second = await waitFor(async () => {
        const pid = await listener('via_bastion');
        return pid !== undefined && pid !== first && pid;
      }, 'LISTEN again');
      expect(second).not.toBe(first);
      expect(sshd.sessions()).toHaveLength(1);
      expect(sshd.sessions()[0]).not.toBe(session);
      await server.sql("SELECT pg_notify('via_bastion', '{\"n\": 2}')");
      await waitFor(() => got.events.length === 2, 'the NOTIFY after the reconnect');
      expect(got.events.map((event) => event.payload)).toEqual([{ n: 1 }, { n: 2 }]);
      for (const error of got.errors) expectNoSecretIn(error as PgActionsError);
    }, 60_000);

    test('a batch whose handler failed while the tunnel was down is handed over again after the reconnect', async () => {
      let calls = 0;
      const errors: unknown[] = [];
      const got = await subscribe('listen', through(), { channel: 'redeliver_ssh' }, async () => {
        if (++calls > 1) return;
        // The flow fails while the SSH connection is gone: the batch must come back.
        expect(sshd.killSessions()).toBe(1);
        await waitFor(() => errors.length > 0, 'the drop reported');
        throw new Error('flow failed while the tunnel was down');
      }, errors);
      const first = await waitFor(() => listener('redeliver_ssh'), 'LISTEN');
      await server.sql("SELECT pg_notify('redeliver_ssh', 'kept')");
      await waitFor(() => got.events.length === 1, 'the batch handed over again', 30_000);
      expect(calls).toBe(2);
      expect(got.events.map((event) => event.payload)).toEqual(['kept']);
      await waitFor(async () => {
        const pid = await listener('redeliver_ssh');
        return pid !== undefined && pid !== first;
      }, 'LISTEN again through a new SSH connection');
    }, 60_000);

    test('the SSH server gone for good: the subscription reports SSH_HOST_UNREACHABLE while it keeps retrying', async () => {
      const bastion = await startSshd();
      try {
        const got = await subscribe('listen', through('postgres', bastion), { channel: 'bastion_gone' });
        await waitFor(() => listener('bastion_gone'), 'LISTEN');
        await bastion.dispose();
        await waitFor(() => codes(got.errors).includes('SSH_HOST_UNREACHABLE'), 'SSH_HOST_UNREACHABLE', 30_000);
        expect(codes(got.errors)[0]).toBe('CONNECTION_LOST');
        const unreachable = got.errors.find((error) => (error as { code?: string }).code === 'SSH_HOST_UNREACHABLE') as Error;
        expect(unreachable.message).toBe(`Could not reach the SSH host 127.0.0.1:${bastion.port}: the connection was refused.`);
        for (const error of got.errors) expectNoSecretIn(error as PgActionsError);
      } finally {
        await bastion.dispose();
      }
    }, 60_000);

    test('the idle-pool sweeper leaves the tunnel of an open LISTEN session alone, and closes it once the subscription is closed', async () => {
      await closeAll();
      const got = await subscribe('listen', through(), { channel: 'long_quiet' });
      await waitFor(() => listener('long_quiet'), 'LISTEN');
      const [session] = sshd.sessions();
      expect(openPoolCount()).toBe(1);
      closeIdlePools(Date.now() + SWEEP_AFTER_MS);
      await sleep(500);
      expect(openPoolCount()).toBe(1);
      expect(got.errors).toEqual([]);
      expect(sshd.sessions()).toEqual([session]);
      await server.sql("SELECT pg_notify('long_quiet', 'still here')");
      await waitFor(() => got.events.length === 1, 'the NOTIFY after the sweep');
      await opened.pop()!.close();
      closeIdlePools(Date.now() + SWEEP_AFTER_MS);
      expect(openPoolCount()).toBe(0);
      await waitFor(() => sshd.sessions().length === 0, 'the SSH connection closed');
    }, 60_000);
  });

  describe('table-changes-cdc', () => {
    async function setup() {
      const database = `ssh_cdc_${++n}`;
      await server.sql(`CREATE DATABASE ${database}`);
      const sql = (text: string, values?: unknown[]) => server.sql(text, values, database);
      await sql('CREATE TABLE items (id int PRIMARY KEY, note text)');
      const connection = through(database);
      const config = { tables: ['items'], heartbeatSeconds: 0 };
      await activateTrigger('table-changes-cdc', { connection, config });
      const slot = async () =>
        (await sql("SELECT confirmed_flush_lsn::text AS lsn, active_pid FROM pg_replication_slots WHERE slot_name LIKE 'pg_actions_%' AND database = current_database()"))[0] as { lsn: string; active_pid: number | null };
      return { connection, config, sql, slot };
    }
    const keys = (events: TriggerEvent[]) => events.map((event) => (event.new as { id: number }).id);

    test('changes arrive and are acknowledged through the tunnel: the walsender is carried by SSH, the slot moves past what was handled', async () => {
      const db = await setup();
      const before = sshd.forwardsTo(dbPort());
      const got = await subscribe('table-changes-cdc', db.connection, db.config);
      const walsender = await waitFor(async () => (await db.slot()).active_pid, 'the walsender');
      // The replication connection (activateTrigger's pooled connection may serve slotState again).
      expect(sshd.forwardsTo(dbPort()) - before).toBeGreaterThanOrEqual(1);
      expect(sshd.sessions()).toHaveLength(1);
      const start = parseLsn((await db.slot()).lsn);
      await db.sql("INSERT INTO items VALUES (1, 'a'), (2, 'b')");
      await waitFor(() => got.events.length === 2, 'two inserts');
      expect(keys(got.events)).toEqual([1, 2]);
      // Acknowledged: the standby status updates went back through the channel.
      await waitFor(async () => parseLsn((await db.slot()).lsn) > start, 'the slot to move');
      expect((await db.slot()).active_pid).toBe(walsender);
      expect(got.errors).toEqual([]);
    }, 60_000);

    test('the tunnel dropping mid-stream: a reconnect through a new SSH connection; what was unhandled and what changed meanwhile arrives, at least once', async () => {
      const db = await setup();
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let calls = 0;
      const got = await subscribe('table-changes-cdc', db.connection, db.config, async (events) => {
        if (++calls === 1 && keys(events).includes(10)) await held;
      });
      const walsender = await waitFor(async () => (await db.slot()).active_pid, 'the walsender');
      const [session] = sshd.sessions();
      await db.sql("INSERT INTO items VALUES (10, 'in the handler when the tunnel drops')");
      await waitFor(() => calls === 1, 'the first batch in the handler');
      const acknowledgedBefore = parseLsn((await db.slot()).lsn);
      expect(sshd.killSessions()).toBe(1);
      await waitFor(() => got.errors.length > 0, 'the drop reported');
      expect(codes(got.errors)[0]).toBe('CONNECTION_LOST');
      await db.sql("INSERT INTO items VALUES (11, 'while the tunnel was down')");
      await waitFor(async () => {
        const pid = (await db.slot()).active_pid;
        return pid !== null && pid !== walsender;
      }, 'a new walsender', 30_000);
      expect(sshd.sessions()).toHaveLength(1);
      expect(sshd.sessions()[0]).not.toBe(session);
      // The batch held when the tunnel dropped was not acknowledged: the new stream hands it over again.
      await waitFor(() => keys(got.events).includes(10) && keys(got.events).includes(11), 'both rows', 30_000);
      expect(calls).toBeGreaterThanOrEqual(2);
      release();
      const commitOf = (key: number) => parseLsn(got.events.find((event) => keys([event])[0] === key)!.id.split(':')[0]!);
      // When the tunnel dropped, the row in the handler was not acknowledged; in the end both are.
      expect(acknowledgedBefore).toBeLessThan(commitOf(10));
      await waitFor(async () => parseLsn((await db.slot()).lsn) > commitOf(11), 'the slot to move past both');
      await waitFor(() => keys(got.events).filter((key) => key === 10).length === 2, 'the held batch to finish');
      expect(new Set(keys(got.events))).toEqual(new Set([10, 11]));
      for (const error of got.errors) expectNoSecretIn(error as PgActionsError);
    }, 90_000);

    test('the idle-pool sweeper leaves the tunnel of an open replication stream alone', async () => {
      const db = await setup();
      await closeAll();
      const got = await subscribe('table-changes-cdc', db.connection, db.config);
      const walsender = await waitFor(async () => (await db.slot()).active_pid, 'the walsender');
      const [session] = sshd.sessions();
      closeIdlePools(Date.now() + SWEEP_AFTER_MS);
      await sleep(500);
      expect(openPoolCount()).toBe(1);
      expect(sshd.sessions()).toEqual([session]);
      await db.sql("INSERT INTO items VALUES (20, 'after the sweep')");
      await waitFor(() => got.events.length === 1, 'the insert after the sweep');
      expect((await db.slot()).active_pid).toBe(walsender);
      expect(got.errors).toEqual([]);
    }, 60_000);
  });
});
