/**
 * subscribeTrigger (table-changes-cdc, triggers/replication/stream.ts): close() called while the subscription is still
 * opening its replication connection (right after subscribeTrigger returned) resolves, and leaves no walsender on the
 * slot: the connection opened after close() began is closed, not streamed from.
 */
import { closeAll } from '../../connection/index.js';
import { activateTrigger, pollTrigger, subscribeTrigger } from '../../triggers/index.js';
import { cleanUpInOrder } from '../harness/clean-up.js';
import type { ReplicationServer } from '../harness/replication-server.js';
import { sharedOrOwnReplicationServer } from '../harness/shared-replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
let server: ReplicationServer;
let starting: Promise<ReplicationServer> | undefined;
beforeAll(async () => {
  starting = sharedOrOwnReplicationServer({ wal_sender_timeout: '2s' }, 'ackcl');
  server = await starting;
}, 180_000);
afterAll(() => cleanUpInOrder(closeAll, async () => (await starting?.catch(() => undefined))?.stop()), 60_000);

test('close() while the replication connection is being opened resolves, and no walsender stays on the slot', async () => {
  const database = `ackcl_${Date.now().toString(36)}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string) => server.sql(text, [], database);
  await sql('CREATE TABLE items (id int PRIMARY KEY)');
  const request = { connection: server.config({ database }), config: { tables: ['items'], heartbeatSeconds: 0 } };
  await activateTrigger(KEY, request);
  const { state } = await pollTrigger(KEY, request);
  const errors: unknown[] = [];
  const subscription = await subscribeTrigger(KEY, { ...request, state, onError: (e) => void errors.push(e) }, () => undefined);
  let closed = false;
  const closing = subscription.close().then(() => (closed = true));
  await waitFor(() => closed, 'close() to resolve', 20_000);
  await closing;
  // Nothing streams from the slot afterwards (a stream opened after close() began would keep it active).
  const active = async () => (await sql('SELECT active FROM pg_replication_slots WHERE database = current_database()'))[0]!.active as boolean;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  expect(await active()).toBe(false);
  expect(errors).toEqual([]);
}, 60_000);
