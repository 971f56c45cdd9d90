/**
 * connection/replication.ts's answer to a keepalive that asks for one: a WAL stream whose status timer never fires
 * (statusIntervalMs of an hour) stays open on those replies alone, past three times the server's wal_sender_timeout;
 * without them the walsender ends the connection ("terminating walsender process due to replication timeout"). And it
 * answers only those: a reply to every keepalive starts a ping-pong with the walsender.
 * subscribeTrigger's 1 s status timer would hide a missing reply (cdc-ack.test), so this drives the stream directly.
 */
import { closeAll } from '../../connection/index.js';
import { openReplicationSession, type ReplicationSession } from '../../connection/replication.js';
import { parseLsn } from '../../triggers/replication/lsn.js';
import { cleanUpInOrder } from '../harness/clean-up.js';
import type { ReplicationServer } from '../harness/replication-server.js';
import { sharedOrOwnReplicationServer } from '../harness/shared-replication-server.js';
import { waitFor } from './helpers.js';

let server: ReplicationServer;
let starting: Promise<ReplicationServer> | undefined;
let session: ReplicationSession | undefined;
beforeAll(async () => {
  starting = sharedOrOwnReplicationServer({ wal_sender_timeout: '2s' }, 'ackreply');
  server = await starting;
}, 180_000);
afterAll(() => cleanUpInOrder(() => session?.close(), closeAll, async () => (await starting?.catch(() => undefined))?.stop()), 60_000);

test('a stream with no status timer stays open past wal_sender_timeout by answering the keepalives that ask for a reply', async () => {
  const name = `ackreply_${Date.now().toString(36)}`;
  await server.sql(`CREATE DATABASE ${name}`);
  const sql = (text: string) => server.sql(text, [], name);
  await sql('CREATE TABLE items (id int PRIMARY KEY)');
  await sql(`CREATE PUBLICATION ${name} FOR TABLE items`);
  const [{ lsn }] = (await sql(`SELECT lsn::text FROM pg_create_logical_replication_slot('${name}', 'pgoutput')`)) as [{ lsn: string }];
  session = await openReplicationSession(server.config({ database: name }));
  let keepalives = 0;
  let ended: unknown = 'still open';
  const stream = session.stream(
    { slot: name, startLsn: lsn, options: { proto_version: '1', publication_names: name }, statusIntervalMs: 3_600_000 },
    { onData: () => {}, onKeepalive: () => void keepalives++, flushed: () => parseLsn(lsn) },
  );
  stream.done.then(() => (ended = 'ended'), (error: unknown) => (ended = error));
  const walsender = async () => (await sql(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = '${name}'`))[0]?.active_pid as number | null;
  const pid = await waitFor(walsender, 'the walsender');
  // WAL past the reported position (in another database): the walsender has sent more than flushed() reports.
  await server.sql('CREATE TABLE IF NOT EXISTS ackreply_wal (x int)');
  await server.sql('INSERT INTO ackreply_wal SELECT generate_series(1, 1000)');
  // 6 s: three times wal_sender_timeout, in which the server asks for a reply at least twice.
  const until = Date.now() + 6000;
  while (Date.now() < until) {
    expect(ended).toBe('still open');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  expect(ended).toBe('still open');
  expect(await walsender()).toBe(pid);
  expect(keepalives).toBeGreaterThanOrEqual(2);
  // ... and only those: while flushed() is behind what the walsender sent, it answers any reply with a keepalive, so
  // replying to every keepalive is a ping-pong (2,800 to 17,000 in these 6 s by hand, against about 25).
  expect(keepalives).toBeLessThan(400);
  // The replies reached the server: its last one is recent, and reports the position flushed() gave.
  const [row] = await sql(`SELECT flush_lsn::text AS f, extract(epoch FROM now() - reply_time) AS age FROM pg_stat_replication WHERE pid = ${pid}`);
  expect(row!.f).toBe(lsn);
  expect(Number(row!.age)).toBeLessThan(3);
}, 60_000);
