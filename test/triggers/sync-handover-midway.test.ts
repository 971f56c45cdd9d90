/**
 * table-sync with `handover` records the WAL position table-changes-cdc starts filtering from
 * (`until`) only with the last batch of the last table: a state taken in the middle of the sync is
 * refused by handoverState(), so a host cannot hand over before every row is copied (the changes
 * of the rows not yet read would be filtered against snapshots that were never taken).
 */
import { activateTrigger, deactivateTrigger, handoverState, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { failureOf } from './helpers.js';

const server = useReplicationServer();
beforeAll(() => server.sql('CREATE DATABASE handover_midway'), 60_000);

test('every state before the last table\'s last batch (the first table finished included) is refused by handoverState as not complete; the last state hands over', async () => {
  await server.sql('CREATE TABLE m (id int PRIMARY KEY); INSERT INTO m SELECT generate_series(1, 5); CREATE TABLE n (id int PRIMARY KEY); INSERT INTO n SELECT generate_series(1, 3)', undefined, 'handover_midway');
  const connection = server.config({ database: 'handover_midway' });
  const cdc = { connection, config: { tables: ['m', 'n'], heartbeatSeconds: 0 } };
  await activateTrigger('table-changes-cdc', cdc);
  try {
    const sync = { connection, config: { tables: ['m', 'n'], batchSize: 2, handover: {} } };
    const states: TriggerState[] = [];
    let state: TriggerState | undefined;
    for (let polls = 0; polls < 10; polls++) {
      const result = await pollTrigger('table-sync', { ...sync, state });
      state = result.state;
      if (result.events.length === 0) break;
      states.push(state);
    }
    // m in batches of 2, 2, 1 (m done), n in 2, 1 (the sync done)
    expect(states).toHaveLength(5);
    for (const early of states.slice(0, -1)) {
      const refused = await failureOf(Promise.resolve().then(() => handoverState(early)));
      expect(refused.code).toBe('TRIGGER_STATE_INVALID');
      expect(refused.message).toContain('the sync is not complete yet');
    }
    expect(() => handoverState(states.at(-1))).not.toThrow();
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
}, 120_000);
