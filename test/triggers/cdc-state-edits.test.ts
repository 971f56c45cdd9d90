/**
 * A table-changes-cdc state the host kept and something changed (REVIEW7 R132): its WAL position and
 * a handover's snapshots, batches, until and tables were read as they were, and an edited or foreign
 * state failed with a plain RangeError, TypeError or SyntaxError (no code). Each is now
 * TRIGGER_STATE_INVALID naming the field, polled and subscribed; the state as returned still works.
 */
import { activateTrigger, handoverState, pollTrigger, subscribeTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';

const pg = useReplicationServer();
let handed: TriggerState & { position: Record<string, unknown> };
const request = () => ({ connection: pg.config({ database: 'edits' }), config: { tables: ['t'], heartbeatSeconds: 0 } });

beforeAll(async () => {
  await pg.sql('CREATE DATABASE edits');
  await pg.sql('CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT i, 0 FROM generate_series(1, 5) i', [], 'edits');
  await activateTrigger('table-changes-cdc', request());
  let state: TriggerState | undefined;
  for (let polls = 0; polls < 10; polls++) {
    const result = await pollTrigger('table-sync', { connection: request().connection, config: { tables: ['t'], batchSize: 2, handover: {} }, state });
    state = result.state;
    if (result.events.length === 0) break;
  }
  handed = handoverState(state!) as typeof handed;
  await pg.sql('UPDATE t SET v = 1', [], 'edits'); // changes in the handover window: the filter reads every field
}, 120_000);

const edit = (change: (position: Record<string, unknown> & { handover: Record<string, unknown> & { tables: Record<string, unknown>[] } }) => void) => {
  const edited = JSON.parse(JSON.stringify(handed)) as typeof handed;
  change(edited.position as Parameters<typeof change>[0]);
  return edited;
};

test.each([
  ['a snapshot "x:y:"', (p: Parameters<Parameters<typeof edit>[0]>[0]) => void ((p.handover.tables[0]!.batches as unknown[][])[0]![1] = 'x:y:'), 'state.position.handover.tables'],
  ['a snapshot 42', (p: Parameters<Parameters<typeof edit>[0]>[0]) => void ((p.handover.tables[0]!.batches as unknown[][])[0]![1] = 42), 'state.position.handover.tables'],
  ['no batches', (p: Parameters<Parameters<typeof edit>[0]>[0]) => void (p.handover.tables[0]!.batches = []), 'state.position.handover.tables'],
  ['tables {}', (p: Parameters<Parameters<typeof edit>[0]>[0]) => void (p.handover.tables = {} as never), 'state.position.handover.tables'],
  ['until "zz"', (p: Parameters<Parameters<typeof edit>[0]>[0]) => void (p.handover.until = 'zz'), 'state.position.handover.until'],
  ['lsn "zz"', (p: Parameters<Parameters<typeof edit>[0]>[0]) => void (p.lsn = 'zz'), 'state.position.lsn'],
  ['lsn 5, no handover', (p: Parameters<Parameters<typeof edit>[0]>[0]) => void ((p.lsn = 5 as never), delete (p as { handover?: unknown }).handover), 'state.position.lsn'],
])('%s: TRIGGER_STATE_INVALID naming the field, polled and subscribed', async (_, change, field) => {
  const state = edit(change);
  const polled = await pollTrigger('table-changes-cdc', { ...request(), state }).then(() => undefined, (error: unknown) => error as { code?: string; problems?: string[] });
  expect(polled?.code).toBe('TRIGGER_STATE_INVALID');
  expect(polled?.problems?.join(' ')).toContain(field);
  const subscribed = await subscribeTrigger('table-changes-cdc', { ...request(), state }, async () => undefined).then(
    async (subscription) => void (await subscription.close()),
    (error: unknown) => error as { code?: string },
  );
  expect(subscribed?.code).toBe('TRIGGER_STATE_INVALID');
}, 60_000);

test('the handed-over state as returned still works', async () => {
  const { events } = await pollTrigger('table-changes-cdc', { ...request(), state: handed });
  expect(events.length).toBeGreaterThan(0);
}, 60_000);
