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
import { beginHandover } from './sync/handover.js';
import { HANDOVER_GUARANTEES } from './sync/handover-docs.js';
import { fixedFormatsGuarantee } from './time-zone-docs.js';
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
      id: 'b2Xk9m3dXn6tq1uS2p9GqA:["1"]',
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
    'Schema changes are seen at once: a table\'s shape is cached for 30 s, but each batch\'s own statement also reads the primary key\'s columns and their types, and a batch read by a key the table no longer has (retyped: ALTER COLUMN … TYPE; moved to other columns: ADD PRIMARY KEY (tenant, id); the table made again) is read again by the current one (REVIEW7 R124, REVIEW8 R145); with `handover`, the key\'s types recorded for table-changes-cdc are the ones that statement read (REVIEW8 R149), named with their schema whatever the search_path, and table-changes-cdc refuses (SYNC_HANDOVER_BROKEN) a recorded type that is not the key column\'s current one: a key retyped during the handover, or an older state\'s unqualified name that a look-alike type earlier on the search_path now answers to (REVIEW10 R163). The key columns\' collations are recorded with the types: a column given another collation during the handover (`ALTER COLUMN k TYPE text COLLATE "C"`: the type is the same, the order is not, and a change placed in the new order was judged by another batch\'s snapshot, its update dropped) is refused with SYNC_HANDOVER_BROKEN naming the column, the collation the batches were cut in and the current one, and the ALTER that gives the column its collation back; after it, table-changes-cdc goes on from the same state (REVIEW11 R174). A handover state recorded before 2026-11-30 has no collations: its keys are placed in the column\'s current collation, as before, unchecked. A state made with the old key (moved, or retyped or given another collation between two batches: its cursor orders rows in the old type\'s order, REVIEW10 R165) is refused with TRIGGER_STATE_INVALID: sync again. So is a state whose cursor was made before a label of an enum the key reaches (the key\'s type, a domain over it, an array of it, a composite with a field of it, a range over it) was renamed (`ALTER TYPE e RENAME VALUE`: the cursor is the label\'s text, which then names another place in the enum\'s order, and the next batch skipped the rows between; the type oids do not change): the state keeps a fingerprint of those labels (REVIEW11 R175). A label added between two batches (ADD VALUE, even BEFORE the cursor\'s) is not refused: it never reorders the labels there were, and no row held it when the run began. With `handover`, the batch bounds are label texts as well: the fingerprint of each table\'s last batch is recorded with them, and table-changes-cdc refuses with SYNC_HANDOVER_BROKEN a rename made before the handover ends (b and f swapped through a third name placed the change of b in the third batch, whose snapshot saw it: dropped). A state made before 2026-11-30 has no fingerprint: a rename between its batches, or before its handover ends, is not seen, as before.',
    'Keys are read back (the cursor, batch bounds) by the key type\'s input function (`jsonb_to_record`), never a cast from text a type\'s owner could make at any moment (REVIEW8 R143), as the ultimate base type of a domain (its CHECK does not run, REVIEW7 R139). A key whose type holds another role\'s domain deeper in it (an array of it, a composite with a field of it, a range over it), whose input would run its CHECK with the flow\'s role, or another role\'s composite type (which its owner may give a domain field at any moment), is refused with INVALID_INPUT naming the column and the type, unless its owner is a superuser or the flow\'s role (REVIEW8 R142).',
    'Resumable: the state holds the table and the last key handled; a killed sync resumes there, repeating at most one batch, with the same ids. The cursor is the key as PostgreSQL wrote it (not the event\'s parsed values, which do not always cast back: bytea and domains over it, arrays, jsonb numbers beyond a double), so every key type resumes exactly.',
    'Bounded: one batch in memory, of at most batchSize rows and about batchBytes (default 4 MiB: the rows per batch follow the previous batch\'s size per row, a table\'s first batch is 1,000 rows at most), and never more than the connection\'s maxResultBytes of COPY text (a batch past it, its rows wider than the previous batch\'s, is read again with half as many rows; RESULT_TOO_LARGE only for one row alone past it); one indexed range scan per poll.',
    'Limit of that range scan: a key of several columns whose types\' ordering operators live in different schemas (citext installed in a schema of its own, next to an int) cannot be compared as one row (no schema\'s operator orders them all, and the search_path is never used for it, REVIEW6 R110), so no index scan starts exactly at the cursor: by the plan PostgreSQL picks, each batch reads again the rows sharing the cursor\'s first value that earlier batches read (and skips them), or reads every later row sharing it and sorts them, a cost that grows with the square of the rows per first value over the batch size (measured: 20,000 rows of one citext value, batches of 1,000, read 136,000 index entries, against 19,000 for the same table keyed by text). Rows are neither lost nor repeated; a larger batchSize reads fewer again.',
    'Each batch is a snapshot of its own moment: a row changed during the run is read as it was when its batch was read.',
    'One id per row: the id holds the key as PostgreSQL writes it, so two keys are two ids even where their parsed values are one (a jsonb number beyond a double and the same digits as a string, REVIEW6 R121: then `key` is the same for both).',
    'Progress on every event: rows done and the planner\'s estimate of the total.',
    'Fast: a batch is one round trip, one transaction (the table locked in ACCESS SHARE mode before its snapshot, so a concurrent TRUNCATE is seen either wholly or not at all; on PostgreSQL 12, whose LOCK wants privileges on every partition, only the parent is locked, so there a TRUNCATE of a single partition alone is not covered) whose rows come through COPY (SELECT … ORDER BY key LIMIT batchSize) TO STDOUT, gathered as bytes while they arrive and decoded at once when the batch is complete (no object per row until then, so the garbage collector does not copy half-built batches), straight from the socket\'s bytes into the delivered rows (COPY takes no parameters: the cursor is bound with set_config and read back with current_setting, through the key type\'s input function: `jsonb_to_record`, never a cast from text, REVIEW8 R143).',
    fixedFormatsGuarantee('`key`, `new`, the event id and the state: its cursor and a handover\'s batch bounds', true),
    ...HANDOVER_GUARANTEES,
  ],
  privileges: ['GRANT USAGE ON SCHEMA <schema> TO <role>;', 'GRANT SELECT ON <schema>.<table> TO <role>;', '-- when the primary key\'s type is in another schema (citext in "extensions"): GRANT USAGE ON SCHEMA <type schema> TO <role>;'],
  identity: ['tables', 'handover'],
  installs: false,
  async start(args) {
    const handover = await beginHandover(args); // before the first batch: the slot's position, then its snapshot
    const position: SyncPosition = { run: new Date().toISOString(), table: 0, after: null, rowsDone: 0, estimatedTotal: await estimatedRows(args.connection, args.config.tables) };
    return handover ? { ...position, handover } : position;
  },
  poll: (args, position) => readBatch(args, position),
  async sample(args) {
    const position = { run: 'sample', table: 0, after: null, rowsDone: 0, estimatedTotal: await estimatedRows(args.connection, args.config.tables) };
    const batch = await readBatch({ ...args, config: { ...args.config, batchSize: 3, handover: undefined } }, position);
    return { events: batch.events, warnings: [], notes: [`About ${position.estimatedTotal} rows to copy.`] };
  },
});
