/**
 * The commands that keep running or run many steps, through an SSH tunnel (--ssh-* flags, a real
 * OpenSSH server on loopback, test/harness/sshd.ts): `watch` row-changes (activation, lease,
 * polling) and listen (a LISTEN session) deliver their events with every database session
 * forwarded by sshd (each session's client end read from /proc), and keep delivering after the
 * SSH connections are cut; `serve` runs the playground's steps and `demo` its workflows through
 * the tunnel. The password comes from a variable the flag names, never argv.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createTestDatabase, type TestDatabase } from '../harness/db.js';
import { describeWithSshd, startSshd, type Sshd } from '../harness/sshd.js';
import { waitFor } from '../triggers/helpers.js';
import { databaseUrl, printedPlaygroundUrl, runCli, startCli, useCliFolder } from './cli.js';

const APP = 'watch-through-ssh';
const SERVE_APP = 'serve-through-ssh';

/**
 * The name of the process holding the client end of the loopback TCP connection from `clientPort`
 * to `serverPort` (pg_stat_activity's client_port), read from /proc: sshd for a forwarded session.
 */
function clientProcessName(clientPort: number, serverPort: number): string | undefined {
  const hex = (port: number) => `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let inode: string | undefined;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(hex(clientPort)) && fields[2]?.endsWith(hex(serverPort))) inode = fields[9];
    }
  }
  if (inode === undefined) return undefined;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone meanwhile
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

describeWithSshd('CLI watch, serve and demo through the SSH tunnel (real sshd)', () => {
  let db: TestDatabase;
  let sshd: Sshd;
  const inFolder = useCliFolder('pg-actions-watch-ssh-', {
    beforeRemove: async () => {
      await sshd?.dispose();
      await db?.drop();
    },
  });

  beforeAll(async () => {
    db = await createTestDatabase('cli_watch_ssh');
    await db.sql('CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL)');
    sshd = await startSshd();
  }, 60_000);

  const dbPort = () => Number(db.config.port);
  const tunnelFlags = () => ['--ssh-host', sshd.host, '--ssh-port', String(sshd.port), '--ssh-user', sshd.user, '--ssh-password-env', 'BASTION_PASSWORD'];
  const passwordLogins = () => (sshd.log().match(new RegExp(`Accepted password for ${sshd.user} `, 'g')) ?? []).length;
  const eventLines = (stdout: string) => stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);

  /** Every session the command holds on the database (by application_name): each one's client end belongs to sshd. */
  async function expectAllForwarded(app: string): Promise<void> {
    const owners = async () =>
      (await db.sql<{ client_port: number }>('SELECT client_port FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1', [app]))
        .map((session) => clientProcessName(session.client_port, dbPort()));
    // The backend of a connection just cut (killSessions) may linger a moment without a client: let it end.
    await waitFor(async () => (await owners()).every((name) => name !== undefined), 'sessions whose client is gone to end', 20_000).catch(() => {});
    const names = await owners();
    expect(names.length).toBeGreaterThanOrEqual(1);
    expect(names).toEqual(names.map(() => expect.stringMatching(/^sshd/)));
  }

  function watch(args: string[]) {
    const started = startCli(['watch', ...args.slice(0, 1), '--connection', databaseUrl(db, { application_name: APP }), ...tunnelFlags(), ...args.slice(1)], { BASTION_PASSWORD: sshd.password });
    const stop = async () => {
      const exited = new Promise<number | null>((resolve) => started.child.once('exit', (code) => resolve(code)));
      started.child.kill('SIGINT');
      return exited;
    };
    const until = (count: number, what: string) =>
      waitFor(() => eventLines(started.output().stdout).length >= count, what, 90_000).catch((error: Error) => {
        throw new Error(`${error.message}; stderr: ${started.output().stderr}; stdout: ${started.output().stdout}`);
      });
    return { ...started, stop, until };
  }

  test('row-changes: activation and every event through the tunnel, and still after the SSH connections are cut', async () => {
    const forwardsBefore = sshd.forwardsTo(dbPort());
    const loginsBefore = passwordLogins();
    const watcher = watch(['row-changes', '--config', '{"tables": ["orders"]}', '--state-file', inFolder('orders.state.json'), '--activate']);
    try {
      // The lease is held once the activation is done and the subscription runs.
      await waitFor(async () => (await db.sql("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%lease\\_until = pg\\_catalog.clock\\_timestamp()%'")).length > 0, 'watch to hold the lease', 90_000).catch((error: Error) => {
        throw new Error(`${error.message}; stderr: ${watcher.output().stderr}`);
      });
      await db.sql("INSERT INTO orders (customer) VALUES ('Ada'), ('Grace')");
      await watcher.until(2, 'two event lines');
      expect(eventLines(watcher.output().stdout).map((event) => [event.op, (event.new as { customer: string }).customer])).toEqual([['INSERT', 'Ada'], ['INSERT', 'Grace']]);
      expect(sshd.forwardsTo(dbPort()) - forwardsBefore).toBeGreaterThanOrEqual(1);
      expect(passwordLogins()).toBeGreaterThan(loginsBefore);
      await expectAllForwarded(APP);
      const cut = sshd.killSessions();
      expect(cut).toBeGreaterThanOrEqual(1);
      const forwardsBeforeReconnect = sshd.forwardsTo(dbPort());
      await db.sql("INSERT INTO orders (customer) VALUES ('Linus')");
      await watcher.until(3, 'the event after the SSH connection was cut');
      expect((eventLines(watcher.output().stdout)[2]!.new as { customer: string }).customer).toBe('Linus');
      expect(sshd.forwardsTo(dbPort())).toBeGreaterThan(forwardsBeforeReconnect);
      await expectAllForwarded(APP);
    } finally {
      expect(await watcher.stop()).toBe(0);
    }
  }, 240_000);

  test('listen: the LISTEN session is a channel of the SSH connection; NOTIFY arrives through it', async () => {
    const forwardsBefore = sshd.forwardsTo(dbPort());
    const watcher = watch(['listen', '--config', '{"channel": "Orders Feed"}']);
    try {
      await waitFor(async () => (await db.sql("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'")).length > 0, 'the LISTEN session', 60_000).catch((error: Error) => {
        throw new Error(`${error.message}; stderr: ${watcher.output().stderr}`);
      });
      expect(sshd.forwardsTo(dbPort()) - forwardsBefore).toBeGreaterThanOrEqual(1);
      await expectAllForwarded(APP);
      await db.sql(`SELECT pg_notify('Orders Feed', '{"id": 42}')`);
      await watcher.until(1, 'the notification');
      expect(eventLines(watcher.output().stdout)[0]).toMatchObject({ channel: 'Orders Feed', payload: { id: 42 } });
    } finally {
      expect(await watcher.stop()).toBe(0);
    }
  }, 120_000);
  test('serve: the playground runs its steps on the --connection database through the tunnel', async () => {
    const forwardsBefore = sshd.forwardsTo(dbPort());
    const serve = startCli(['serve', '--connection', databaseUrl(db, { application_name: SERVE_APP }), ...tunnelFlags(), '--port', '0'], { BASTION_PASSWORD: sshd.password });
    const exited = new Promise<number | null>((resolve) => serve.child.once('exit', (code) => resolve(code)));
    try {
      const url = await printedPlaygroundUrl(serve.output, 60_000);
      const response = await fetch(new URL('api/actions/query-rows/run', url), {
        method: 'POST',
        headers: { Authorization: `Bearer ${url.searchParams.get('token')}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ connection: 'default', input: { query: 'SELECT current_database() AS name' } }),
      });
      expect(await response.json()).toEqual({ output: { rows: [{ name: db.name }], rowCount: 1 } });
      expect(sshd.forwardsTo(dbPort()) - forwardsBefore).toBeGreaterThanOrEqual(1);
      await expectAllForwarded(SERVE_APP);
    } finally {
      serve.child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 120_000);

  test('demo: every workflow step through the tunnel', async () => {
    // Its own database: demo creates its sample tables (orders among them).
    const scratch = await createTestDatabase('cli_demo_ssh');
    try {
      const forwardsBefore = sshd.forwardsTo(dbPort());
      const demo = await runCli(['demo', '--connection', databaseUrl(scratch), ...tunnelFlags(), '--json'], { env: { BASTION_PASSWORD: sshd.password }, timeoutMs: 120_000 });
      expect({ code: demo.code, stderr: demo.stderr }).toEqual({ code: 0, stderr: '' });
      const printed = JSON.parse(demo.stdout) as { workflows: { steps: unknown[] }[] };
      expect(printed.workflows.length).toBeGreaterThanOrEqual(1);
      expect(sshd.forwardsTo(dbPort()) - forwardsBefore).toBeGreaterThanOrEqual(1);
      expect((await scratch.sql('SELECT count(*)::int AS n FROM users'))[0]).toEqual({ n: expect.any(Number) });
    } finally {
      await scratch.drop();
    }
  }, 180_000);
});
