/**
 * subscribeTrigger (table-changes-cdc, triggers/replication/stream.ts): a transaction's Commit is what hands its
 * changes over, with its own end as position. Two transactions committed back to back, read by the stream in one go, come as
 * two batches, the first with the first one's end, before the second one's commit: not held until the server's next
 * keepalive and then handed together with the position the keepalive reports (which the cdc-ack cases cannot tell
 * apart: a keepalive follows every transaction within a second on a quiet server).
 */
import { closeAll } from '../../connection/index.js';
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerSubscription } from '../../triggers/index.js';
import { parseLsn } from '../../triggers/replication/lsn.js';
import { cleanUpInOrder } from '../harness/clean-up.js';
import type { ReplicationServer } from '../harness/replication-server.js';
import { sharedOrOwnReplicationServer } from '../harness/shared-replication-server.js';
import { waitFor } from './helpers.js';

const KEY = 'table-changes-cdc';
let server: ReplicationServer;
let starting: Promise<ReplicationServer> | undefined;
let subscription: TriggerSubscription | undefined;
beforeAll(async () => {
  starting = sharedOrOwnReplicationServer({ wal_sender_timeout: '2s' }, 'ackcm');
  server = await starting;
}, 180_000);
afterAll(() => cleanUpInOrder(() => subscription?.close(), closeAll, async () => (await starting?.catch(() => undefined))?.stop()), 60_000);

test('two transactions committed back to back: two batches, each with its own end as position', async () => {
  const database = `ackcm_${Date.now().toString(36)}`;
  await server.sql(`CREATE DATABASE ${database}`);
  const sql = (text: string) => server.sql(text, [], database);
  await sql('CREATE TABLE items (id int PRIMARY KEY)');
  const request = { connection: server.config({ database }), config: { tables: ['items'], heartbeatSeconds: 0, batchSize: 10 } };
  await activateTrigger(KEY, request);
  const { state } = await pollTrigger(KEY, request);
  // Both in the WAL before the stream starts: the walsender sends them one after the other, with no keepalive between.
  await sql('BEGIN; INSERT INTO items VALUES (1); COMMIT; BEGIN; INSERT INTO items VALUES (2); COMMIT;');
  const batches: { ids: string[]; position?: bigint }[] = [];
  subscription = await subscribeTrigger(
    KEY,
    { ...request, state, onState: (s) => {
        const last = batches.at(-1);
        if (last && last.position === undefined) last.position = parseLsn((s.position as { lsn: string }).lsn);
      }, onError: () => undefined },
    (events) => void batches.push({ ids: events.map((e) => String(e.id)) }),
  );
  await waitFor(() => batches.reduce((n, b) => n + b.ids.length, 0) === 2 && batches.at(-1)!.position !== undefined, 'both handled');
  expect(batches.map((b) => b.ids.length)).toEqual([1, 1]);
  const [first, second] = batches;
  const commitOf = (id: string) => parseLsn(id.split(':')[0]!);
  expect(first!.position!).toBeGreaterThan(commitOf(first!.ids[0]!));
  expect(first!.position!).toBeLessThan(commitOf(second!.ids[0]!));
  expect(second!.position!).toBeGreaterThan(commitOf(second!.ids[0]!));
}, 60_000);
