/**
 * REVIEW8 R150: a table-changes-cdc state whose position is ahead of the server's WAL (a database
 * restored or failed over behind the host's state, or a state from another server) was taken as
 * "acknowledged": every poll advanced the slot to the WAL's end first, confirming each change written
 * since without reading it (5 inserts, 0 events). It is REPLICATION_SLOT_MISMATCH now, polled and
 * subscribed, and the slot does not move.
 */
import { activateTrigger, pollTrigger, subscribeTrigger, type TriggerState } from '../../triggers/index.js';
import { formatLsn, parseLsn } from '../../triggers/replication/lsn.js';
import { useReplicationServer } from '../harness/replication-server.js';

const KEY = 'table-changes-cdc';
const server = useReplicationServer();
const request = () => ({ connection: server.config({ database: 'future' }), config: { tables: ['t'], heartbeatSeconds: 0 } });
const sql = (text: string) => server.sql(text, [], 'future');
const confirmed = async () => ((await sql('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE database = current_database()')) as [{ lsn: string }])[0].lsn;

test("a position 256 MB ahead of the server's WAL: REPLICATION_SLOT_MISMATCH, polled and subscribed; the slot stays; the changes arrive with the state as returned", async () => {
  await server.sql('CREATE DATABASE future');
  await sql('CREATE TABLE t (id int PRIMARY KEY)');
  await activateTrigger(KEY, request());
  const { state } = await pollTrigger(KEY, request());
  const [{ wal }] = (await sql('SELECT pg_current_wal_lsn()::text AS wal')) as [{ wal: string }];
  const ahead = { ...state, position: { ...(state.position as object), lsn: formatLsn(parseLsn(wal) + 256n * 2n ** 20n) } } as TriggerState;
  await sql('INSERT INTO t VALUES (1)');
  const before = await confirmed();
  const polled = await pollTrigger(KEY, { ...request(), state: ahead }).then(() => undefined, (error: unknown) => error as { code?: string; message?: string });
  expect(polled?.code).toBe('REPLICATION_SLOT_MISMATCH');
  expect(polled?.message).toContain('ahead of the server');
  const errors: { code?: string }[] = [];
  const subscription = await subscribeTrigger(KEY, { ...request(), state: ahead, onError: (error) => errors.push(error as { code?: string }) }, async () => undefined).catch((error: unknown) => {
    errors.push(error as { code?: string });
    return undefined;
  });
  const deadline = Date.now() + 30_000;
  while (errors.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  await subscription?.close();
  expect(errors.map((error) => error.code)).toEqual(['REPLICATION_SLOT_MISMATCH']);
  await sql('INSERT INTO t VALUES (2)');
  expect(await confirmed()).toBe(before);
  const { events } = await pollTrigger(KEY, { ...request(), state });
  expect(events.map((event) => (event as unknown as { key: { id: number } }).key.id)).toEqual([1, 2]);
}, 120_000);
