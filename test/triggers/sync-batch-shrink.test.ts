/**
 * table-sync batch sizing (REVIEW4 R31): rows per batch follow the previous batch's bytes per row,
 * so where rows further on are wider the guess passes maxResultBytes. Such a batch is read again
 * with fewer rows instead of failing every poll the same way; only one row alone past the cap is
 * refused. (A small maxResultBytes keeps the table small: the same arithmetic as the default 10 MB
 * cap and 4 MiB batch with rows a hundred times wider.)
 */
import { pollTrigger, type TriggerEvent, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { failureOf } from './helpers.js';

const db = useTestDatabase('sync_shrink');
const MAX_RESULT_BYTES = 256 * 1024;

test('rows that get wider after the first batch: every batch fits, the sync completes in key order; one row past the cap is refused', async () => {
  // 1,000 rows of 5 bytes (the first batch, which sizes the next at ~400 rows for a 128 kB budget), then rows of 2 kB
  await db.sql(`CREATE TABLE grow (id int PRIMARY KEY, payload text);
    INSERT INTO grow SELECT i, 'small' FROM generate_series(1, 1000) i;
    INSERT INTO grow SELECT i, repeat('x', 2000) FROM generate_series(1001, 1600) i`);
  const request = { connection: { ...db.config, maxResultBytes: MAX_RESULT_BYTES }, config: { tables: ['grow'] } };
  const ids: unknown[] = [];
  const batches: number[] = [];
  let state: TriggerState | undefined;
  for (let poll = 0; poll < 50; poll++) {
    const result = await pollTrigger('table-sync', { ...request, state });
    if (result.events.length === 0) break;
    batches.push(result.events.length);
    ids.push(...result.events.map((e: TriggerEvent) => (e.key as { id: number }).id));
    state = result.state;
  }
  expect(ids).toEqual(Array.from({ length: 1600 }, (_, i) => i + 1));
  expect(batches[0]).toBe(1000);
  expect(batches[1]).toBeLessThan(MAX_RESULT_BYTES / 2000); // shrunk to fit, not refused

  await db.sql(`CREATE TABLE huge (id int PRIMARY KEY, payload text); INSERT INTO huge VALUES (1, repeat('y', ${MAX_RESULT_BYTES + 10}))`);
  const refused = await failureOf(pollTrigger('table-sync', { ...request, config: { tables: ['huge'] } }));
  expect(refused.code).toBe('RESULT_TOO_LARGE');
  expect(refused.message).toContain('config.tables[0]: one row');
  expect(refused.fixes.join(' ')).toContain('maxResultBytes');
});
