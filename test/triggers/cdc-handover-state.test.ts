/**
 * A table-changes-cdc state's handover part is data the host stored, never SQL (REVIEW4 R37): key
 * types that are not a type name are refused (TRIGGER_STATE_INVALID) before anything runs; the types
 * a state really holds (as table-sync records them, with typmods) still place keys in their batches.
 */
import { activateTrigger, deactivateTrigger, pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useReplicationServer } from '../harness/replication-server.js';
import { failureOf } from './helpers.js';

const server = useReplicationServer();
beforeAll(() => server.sql('CREATE DATABASE handover_state'), 60_000);

const sql = (text: string) => server.sql(text, undefined, 'handover_state');

test('handover key types from the state: SQL in them is refused without running; real type names place the keys', async () => {
  await sql('CREATE TABLE h (id numeric(10, 2), code character varying(8), v text, PRIMARY KEY (id, code))');
  const cdc = { connection: server.config({ database: 'handover_state' }), config: { tables: ['h'], heartbeatSeconds: 0 } };
  await activateTrigger('table-changes-cdc', cdc);
  try {
    const start = (await pollTrigger('table-changes-cdc', cdc)).state as TriggerState & { position: Record<string, unknown> };
    await sql("INSERT INTO h VALUES (1, 'a', 'x'), (20, 'b', 'y')");
    const until = (await sql('SELECT pg_current_wal_lsn()::text AS l'))[0]!.l as string;
    // two batches split at (10, 'z'): both inserts are newer than either batch's snapshot ('1:1:'), so both are delivered
    const withTypes = (types: unknown[]) => ({
      ...start,
      position: { ...start.position, handover: { until, tables: [{ schema: 'public', table: 'h', key: ['id', 'code'], types, batches: [[[10, 'z'], '1:1:'], [null, '1:1:']] }] } },
    });
    for (const injected of [['int + (SELECT 0 FROM pg_sleep(3))', 'text'], ['numeric', 'text) OR (true'], [1, 'text']]) {
      const started = Date.now();
      const refused = await failureOf(pollTrigger('table-changes-cdc', { ...cdc, state: withTypes(injected) }));
      expect(refused.code).toBe('TRIGGER_STATE_INVALID');
      expect(Date.now() - started).toBeLessThan(3000); // nothing of it ran
    }
    // a trailing comment parses as the type alone: what is spliced is the server's name for it, not the text
    const polled = await pollTrigger('table-changes-cdc', { ...cdc, state: withTypes(['numeric(10,2)', 'character varying(8) --']) });
    expect(polled.events.map((e) => (e as unknown as { new: unknown }).new)).toEqual([{ id: '1.00', code: 'a', v: 'x' }, { id: '20.00', code: 'b', v: 'y' }]);
  } finally {
    await deactivateTrigger('table-changes-cdc', cdc);
  }
});
