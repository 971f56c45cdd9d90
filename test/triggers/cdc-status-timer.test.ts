/**
 * connection/replication.ts: a WAL stream's status timer (the standby status update every statusIntervalMs) is
 * stopped when the stream ends. It is unref'd and does nothing once the stream is over, so only the timer calls show a
 * leftover one: each ended stream would keep its session's client and handlers reachable for good (one per reconnection).
 */
import { jest } from '@jest/globals';
import { closeAll } from '../../connection/index.js';
import { openReplicationSession } from '../../connection/replication.js';
import { cleanUpInOrder } from '../harness/clean-up.js';
import type { ReplicationServer } from '../harness/replication-server.js';
import { sharedOrOwnReplicationServer } from '../harness/shared-replication-server.js';
import { parseLsn } from '../../triggers/replication/lsn.js';
import { waitFor } from './helpers.js';

let server: ReplicationServer;
let starting: Promise<ReplicationServer> | undefined;
beforeAll(async () => {
  starting = sharedOrOwnReplicationServer({ wal_sender_timeout: '2s' }, 'acktm');
  server = await starting;
}, 180_000);
afterAll(() => cleanUpInOrder(closeAll, async () => (await starting?.catch(() => undefined))?.stop()), 60_000);

test('the status timer of a stream is cleared when the stream ends', async () => {
  const name = `acktm_${Date.now().toString(36)}`;
  await server.sql(`CREATE DATABASE ${name}`);
  const sql = (text: string) => server.sql(text, [], name);
  await sql('CREATE TABLE items (id int PRIMARY KEY)');
  await sql(`CREATE PUBLICATION ${name} FOR TABLE items`);
  const [{ lsn }] = (await sql(`SELECT lsn::text FROM pg_create_logical_replication_slot('${name}', 'pgoutput')`)) as [{ lsn: string }];
  const session = await openReplicationSession(server.config({ database: name }));
  const setIntervalSpy = jest.spyOn(globalThis, 'setInterval');
  const clearIntervalSpy = jest.spyOn(globalThis, 'clearInterval');
  try {
    let reported = 0;
    const stream = session.stream(
      { slot: name, startLsn: lsn, options: { proto_version: '1', publication_names: name }, statusIntervalMs: 250 },
      { onData: () => {}, onKeepalive: () => {}, flushed: () => (reported++, parseLsn(lsn)) },
    );
    const at = setIntervalSpy.mock.calls.findIndex((call) => call[1] === 250);
    expect(at).toBeGreaterThanOrEqual(0);
    const timer = setIntervalSpy.mock.results[at]!.value;
    await waitFor(() => reported >= 2, 'two status updates from the timer');
    await session.close();
    await stream.done.catch(() => undefined);
    await waitFor(() => clearIntervalSpy.mock.calls.some((call) => call[0] === timer), 'the status timer cleared', 5000);
  } finally {
    setIntervalSpy.mockRestore();
    clearIntervalSpy.mockRestore();
  }
}, 60_000);
