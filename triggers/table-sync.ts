/**
 * Table sync (FULL_TABLE, and the initial copy before table-changes-cdc): every row of the chosen
 * tables in keyset batches, in primary key order. Memory is one batch; the state holds the keyset
 * cursor, so a killed sync resumes after the last handled batch (repeating at most that batch,
 * with the same ids); every event says how far the run is.
 */
import configSchema from '../schemas/triggers/table-sync.config.schema.json' with { type: 'json' };
import eventSchema from '../schemas/triggers/table-sync.event.schema.json' with { type: 'json' };
import type { TableSyncConfig, TableSyncEvent } from '../schemas/types.gen.js';
import { defineTrigger } from './definition.js';
import { estimatedRows, readBatch, type SyncPosition } from './sync/keyset.js';

export const tableSync = defineTrigger<TableSyncConfig, TableSyncEvent, SyncPosition>({
  key: 'table-sync',
  name: 'Table Sync',
  description:
    'Copies every row of chosen tables, in primary key order and in batches, then stops: a full-table sync (FULL_TABLE) or the ' +
    'initial copy before Table Changes (CDC). Reads with SELECT only; resumable from its state.',
  config: configSchema,
  event: eventSchema,
  example: {
    setup: ['CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10,2) NOT NULL)'],
    config: { tables: ['orders'] },
    event: {
      id: 'b2Xk9m3dXn6tq1uS2p9GqA:[1]',
      op: 'READ',
      schema: 'public',
      table: 'orders',
      key: { id: 1 },
      new: { id: 1, customer: 'Ada', total: '42.50' },
      progress: { rowsDone: 1, estimatedTotal: 1200 },
    },
  },
  guarantees: [
    'Every row that exists for the whole run is delivered: batches follow the primary key (keyset, `WHERE key > cursor ORDER BY key LIMIT batchSize`), so rows are never skipped by offsets shifting under concurrent writes.',
    'Resumable: the state holds the table and the last key handled; a killed sync resumes there, repeating at most one batch, with the same ids.',
    'Bounded: one batch in memory, one indexed range scan per poll.',
    'Each batch is a snapshot of its own moment: a row changed during the run is read as it was when its batch was read. For a copy that stays exact, activate Table Changes (CDC) before the sync and stream from its first state after it: every change since the slot was created follows, in commit order (no gap; a row may be followed by changes older than the version the sync read, which leave the copy equal to the table once applied in order).',
    'Progress on every event: rows done and the planner\'s estimate of the total.',
  ],
  privileges: ['GRANT USAGE ON SCHEMA <schema> TO <role>;', 'GRANT SELECT ON <schema>.<table> TO <role>;'],
  identity: ['tables'],
  installs: false,
  async start(args) {
    return { run: new Date().toISOString(), table: 0, after: null, rowsDone: 0, estimatedTotal: await estimatedRows(args.connection, args.config.tables) };
  },
  poll: (args, position) => readBatch(args, position),
  async sample(args) {
    const position = { run: 'sample', table: 0, after: null, rowsDone: 0, estimatedTotal: await estimatedRows(args.connection, args.config.tables) };
    const batch = await readBatch({ ...args, config: { ...args.config, batchSize: 3 } }, position);
    return { events: batch.events, warnings: [], notes: [`About ${position.estimatedTotal} rows to copy.`] };
  },
});
