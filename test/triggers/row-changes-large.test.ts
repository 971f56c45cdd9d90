/**
 * row-changes never stalls on a large result: a statement whose events together pass the
 * connection's maxResultBytes is read in smaller batches, and one event larger than the cap on
 * its own (an UPDATE of a wide row) is still delivered, up to MAX_EVENT_BYTES.
 */
import { activateTrigger, listActivations, removeActivation } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { poll } from './helpers.js';

const db = useTestDatabase('rclarge', {
  beforeDrop: async () => {
    for (const activation of await listActivations(db.config)) await removeActivation(db.config, activation.fingerprint);
  },
});

beforeAll(async () => {
  await db.sql('CREATE TABLE docs (id int PRIMARY KEY, body text)');
});

// A small cap keeps the data small: 64 kB of parsed result per read.
const connection = () => ({ ...db.config, maxResultBytes: 64 * 1024 });

test('one statement writing more than maxResultBytes of rows is delivered whole, in smaller batches, in order', async () => {
  const config = { tables: ['docs'], batchSize: 100 };
  await activateTrigger('row-changes', { connection: connection(), config });
  let { state } = await poll('row-changes', { connection: connection(), config });
  await db.sql(`INSERT INTO docs SELECT g, repeat(md5(g::text), 125) FROM generate_series(1, 60) g`); // 60 × 4 kB
  const ids: unknown[] = [];
  for (let reads = 0; ids.length < 60 && reads < 60; reads++) {
    const batch = await poll('row-changes', { connection: connection(), config, state });
    expect(batch.events.length).toBeGreaterThan(0);
    expect(batch.events.length).toBeLessThan(60); // the whole statement does not fit one read
    ids.push(...batch.events.map((e) => (e.key as { id: number }).id));
    state = batch.state;
  }
  expect(ids).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  expect((await poll('row-changes', { connection: connection(), config, state })).events).toEqual([]);
  await db.sql('DELETE FROM docs');
});

test('one event larger than maxResultBytes by itself (a wide row, updated) is delivered at batchSize 1', async () => {
  const config = { tables: ['docs'], batchSize: 1, name: 'one' };
  await activateTrigger('row-changes', { connection: connection(), config });
  let { state } = await poll('row-changes', { connection: connection(), config });
  await db.sql(`INSERT INTO docs VALUES (1, repeat('x', 100000))`);
  await db.sql(`UPDATE docs SET body = body || 'y'`);
  const seen: string[] = [];
  for (let reads = 0; reads < 2; reads++) {
    const batch = await poll('row-changes', { connection: connection(), config, state });
    for (const event of batch.events) {
      seen.push(`${String(event.op)} ${((event.new as { body: string }).body).length}`);
    }
    state = batch.state;
  }
  expect(seen).toEqual(['INSERT 100000', 'UPDATE 100001']);
});
