/**
 * Row Changes: every INSERT / UPDATE / DELETE on chosen tables, durable. Activation installs a
 * trigger that records each change in an outbox inside the writer's own transaction and sends
 * an empty NOTIFY to wake subscribers (never a payload: a large row cannot fail the write).
 */
import { isPgActionsError } from '../connection/index.js';
import configSchema from '../schemas/triggers/row-changes.config.schema.json' with { type: 'json' };
import eventSchema from '../schemas/triggers/row-changes.event.schema.json' with { type: 'json' };
import type { RowChangesConfig, RowChangesEvent } from '../schemas/types.gen.js';
import { install, remove } from './activations.js';
import { defineTrigger } from './definition.js';
import { acknowledgedPosition, readOutbox, ROW_CHANGES_OUTBOX, type OutboxPosition, type Settled } from './outbox-reader.js';
import { subscribeOutbox } from './outbox-subscription.js';

type Config = RowChangesConfig & Settled & { intervalSeconds: number; operations: string[] };
const settled = (config: RowChangesConfig) => config as Config;

export const rowChanges = defineTrigger<RowChangesConfig, RowChangesEvent, OutboxPosition>({
  key: 'row-changes',
  name: 'Row Changes',
  description:
    'Starts a flow for each INSERT, UPDATE or DELETE on the chosen tables, with the row before and after. Durable: ' +
    'activation installs a trigger that records every change in an outbox table in the same transaction as the change; ' +
    'subscribers are woken by NOTIFY and catch up with everything after a disconnect.',
  config: configSchema,
  event: eventSchema,
  example: {
    setup: ['CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, status text NOT NULL DEFAULT \'new\')'],
    config: { tables: ['orders'], operations: ['INSERT', 'UPDATE'] },
    event: {
      id: '3f9a1c07b2d4-1',
      op: 'UPDATE',
      schema: 'public',
      table: 'orders',
      key: { id: 1 },
      new: { id: 1, customer: 'Ada', status: 'paid' },
      old: { id: 1, customer: 'Ada', status: 'new' },
      writtenAt: '2026-01-15T10:30:00.123456Z',
    },
  },
  guarantees: [
    'Nothing is lost: each change is written to the outbox in the writer\'s transaction (a rolled-back write leaves no event; a committed one always has one), and the position moves only after the handler resolved (subscribeTrigger) or the host passed the returned state back (pollTrigger).',
    'Redelivery keeps ids: a batch whose handler threw, or whose subscriber died before acknowledging, arrives again with the same event ids.',
    'Late commits are not skipped: a change gets its position when the reader first sees it committed, so a transaction that commits after later ones were read is delivered after them, never passed over. Changes of one row arrive in the order they happened; changes of different rows arrive in commit order, to the granularity of one read.',
    'Catch-up: NOTIFY only wakes the subscriber; after a dropped connection or a server restart it reconnects with back-off and reads everything written meanwhile.',
    'Several subscribers of one activation (a host with several workers) share its position: one of them holds a lease and handles the events. The lease is the outbox cursor\'s row, which only roles with rights on pg-actions\' tables can write, so a role without them cannot keep the subscribers waiting (earlier versions used an advisory lock, whose key any role could hold). The holder renews it every 3 s from its LISTEN session; when that session ends (the holder died or lost its connection) another subscriber takes over within about a second, and when the holder stops renewing without its session ending (a frozen or vanished host, or a session-mode pooler that keeps the server session) within 15 s. Each read checks the lease under the cursor row\'s lock, so a holder that lost it without noticing neither acknowledges nor reads again. A subscriber that loses its connection in the middle of a batch may see that batch handled again by the new holder (at least once). An activation made by an earlier version gets the lease columns from its first subscriber (as the activating role); a subscriber of an earlier version is refused (a DATABASE_ERROR, retried) while one of this version holds the lease.',
    'A large row never fails the user\'s write: the NOTIFY payload is empty; the row travels through the outbox (to_jsonb of the row; a bigint or numeric value a double cannot hold exactly arrives as a string of its exact digits, never rounded).',
    'Stopping: close() waits at most 10 seconds for a handler still running, then releases the session and the lease; that batch was not acknowledged and is delivered again (same ids).',
    'Partitioned tables: a change in any partition (also one attached after activation) is reported with the configured table\'s schema, name and primary key.',
    'Activating again (or from two hosts at once) is idempotent: the installed objects are replaced in place, the position is kept.',
    'Big statements and big rows never stall reading: a read whose changes pass the connection\'s maxResultBytes is retried with half as many, down to one; one change alone may take up to 256 MiB (row images as parsed JSON; an UPDATE carries the row twice). A change beyond that fails every read with RESULT_TOO_LARGE naming its position (never skipped silently).',
    'Bounded: batchSize changes per read; acknowledged changes are deleted once older than retentionMinutes; a state older than what was deleted is refused (TRIGGER_STATE_INVALID), never silently restarted.',
    'Cost: every write to a watched table also writes one outbox row (about the size of the row, twice for UPDATE) in the same transaction. On an ordinary table the capture is statement-level (one trigger per chosen operation, reading the statement\'s transition tables): the statement\'s rows go to the outbox in one INSERT … SELECT per 1000 rows (or 16 MB) and one NOTIFY per statement, however many rows it changed. Partitioned tables, partitions and inheritance parents or children keep a row-level trigger, because a statement trigger would miss rows written through a parent or straight into a partition.',
    'A watched ordinary table cannot become a partition or inheritance child behind the trigger\'s back: a never-firing row trigger (pg_actions_rc_<id>_partition_guard) makes PostgreSQL refuse ALTER TABLE … ATTACH PARTITION and ALTER TABLE … INHERIT ("trigger … prevents table … from becoming a partition"). To convert the table, drop that trigger (on PostgreSQL 12, which refuses for the statement triggers\' transition tables too, also pg_actions_rc_<id>_insert, _update and _delete) and attach in one transaction, then activate again before writing through the parent (activation then installs the row-level trigger); rows written through the parent before that are not captured.',
    'TRUNCATE produces no event.',
    "Timestamps in UTC: the capture writes every timestamptz in UTC (to_jsonb: `2026-01-01T12:00:00+00:00`), whatever TimeZone the writer's session has (REVIEW9 R160), and every bytea in hex (`\\x6162`), whatever the writer's bytea_output (REVIEW10 R167); an activation made before 2026-11-30 writes the writer's formats until it is activated again. `writtenAt` is read in UTC (`2026-01-01T12:00:00.123456Z`), whatever the reading session's TimeZone, so the same event reads the same when read again (REVIEW10 R171).",
    'Never replicated to the user\'s subscribers: where a publication FOR ALL TABLES (PostgreSQL 15+: also FOR TABLES IN SCHEMA pgactions) exists, its subscribers would receive the outbox tables\' changes and stop on tables they do not have, so activation is refused with OUTBOX_WOULD_BE_PUBLISHED naming the publication, before anything is created (publish the tables by name instead). A publication FOR ALL TABLES created after activation does not stop reading (every table of ours has a replica identity), but a subscription to it cannot be created while the trigger is installed (PostgreSQL reports the pgactions schema or table missing on the subscriber): deactivate first, or publish by name.',
    "Whose rights the capture runs with: the trigger functions run as the activating role (SECURITY DEFINER), which writes the outbox, but they never serialise a row themselves. `to_jsonb` calls any cast to json the owner of a column's type made, and such a cast can be created at any moment (so no check for it can close the gap: REVIEW8 R143), and that owner need not own the table (a shared types schema, an extension installed by an admin role): run as the activator or as the writer (a superuser's migration, say), its function would have their rights (REVIEW9 R161). So the capture calls no cast but a superuser's (REVIEW10 R170: a cast running in the writer's session could SET search_path for the writer's next statements, whatever role it ran as): a column whose type reaches (through domains, arrays and composites' fields) a type that is not built in and is owned by a role that is not a superuser (an enum, a range, a composite or an extension's type made by such a role) is written as that type's text (its output function, which only a superuser can make): an enum as its label, an array of them as a JSON array of labels (several dimensions: the array's text), a composite as its text, e.g. `(7,ok)`. Other columns, and every column of a table whose types are built in or a superuser's (an extension a superuser installed, such as hstore, whose cast to json is used), are written by `to_jsonb` as before. No check-then-use: while a statement writes the table its columns cannot change, and only a superuser can change a superuser's type or hand it to another role. Rows of tables whose types are all built in or a superuser's are serialised by pgactions.rc_<id>_json, owned by the database's capture role `pgactions_capture_<database oid>` (one per database: REVIEW11 R169), which has no rights at all (NOLOGIN, no attribute, member of no role, no USAGE on the pgactions schema) and refuses to run as any other role (defence in depth). Nobody but the activating role may call pgactions.rc_<id>_put, which records the changes, and PUBLIC has no USAGE on the pgactions schema, so no role can make up events (REVIEW9 R157), whatever it wrote or had written for it. Activation makes the role when the activating role may create roles (a superuser; CREATEROLE, which then grants itself SET ROLE to it, PostgreSQL 16+ without inheriting it), and refuses with PERMISSION_DENIED naming the one-time set-up otherwise (see the set-up below), and also when the existing role has any right (LOGIN, SUPERUSER, CREATEROLE, CREATEDB, REPLICATION, BYPASSRLS, or a membership) or when a role other than this one, a superuser and the owners of this database's capture functions (its earlier activators) may act as it (is a member, or has ADMIN OPTION on it, as PostgreSQL 16+ gives the role that created it), naming each with the REVOKE a superuser runs: whoever may act as the role can drop what it owns (DROP OWNED BY) or take it (REASSIGN OWNED), or rename the role, which stops every captured write that relies on it (fail closed: the write is refused, nothing is recorded), and role names are the cluster's, so a tenant of another database could make this database's role first. Earlier versions used one role for the cluster, `pgactions_capture`, which let a tenant of one database that could act as it (it made it) stop the capture in every database; their activations keep serialising as it until activated again (listActivations: `outdated: true`). pg-actions never drops the role; a database's role outlives the database (DROP ROLE pgactions_capture_<oid> after DROP DATABASE). The extra call per row costs little: measured as the writing backend's CPU time, 10,000 one-row INSERTs took 0.74 s with it and 0.79 s before (when the capture also looked up its own owner), one INSERT of 10,000 rows 74 ms and 69 ms. Values are written in the formats pg-actions parses (`extra_float_digits` 3, `IntervalStyle` postgres, `TimeZone` UTC, `bytea_output` hex, `DateStyle` ISO: dates inside ranges and composites too), whatever the writer's session's. Activations made by earlier versions keep their old capture functions until activated again: those made before this version serialise as the writer and let any role that wrote a watched table (or had it written by a SECURITY DEFINER function, a foreign-key action, even rolled back, even in an earlier transaction of its session) make up events for it (REVIEW9 R157, R161), and those made before that serialise as the activator (REVIEW8 R143).",
    "Schema pgactions must be the activating role's or a superuser's (REVIEW9 R156: its owner could replace the functions pg-actions calls there by name): activation and deactivation refuse any other owner with PERMISSION_DENIED naming it, before creating anything (fix: DROP SCHEMA pgactions CASCADE when it holds nothing of pg-actions' you need; a hand-over by ALTER SCHEMA … OWNER TO is safe only after removing other roles' objects and grants), and also a schema that grants anything but USAGE to another role than its owner or a superuser, or holds objects of another role than this one, its owner, a superuser or the capture role (the database's, or the shared pgactions_capture of activations made before REVIEW11 R169) (REVIEW10 R162: a hand-over keeps both, and activation adopts objects by name), naming them. If the schema is handed to another role later, reads and subscriptions are refused the same way before calling anything in it, and the capture refuses the writer's INSERT, UPDATE or DELETE (42501, naming the owner) rather than call into it, until the schema is given back (the capture looks the owner up on each call: about 17 µs per row for the row-level capture of partitioned tables, once per statement otherwise). Activations made by earlier versions get this check when activated again.",
    'deactivateTrigger removes its triggers, functions and tables and nothing else (the pgactions schema too once it is empty); listActivations finds leftovers of crashed hosts and removeActivation removes them (with the changes not yet read). An activation made by an earlier version is listed `outdated: true` (`complete` stays true): it works, but keeps its old capture (for activations made before this version: serialising as the writer and open to made-up events, REVIEW9 R161, R157) until it is activated again, which keeps its position and events; never remove it for that.',
    'Activation and deactivation never queue in front of the application: CREATE TRIGGER waits for every open writer of a watched table and DROP TRIGGER for every open reader, and while either waits every later query needing the table waits behind it. So each lock is waited for at most 5 s (half of statementTimeoutMs when that is shorter), on the server: then the step fails with LOCK_NOT_AVAILABLE naming the table, having changed nothing and left nothing waiting. Finish or end the open transaction (often a session idle in transaction), then activate (or deactivate) again. The same bound applies to pg-actions\' activation lock, held while another row-changes or schema-changes activation or deactivation runs in the database: the pgactions schema\'s own lock (taken by COMMENT ON SCHEMA, which only its owner may run), so a role without rights on it cannot hold activations up; LOCK_NOT_AVAILABLE then names the sessions holding it (pid, role, application).',
  ],
  privileges: [
    '-- activation (once, by a role that owns the watched tables):',
    'GRANT CREATE ON DATABASE <database> TO <role>;          -- for the pgactions schema, which pg-actions creates owned by <role>: an existing one must be <role>\'s or a superuser\'s',
    'ALTER TABLE <schema>.<table> OWNER TO <role>;            -- CREATE TRIGGER needs ownership (or the TRIGGER privilege: GRANT TRIGGER ON <schema>.<table> TO <role>;, enough to activate once: activating again and deactivating drop the triggers, which needs ownership)',
    '-- the role rows are serialised as (once per database, by a superuser, unless <role> may create roles: then activation does it;',
    '-- <oid> is the database\'s: SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database(); the refusal names the statements):',
    'CREATE ROLE pgactions_capture_<oid> NOLOGIN;',
    'GRANT pgactions_capture_<oid> TO <role> WITH INHERIT FALSE, SET TRUE;   -- PostgreSQL 12-15: GRANT pgactions_capture_<oid> TO <role>;',
    '-- writers of the table need nothing more (the trigger functions run as <role>; nothing in pgactions is granted to PUBLIC)',
    '-- reading (pollTrigger / subscribeTrigger) runs as the activating role: its functions are not granted to PUBLIC',
  ],
  identity: ['tables', 'operations', 'name'],
  installs: true,
  start: (args) => acknowledgedPosition(args.connection, args.fingerprint, ROW_CHANGES_OUTBOX),
  poll: (args, position) => readOutbox(args.connection, args.fingerprint, settled(args.config), position.after, ROW_CHANGES_OUTBOX),
  subscribe: (args, position, deliver, onError) => subscribeOutbox(args.connection, args.fingerprint, settled(args.config), position, deliver, onError, ROW_CHANGES_OUTBOX),
  activate: (args) => install(args.connection, args.fingerprint, args.config.tables, settled(args.config).operations),
  deactivate: (args) => remove(args.connection, args.fingerprint),
  async sample(args) {
    // Only "not activated" is a sample's answer; a refusal (PERMISSION_DENIED: schema pgactions is
    // another role's, REVIEW10 R168) or a failed connection is the step's error, with its fix.
    const position = await acknowledgedPosition(args.connection, args.fingerprint, ROW_CHANGES_OUTBOX).catch(unlessNotActive);
    if (!position) return { events: [], warnings: ['Not activated yet: activate the trigger, then change a row to see an event.'], notes: [] };
    const batch = await readOutbox(args.connection, args.fingerprint, { ...settled(args.config), batchSize: 3 }, 0, ROW_CHANGES_OUTBOX).catch(unlessNotActive);
    return { events: batch?.events ?? [], warnings: [], notes: ['Events come from the outbox; changes made before activation are not there.'] };
  },
});

/** undefined for TRIGGER_NOT_ACTIVE (the outbox is missing); any other failure is thrown on. */
function unlessNotActive(error: unknown): undefined {
  if (isPgActionsError(error) && error.code === 'TRIGGER_NOT_ACTIVE') return undefined;
  throw error;
}
