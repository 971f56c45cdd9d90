/** Table changes (CDC): INSERT, UPDATE, DELETE and TRUNCATE of chosen tables from the write-ahead log (pgoutput, no plugin to install). */
import configSchema from '../schemas/triggers/table-changes-cdc.config.schema.json' with { type: 'json' };
import eventSchema from '../schemas/triggers/table-changes-cdc.event.schema.json' with { type: 'json' };
import type { TableChangesCdcConfig, TableChangesCdcEvent } from '../schemas/types.gen.js';
import { configOf } from '../connection/index.js';
import { replicationThroughPooler } from '../connection/replication-readiness/pooler.js';
import { defineTrigger } from './definition.js';
import type { ChangeEvent } from './replication/changes.js';
import { pollChanges } from './replication/peek.js';
import { installHeartbeat, planHeartbeat, removeHeartbeat } from './replication/heartbeat.js';
import { activateSlot, deactivateSlot, publicationName, slotState, undoActivation } from './replication/slot.js';
import { subscribeChanges, type CdcPosition } from './replication/stream.js';
import { formatLsn } from './replication/lsn.js';
import { checkCdcPosition } from './replication/checked-position.js';
import { filterHandover, type HandoverPosition } from './replication/handover-filter.js';
import { fixedFormatsGuarantee } from './time-zone-docs.js';

export const tableChangesCdc = defineTrigger<TableChangesCdcConfig, TableChangesCdcEvent, CdcPosition>({
  key: 'table-changes-cdc',
  name: 'Table Changes (CDC)',
  description:
    'Starts a flow for every INSERT, UPDATE, DELETE and TRUNCATE of chosen tables, read from the write-ahead log through a ' +
    'publication and a logical replication slot (pgoutput, built into PostgreSQL 10+). Needs wal_level = logical and a role ' +
    'with REPLICATION: run diagnoseReplication (or `pg-actions check-replication`, with --heartbeat as configured) first.',
  config: configSchema,
  event: eventSchema,
  example: {
    setup: ['CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10,2) NOT NULL)'],
    config: { tables: ['orders'] },
    event: {
      id: '0/1A2B3C8:0',
      op: 'UPDATE',
      schema: 'public',
      table: 'orders',
      lsn: '0/1A2B3C8',
      seq: 0,
      xid: 771,
      commitTime: '2026-01-15T10:30:00.123456Z',
      key: { id: 1 },
      new: { id: 1, customer: 'Ada', total: '42.50' },
      oldRow: 'none',
    },
  },
  guarantees: [
    'At least once, acknowledged after handling: the slot\'s confirmed position moves only to the end of transactions whose events the handler finished (subscribe) or the host stored the state for (poll). A crash, a throwing handler or a terminated walsender redelivers every unacknowledged event, with the same ids.',
    'Keepalives are answered with the handled position, never the received one, and status updates go out on a timer while a slow handler runs, so the server does not drop the connection (wal_sender_timeout).',
    'Commit order, grouped by transaction; ids from the commit LSN and the change\'s place in the transaction; the commit time on every event. Rolled-back transactions emit nothing.',
    'Bounded memory: a transaction larger than batchSize comes in several handler calls (the position moves at its last); reading pauses while batches wait.',
    'pollTrigger too reads a large transaction in polls of at most batchSize changes (fewer when they pass maxResultBytes, down to one change per poll; a single change larger than maxResultBytes by itself, about twice its row\'s size, fails every poll with RESULT_TOO_LARGE saying so): the state then points inside it (position.inside: its xid and commit LSN, the rows and changes delivered), the slot stays at the last whole transaction, and the next poll goes on from there with the same ids a subscription gives, however many tables the transaction writes and however many enum or domain columns they have. Every poll moves on: one that reads rows but can deliver neither a change nor a new position fails with CDC_POLL_STALLED, never returns an empty batch at the same place. Each such poll has the server decode that transaction again, from its start (pg_logical_slot_peek_binary_changes ends only at a transaction\'s end): for frequent bulk writes prefer subscribeTrigger, which reads it once.',
    'Limit of pollTrigger: a transaction whose decoding alone takes longer than the connection\'s statementTimeoutMs (tens of millions of rows at the default 60 s), on any table of the database, watched or not (the server decodes every transaction to find the published changes: a bulk load or an ETL job\'s large UPDATE elsewhere counts, REVIEW7 R136), cannot be polled past, nor can changes committed just before it: every poll fails with CDC_POLL_DECODE_TIMEOUT and the slot keeps its WAL. Read such a trigger with subscribeTrigger (it decodes each transaction once, as it streams), or raise statementTimeoutMs for the polls that cross it. Right after such a timeout the server may still hold the slot for a moment (REPLICATION_SLOT_IN_USE).',
    "Other logical messages: pgoutput passes every message written with pg_logical_emit_message in the database (14+), which any role may write, of any size, under any prefix (pg-actions' heartbeat prefix included). pollTrigger receives each one emptied (15 bytes: only its position counts) and a run of them as its last, so neither a message's size nor their number holds a poll back: a poll whose peeks find no change reads on, up to 2 million rows. subscribeTrigger empties a message larger than 1 KiB as its bytes arrive, so one of any size (up to 1 GB) costs the host no memory (REVIEW7 R135, REVIEW8 R144, R151, R154).",
    'Large transactions on PostgreSQL 14+: the server streams a transaction bigger than logical_decoding_work_mem while it runs (pgoutput protocol 2, detected from the server version); it is spooled (1 MB in memory, then a temporary file) and handed to the handler only after its commit, in batches, with the same ids as unstreamed. A streamed transaction that rolls back, or a savepoint rolled back inside one, emits nothing. Committed streamed transactions waiting for a slow handler count toward the same pause (by their changes), and a waiting spool keeps no open file and no memory tail: a slow handler holds at most a few spools, however many large transactions commit.',
    'Partitioned tables: a change in any partition comes under the partitioned table\'s schema, name and key, as table-sync and row-changes give it (the trigger\'s own publication is made, or on activation changed, WITH (publish_via_partition_root = true), PostgreSQL 13+). A publication given in config.publication is used as it is: make it with that option too; PostgreSQL 12 cannot publish a partitioned table (activation fails saying so): publish its partitions there, whose changes come under their own names. Not delivered: partition maintenance that removes rows without row changes: TRUNCATE of one partition (PostgreSQL sends no TRUNCATE for a partition when the publication publishes through the root, REVIEW8 R148), DETACH PARTITION, DROP of a partition. Where a consumer keeps a copy, truncate through the partitioned table (delivered), DELETE the rows, or follow such maintenance with a new table-sync.',
    'Unchanged TOASTed values are listed in `unchanged`, never reported as null; `old` holds what the replica identity allows and `oldRow` says which. `key` holds every key column also when an UPDATE left a key value stored out of line unchanged (it is then absent from `new`, and taken from the old key the server sends); a server that did not send it (a minor release from before 2022) fails with CDC_KEY_NOT_SENT rather than deliver a change without its key.',
    'Quiet tables do not pin WAL: the position follows the server\'s keepalives and a heartbeat written when the tables were idle for heartbeatSeconds: a logical message on PostgreSQL 14+ (pgoutput passes messages on only from 14), before that an UPDATE of the one-row table pgactions.<slot>_heartbeat (created at activation and added to the trigger\'s publication, dropped at deactivation; its changes are never delivered, by any pg-actions trigger). The table is not created where a publication FOR ALL TABLES (15+: FOR TABLES IN SCHEMA pgactions) would ship it to other subscribers, nor when the role lacks CREATE: \'auto\' then goes without it (keepalives only), an explicit \'table\' is refused with HEARTBEAT_TABLE_UNAVAILABLE before anything is created. Nor in a pgactions schema owned by a role that is neither the activating role nor a superuser (REVIEW9 R156: its owner could replace the table by one with a trigger): \'auto\' goes without it, an explicit \'table\' is refused with PERMISSION_DENIED naming the owner, and a beat skips the table if the schema changes hands later.',
    'Loud on gaps: a slot that is missing, lost (max_slot_wal_keep_size) or ahead of the state (recreated, or read by someone else), or a state ahead of the server\'s WAL (a database restored or failed over behind the host, a state from another server: REVIEW8 R150), stops with REPLICATION_SLOT_MISSING / _LOST / _MISMATCH and the fix (re-snapshot), never a silent restart from now, and nothing is acknowledged.',
    'subscribeTrigger needs the server\'s own address: a replication connection does not go through a connection pooler (connection.pooler "transaction" or "session" is refused with REPLICATION_THROUGH_POOLER, as is a PgBouncer that refuses the connection); pollTrigger works through one.',
    'After a table-sync with `handover`, start from handoverState(<its last state>): the changes the copied rows already hold are dropped, every newer one is delivered (see Table Sync).',
    'Activation creates the publication (when config.publication is not given) with CREATE PUBLICATION, which waits for a SHARE UPDATE EXCLUSIVE lock on each table (behind a VACUUM, an ALTER TABLE, a LOCK TABLE): at most 5 s (half of statementTimeoutMs when that is shorter), on the server, then the step fails with LOCK_NOT_AVAILABLE naming the tables, having created nothing and left nothing waiting.',
    'One consumer at a time: PostgreSQL lets one session stream a slot; a second subscription retries and takes over when the first ends.',
    fixedFormatsGuarantee('`key`, `new` and `old`, polled or streamed; ids are made of positions, never of values', false),
  ],
  privileges: [
    "CREATE ROLE <role> LOGIN REPLICATION PASSWORD '<new password>';",
    'GRANT USAGE ON SCHEMA <schema> TO <role>;',
    'GRANT SELECT ON <schema>.<table> TO <role>;',
    '-- the tables\' owner creates the publication (or the role owns the tables and activateTrigger creates it):',
    'CREATE PUBLICATION <publication> FOR TABLE <schema>.<table> WITH (publish_via_partition_root = true);  -- the option on PostgreSQL 13+',
  ],
  identity: ['tables', 'publication'],
  installs: true,
  async start(args) {
    return { lsn: formatLsn((await slotState(args)).confirmedFlush) };
  },
  async poll(args, position: HandoverPosition) {
    checkCdcPosition(position);
    const batch = await pollChanges(args, position.inside !== undefined ? { lsn: position.lsn, inside: position.inside } : { lsn: position.lsn }, true, position.handover !== undefined);
    return (position.handover ? await filterHandover(args.connection, position.handover, batch) : batch) as { events: TableChangesCdcEvent[]; position: CdcPosition };
  },
  subscribe(args, position: HandoverPosition, deliver, onError) {
    checkCdcPosition(position);
    const { pooler } = configOf(args.connection);
    if (pooler !== 'none') throw replicationThroughPooler(pooler); // before anything starts: a replication connection needs the server itself
    let handover = position.handover;
    const handle = deliver as (batch: { events: ChangeEvent[]; position: HandoverPosition }) => Promise<void>;
    // Each batch's filter starts from the previous one's handover: it carries the keys it reopened.
    const filtered = async (batch: Parameters<typeof handle>[0]) => {
      const result = await filterHandover(args.connection, handover!, batch);
      handover = result.position.handover ?? handover;
      return handle(result);
    };
    return subscribeChanges(args, { lsn: position.lsn }, handover ? filtered : handle, onError, { keyText: handover !== undefined });
  },
  async activate(args) {
    const heartbeatTable = await planHeartbeat(args); // an explicit 'table' that cannot work is refused before the slot exists
    const created = await activateSlot(args);
    try {
      if (heartbeatTable) await installHeartbeat(args, args.config.publication === undefined ? publicationName(args) : undefined);
    } catch (error) {
      await undoActivation(args, created).catch(() => undefined); // no slot left pinning WAL for a trigger that is not active
      throw error;
    }
  },
  async deactivate(args) {
    await deactivateSlot(args);
    await removeHeartbeat(args);
  },
  async sample(args) {
    const state = await slotState(args);
    const batch = await pollChanges(args, { lsn: formatLsn(state.confirmedFlush) }, false);
    return {
      events: batch.events.slice(0, 3) as TableChangesCdcEvent[],
      warnings: [],
      notes: batch.events.length ? [] : ['No change is waiting in the slot yet: change a row of the tables, then test again.'],
    };
  },
});
