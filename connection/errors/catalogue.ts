/**
 * Every error code pg-actions can produce, with the heading a UI shows and the steps a user can
 * take. docs/errors.md documents each one; a test fails when a code is missing there.
 */
export interface ErrorEntry {
  readonly title: string;
  /** What usually causes it, in one sentence (used by docs and as a fallback message). */
  readonly cause: string;
  readonly fixes: readonly string[];
  /** Running the same step again can succeed as it is (the failure came from timing, not from the step). */
  readonly retryable?: boolean;
}

const LEAST_PRIVILEGE_SQL =
  'GRANT SELECT, INSERT, UPDATE, DELETE ON <table> TO <role>; -- then check: SELECT * FROM information_schema.table_privileges WHERE grantee OPERATOR(pg_catalog.=) \'<role>\';';

export const ERROR_CATALOGUE = {
  CONNECTION_REFUSED: {
    title: 'Connection refused',
    cause: 'Nothing accepted the connection at that host and port, or the server is starting up or shutting down.',
    fixes: [
      'Check the host and port (PostgreSQL listens on 5432 by default).',
      'Check that the database server is running.',
      'Check that the server listens on this network interface (listen_addresses in postgresql.conf).',
      'Check firewall rules and any IP allow-list in front of the database.',
    ],
  },
  HOST_NOT_FOUND: {
    title: 'Host not found',
    cause: 'The host name could not be resolved to an address.',
    fixes: [
      'Check the host name for typos.',
      'Use the IP address instead of the name to rule out DNS problems.',
      'If the database is on a private network, check that this runner can resolve its name.',
    ],
  },
  CONNECTION_TIMEOUT: {
    title: 'Connection timed out',
    cause: 'The server did not complete the connection within the connect timeout.',
    fixes: [
      'Check that the host and port point at PostgreSQL and not at another service.',
      'Check firewall rules: a silently dropped connection looks like a timeout.',
      'If the server is far away or busy, raise connectTimeoutMs.',
    ],
  },
  CONNECTION_LOST: {
    title: 'Connection lost',
    cause: 'The connection to the server broke while it was in use (server restart, terminated backend, network failure).',
    fixes: [
      'Run the step again: pg-actions opens a fresh connection automatically. For a step that writes, first check whether its change is already in the database: the connection may have broken after the server committed it, and running it again would write it twice.',
      'If it keeps happening, check the server log for crashes or pg_terminate_backend calls, and the network path for idle-connection killers.',
    ],
  },
  AUTHENTICATION_FAILED: {
    title: 'Authentication failed',
    cause: 'The server rejected the user name or password, or has no pg_hba.conf rule that lets this user in.',
    fixes: [
      'Check the user name.',
      'Check the password (re-enter it; passwords are never shown).',
      'Check that the role may log in: ALTER ROLE <role> LOGIN;',
      'Check that pg_hba.conf has a rule for this user, database and client address.',
      'If the server authenticates by certificate (pg_hba.conf method cert), paste the client certificate and key into sslCert and sslKey.',
    ],
  },
  DATABASE_NOT_FOUND: {
    title: 'Database not found',
    cause: 'The server has no database with that name.',
    fixes: [
      'Check the database name (names are case-sensitive when created with quotes).',
      'List the databases with: SELECT datname FROM pg_catalog.pg_database;',
    ],
  },
  SSL_REQUIRED: {
    title: 'SSL connection required',
    cause: 'The server (or the connection pooler in front of it) only accepts encrypted connections for this user and database, and SSL is disabled in the connection.',
    fixes: [
      'Change SSL Mode to "require" (or "verify-full" with the server\'s CA certificate).',
      'Test the connection again.',
    ],
  },
  SSL_NOT_SUPPORTED: {
    title: 'Server does not support SSL',
    cause: 'The connection demands SSL but the server has SSL turned off.',
    fixes: [
      'Turn SSL on at the server (ssl = on with a certificate and key in postgresql.conf), or',
      'if the network is trusted, set SSL Mode to "prefer" or "disable".',
    ],
  },
  SSL_CERTIFICATE_INVALID: {
    title: 'Server certificate not trusted',
    cause: 'The server\'s certificate could not be verified against the CA given, or does not match the host name.',
    fixes: [
      'Paste the CA certificate that signed the server certificate into "SSL CA" (PEM).',
      'For verify-full, connect using a host name that appears in the certificate.',
      'If you only need encryption without verification, use SSL Mode "require".',
    ],
  },
  SSL_CLIENT_CERTIFICATE_REJECTED: {
    title: 'Client certificate rejected',
    cause: 'The server refused the client certificate during the TLS handshake (unknown CA, expired, or not a client certificate).',
    fixes: [
      'Use a client certificate signed by a CA the server trusts (its ssl_ca_file).',
      'Check that the certificate has not expired and allows client authentication (extendedKeyUsage clientAuth).',
      'For pg_hba.conf method cert, the certificate\'s CN must be the user name (or mapped in pg_ident.conf).',
    ],
  },
  SSH_HOST_UNREACHABLE: {
    title: 'SSH host unreachable',
    cause: 'The SSH server (bastion) named in sshTunnel could not be reached in time, or what answered there is not an SSH server.',
    fixes: [
      'Check sshTunnel.host and sshTunnel.port (SSH listens on 22 by default) - the bastion, not the database.',
      'Check that the SSH server is running and that firewalls or security groups let this runner reach it (bastions often allow-list client IP addresses).',
      'If the bastion is far away or slow to answer, raise connectTimeoutMs: it also bounds the SSH handshake.',
    ],
  },
  SSH_AUTH_FAILED: {
    title: 'SSH login failed',
    cause: 'The SSH server rejected the user, the password or the private key of sshTunnel.',
    fixes: [
      'Check sshTunnel.user: the account on the bastion, not the database role.',
      'Re-enter sshTunnel.password, or check that the public key of sshTunnel.privateKey is in ~/.ssh/authorized_keys of that user on the bastion.',
      'Check that the SSH server allows this method for the user (PasswordAuthentication / PubkeyAuthentication / AuthenticationMethods in sshd_config) and that the account is not locked.',
    ],
  },
  SSH_HOST_KEY_MISMATCH: {
    title: 'SSH host key does not match',
    cause: 'The SSH server presented a host key whose fingerprint is not sshTunnel.hostKeyFingerprint: its key changed, another machine answers at that address, or someone is intercepting the connection.',
    fixes: [
      'Do not connect until you know why the key changed: ask the administrator of the bastion.',
      'Compare with the fingerprints on the bastion itself: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub (and the other ssh_host_*_key.pub files).',
      'If the key changed legitimately, put the new SHA256:... fingerprint in sshTunnel.hostKeyFingerprint.',
    ],
  },
  SSH_FORWARDING_REFUSED: {
    title: 'SSH server refused to forward',
    cause: 'The SSH server accepted the login but refused to forward a connection to the database host and port (port forwarding disabled or restricted for this user).',
    fixes: [
      'On the bastion, allow TCP forwarding for this user: AllowTcpForwarding yes (or local) in sshd_config, including any Match block that applies, then reload sshd.',
      'If sshd_config has PermitOpen (or the key in authorized_keys has permitopen="...", no-port-forwarding or restrict), allow the database host:port exactly as the connection gives them.',
      'Check host and port: they are resolved and reached from the bastion, so give the address the bastion sees (a private IP or name, or 127.0.0.1 for a database on the bastion itself).',
    ],
  },
  PERMISSION_DENIED: {
    title: 'Permission denied',
    cause: 'The database user lacks a privilege the statement needs.',
    fixes: [
      'Grant the privilege the statement needs, for example: ' + LEAST_PRIVILEGE_SQL,
      'Or connect as a role that already has it (prefer a least-privilege role over a superuser).',
    ],
  },
  SYNTAX_ERROR: {
    title: 'Syntax error in SQL query',
    cause: 'PostgreSQL could not parse the statement.',
    fixes: [
      'Look at the line and column shown in the message.',
      'Test the query in a database client first.',
      'Use $1, $2… placeholders for values; run one statement per step.',
      'Check PostgreSQL version compatibility of the syntax used.',
    ],
  },
  UNDEFINED_TABLE: {
    title: 'Table not found',
    cause: 'The statement names a table, view or other relation that does not exist (or is not on the search_path).',
    fixes: [
      'Check the table name and schema (for example public.users).',
      'Names created with double quotes are case-sensitive.',
      'Check that the user can see the schema: GRANT USAGE ON SCHEMA <schema> TO <role>;',
    ],
  },
  UNDEFINED_COLUMN: {
    title: 'Column not found',
    cause: 'The statement names a column that the table does not have.',
    fixes: ['Check the column name against the table definition.', 'Names created with double quotes are case-sensitive.'],
  },
  INVALID_VALUE: {
    title: 'Invalid value',
    cause: 'A value could not be converted to the column\'s or parameter\'s type, or is out of range.',
    fixes: [
      'Check the value sent for the parameter named in the message.',
      'Cast parameters explicitly in SQL when the type is ambiguous, for example $1::int[] or $2::timestamptz.',
    ],
  },
  UNIQUE_VIOLATION: {
    title: 'Duplicate value',
    cause: 'The row would duplicate a value that a unique index or primary key forbids.',
    fixes: [
      'Use an upsert: INSERT … ON CONFLICT (<column>) DO UPDATE SET …',
      'Or look the row up first and update it instead of inserting.',
    ],
  },
  FOREIGN_KEY_VIOLATION: {
    title: 'Referenced row missing',
    cause: 'The row refers to a row in another table that does not exist, or a row still referenced elsewhere was deleted.',
    fixes: [
      'Insert the referenced row first, or correct the referencing value.',
      'When deleting, delete or update the referencing rows first (or use ON DELETE CASCADE).',
    ],
  },
  NOT_NULL_VIOLATION: {
    title: 'Required value missing',
    cause: 'A column that does not allow NULL received no value.',
    fixes: ['Provide a value for the column named in the message.', 'Or give the column a DEFAULT in the table definition.'],
  },
  CHECK_VIOLATION: {
    title: 'Value rejected by a check constraint',
    cause: 'The row does not satisfy a CHECK constraint of the table.',
    fixes: ['Look at the constraint named in the message: \\d <table> in psql shows its rule.', 'Change the value so that it satisfies the rule.'],
  },
  READ_ONLY_VIOLATION: {
    title: 'Statement not allowed here',
    cause: 'The statement tried to change data in a read-only context (Query Rows runs read-only; a hot standby is read-only too).',
    fixes: [
      'Use Update Rows, Delete Rows, Insert Row or Execute Query to change data.',
      'If the server is a read replica, point the connection at the primary.',
    ],
  },
  TOO_MANY_CONNECTIONS: {
    title: 'Too many connections',
    cause: 'The server has reached its connection limit (max_connections) or the role its CONNECTION LIMIT.',
    fixes: [
      'Check current connections: SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity;',
      'Close unused connections or idle clients.',
      'Increase max_connections (database admin).',
      'Reuse one connection across steps: pg-actions pools per connection automatically.',
    ],
  },
  POOLER_STARTUP_PARAMETER: {
    title: 'Connection pooler refused a setting',
    cause: 'A connection pooler (PgBouncer) refused a startup parameter of the connection; pg-actions itself sends none that PgBouncer refuses by default.',
    fixes: [
      'Remove the setting from the connection (connection string options): a pooler only accepts a few startup parameters.',
      'Or let the pooler accept it: add its name to ignore_startup_parameters in pgbouncer.ini.',
    ],
  },
  POOLER_TOO_MANY_CLIENTS: {
    title: 'Connection pooler is full',
    cause: 'The connection pooler has reached its client limit (PgBouncer: max_client_conn).',
    fixes: [
      'Close idle clients of the pooler, or raise max_client_conn in pgbouncer.ini (pooler admin).',
      'Check SHOW CLIENTS on the PgBouncer admin console for clients that never disconnect.',
    ],
  },
  POOLER_SERVER_LOGIN_FAILED: {
    title: 'Connection pooler cannot log in to the database',
    cause: 'The connection pooler accepted this connection but could not connect or log in to the PostgreSQL server behind it.',
    fixes: [
      'Check the password the pooler uses for the server: the [databases] entry, auth_file (userlist.txt) or auth_query of pgbouncer.ini must match the role\'s password on the server.',
      'Check that the server is running and that its pg_hba.conf lets the pooler\'s address in.',
      'Check the database name: behind a `*` entry of [databases] the pooler passes any name on, and a name the server does not have fails its login too (PgBouncer before 1.24 then says only "server login has been failing"; SELECT datname FROM pg_catalog.pg_database; lists the server\'s).',
      'PgBouncer waits server_login_retry seconds after a failed login: try again after fixing it.',
    ],
  },
  POOLER_QUERY_WAIT_TIMEOUT: {
    title: 'Connection pooler had no free server connection',
    cause: 'The step waited longer than the pooler allows (PgBouncer: query_wait_timeout) for a server connection: every one was busy, or the server could not be reached.',
    fixes: [
      'Run the step again later; check for long transactions holding the pool\'s connections (SHOW POOLS / SHOW SERVERS on the PgBouncer console).',
      'Raise default_pool_size or query_wait_timeout in pgbouncer.ini (pooler admin).',
      'Check that the database server is up: PgBouncer reports an unreachable server this way too.',
    ],
  },
  POOLER_SHUTTING_DOWN: {
    title: 'Connection pooler is not serving this database',
    cause: 'The connection pooler is shutting down, or its pool for this database was disabled or removed (PgBouncer: DISABLE, KILL, RELOAD).',
    fixes: [
      'Run the step again once the pooler is back (ENABLE / RESUME on the PgBouncer console).',
      'Check the database name against the [databases] section of pgbouncer.ini.',
    ],
  },
  POOL_EXHAUSTED: {
    title: 'All pooled connections busy',
    retryable: true,
    cause: 'Every connection of this pool (10 per connection configuration) was in use by other steps until the step\'s deadline, so the statement never started.',
    fixes: [
      'Run fewer steps on this connection at the same time (lower the flow\'s concurrency or batch size).',
      'Make the steps that hold connections faster (EXPLAIN their queries; add indexes), or give them a lower timeoutMs.',
      'Raise the step\'s timeoutMs if waiting longer for a free connection is acceptable.',
      'Check for a long-running step that blocks the others: SELECT pid, pg_catalog.now() OPERATOR(pg_catalog.-) query_start, query FROM pg_catalog.pg_stat_activity WHERE application_name OPERATOR(pg_catalog.=) \'pg-actions\';',
    ],
  },
  DEADLOCK_DETECTED: {
    title: 'Deadlock',
    cause: 'This statement and another transaction each waited for a lock the other held; PostgreSQL cancelled this one (SQLSTATE 40P01). Nothing it did was kept.',
    retryable: true,
    fixes: [
      'Run the step again: a retry usually succeeds.',
      'Make concurrent flows lock rows in the same order (for example ORDER BY id in UPDATE … WHERE id IN (…) via a subquery with FOR UPDATE).',
    ],
  },
  SERIALIZATION_FAILURE: {
    title: 'Concurrent change, retry',
    cause: 'Under REPEATABLE READ or SERIALIZABLE isolation another transaction changed the same data first (SQLSTATE 40001). Nothing this statement did was kept.',
    retryable: true,
    fixes: ['Run the step again: it reads the new data and usually succeeds.', 'Keep transactions on hot rows short.'],
  },
  LOCK_NOT_AVAILABLE: {
    title: 'Lock not available',
    cause: 'A lock the statement needed was held by another transaction and the statement did not wait (NOWAIT, or lock_timeout passed: a trigger\'s activation or deactivation waits at most 5 s for each lock rather than queue in front of the application; SQLSTATE 55P03).',
    retryable: true,
    fixes: [
      'Run the step again once the other transaction has finished.',
      'Find who holds the lock: SELECT pid, query FROM pg_catalog.pg_stat_activity WHERE pid OPERATOR(pg_catalog.=) ANY (pg_catalog.pg_blocking_pids(<pid>));',
      'Use SKIP LOCKED instead of NOWAIT when any free row will do.',
    ],
  },
  TEMP_FILE_LIMIT_EXCEEDED: {
    title: 'Temporary file limit exceeded',
    cause: 'A sort, hash or materialisation spilled more to temporary files than temp_file_limit allows (SQLSTATE 53400, a configured limit).',
    retryable: true,
    fixes: [
      'Retry when the server is less busy only if the limit depends on load; usually the query must use less temporary space.',
      'Add LIMIT, filter earlier, or add an index that avoids the large sort (EXPLAIN shows it).',
      'Ask the database admin whether temp_file_limit (or work_mem for this role) can be raised.',
    ],
  },
  QUERY_TIMEOUT: {
    title: 'Query timeout',
    cause: 'The statement ran longer than the step\'s timeout and was cancelled on the server.',
    fixes: [
      'Optimise the query (add indexes: EXPLAIN shows the plan).',
      'Reduce the result size (add LIMIT).',
      'Check for locks held by other sessions: SELECT * FROM pg_catalog.pg_locks WHERE NOT granted;',
      'Increase the timeout setting.',
      'Run heavy work during off-peak hours.',
    ],
  },
  COMMIT_UNCONFIRMED: {
    title: 'Write may be committed',
    cause: 'The statement finished, but the step\'s timeout passed while its COMMIT was under way (waiting for a synchronous standby) or its answer was late: the write is, or may be, committed.',
    fixes: [
      'Do not run the step again blindly: check first whether its write is in the database (running it again may write it twice).',
      'With synchronous replication (synchronous_standby_names), check that the standby is connected: SELECT * FROM pg_catalog.pg_stat_replication;',
      'Increase the timeout setting if commits or answers are slow.',
    ],
  },
  RESULT_TOO_LARGE: {
    title: 'Result too large',
    cause: 'The rows returned exceeded the result size cap (counted as memory), so reading stopped and the statement was cancelled.',
    fixes: [
      'Add LIMIT, or select only the columns you need (avoid SELECT *).',
      'Page through the data with WHERE id > $1 ORDER BY id LIMIT n.',
      'Raise maxResultBytes (at most 256 MiB) if the step really needs more; wide rows and JSON count their parsed size.',
    ],
  },
  RESULT_UNREADABLE: {
    title: 'Result value unreadable',
    cause: 'pg-actions could not turn a value of the result into JavaScript (a fault of its reader, not of the data); the step was stopped and its connection closed.',
    fixes: [
      'Report it to pg-actions with the column\'s type and the message.',
      'Meanwhile, select the column as text (col::text) to read it as a string.',
    ],
  },
  INVALID_INPUT: {
    title: 'Invalid input',
    cause: 'The step\'s configuration or input does not match its schema.',
    fixes: ['Correct each field listed in the message.'],
  },
  TRIGGER_STATE_INVALID: {
    title: 'Trigger state not usable',
    cause: 'The stored trigger state belongs to another trigger or configuration, or points at events the database no longer keeps.',
    fixes: [
      'Pass the state that this trigger, with this configuration, returned last.',
      'If the configuration changed on purpose, start without a state (the trigger starts again from its "from" setting) and expect a gap or repeats.',
      'For row-changes, raise retentionMinutes so the outbox keeps events for as long as a consumer may be away.',
    ],
  },
  TRIGGER_NOT_ACTIVE: {
    title: 'Trigger not activated',
    cause: 'The trigger needs objects in the database (outbox, functions, triggers) and they are not there.',
    fixes: [
      'Call activateTrigger with the same configuration first (the Activate button of the host).',
      'If it was activated before, someone removed its objects: activate again; changes written meanwhile were not recorded.',
    ],
  },
  REPLICATION_NOT_READY: {
    title: 'Database not ready for change capture',
    cause: 'A setting, privilege or table keeps logical replication from working (wal_level, REPLICATION, free slots, replica identity, publication rights).',
    fixes: [
      'Run diagnoseReplication (or `pg-actions check-replication --connection … --tables …`): each failed check lists the exact SQL or setting that fixes it.',
      'Apply the fixes (wal_level needs a server restart), then activate the trigger again.',
    ],
  },
  HEARTBEAT_TABLE_UNAVAILABLE: {
    title: 'Heartbeat table cannot be used',
    cause: "table-changes-cdc was asked for heartbeat 'table', but a publication FOR ALL TABLES (or FOR TABLES IN SCHEMA pgactions) would ship the table's changes to its subscribers, or the role cannot create the table.",
    fixes: [
      "Use heartbeat 'auto' (without the table, the position follows the server's keepalives) or, on PostgreSQL 14+, 'message'.",
      'Publish the tables by name (CREATE PUBLICATION <name> FOR TABLE …) instead of FOR ALL TABLES, or grant the role CREATE on the database (GRANT CREATE ON DATABASE <database> TO <role>;).',
    ],
  },
  LISTEN_BACKLOG_DROPPED: {
    title: 'Notifications dropped',
    cause: "A listen subscription's handler kept failing (or was too slow) while notifications kept coming: its backlog filled the host's bounded queue and then a share of the server's notification queue, which every session of the cluster shares (when it is full, every NOTIFY fails, row-changes' capture too). To keep other applications' writes working, the oldest queued notifications were dropped: listen is not durable.",
    fixes: [
      'Make the flow behind the listen trigger succeed (or faster); the error before this one says why it failed.',
      'Use row-changes where no change may be missed: it keeps changes in a table until the flow has handled them.',
    ],
  },
  OUTBOX_WOULD_BE_PUBLISHED: {
    title: 'Trigger tables would be replicated',
    cause: 'row-changes keeps changes in tables of schema pgactions, and a publication FOR ALL TABLES (or FOR TABLES IN SCHEMA pgactions) would ship them to its subscribers, whose replication would then stop on tables they do not have.',
    fixes: [
      'Publish the tables by name instead (CREATE PUBLICATION <name> FOR TABLE <schema>.<table>, …; on PostgreSQL 15+ also FOR TABLES IN SCHEMA <schema>), move the subscribers to it, then drop the FOR ALL TABLES publication.',
      'Or capture changes without tables of ours: table-changes-cdc (reads the WAL) or new-row / new-or-updated-row (poll the table).',
    ],
  },
  REPLICATION_SLOT_MISSING: {
    title: 'Replication slot missing',
    cause: 'The trigger\'s replication slot does not exist: the trigger was never activated, or the slot was dropped (the changes since are gone).',
    fixes: [
      'Run activateTrigger to create the publication and slot.',
      'If the trigger ran before, re-snapshot the tables (table-sync) and start without a state: changes made while the slot was gone cannot be recovered.',
    ],
  },
  REPLICATION_SLOT_LOST: {
    title: 'Replication slot lost',
    cause: 'The server removed WAL the slot still needed (it passed max_slot_wal_keep_size), so changes the trigger had not read are gone.',
    fixes: [
      'Run deactivateTrigger and activateTrigger to recreate the slot, then re-snapshot the tables (table-sync) and start without a state.',
      'Raise max_slot_wal_keep_size, or keep the consumer running so the slot never falls that far behind.',
    ],
  },
  REPLICATION_SLOT_MISMATCH: {
    title: 'Replication slot does not match the state',
    cause: 'The slot is past the stored state\'s position: it was recreated, or another consumer acknowledged changes this state has not seen.',
    fixes: [
      'Make sure one host consumes this trigger, with the state it returned last.',
      'If the slot was recreated, re-snapshot the tables (table-sync) and start without a state.',
    ],
  },
  SYNC_HANDOVER_BROKEN: {
    title: 'Snapshot handover broken',
    cause: 'The copy table-sync handed over can no longer be matched to the changes: a table was truncated while table-sync copied it (no change event can say which copied rows are gone), or a key column was renamed or dropped before the handover ended, or retyped, or given another collation than the one the copy was cut in, or a label of an enum the key holds renamed (or a state recorded before the key types were named with their schema names a type that now resolves to another one, a look-alike made on the search_path), or a key column\'s type holds a domain (an array of it, a composite with a field of it: reading a key would run its CHECK constraints with the flow\'s role) or a composite type of another role.',
    fixes: ['Run table-sync again (without a state), then start table-changes-cdc from the state it hands over.'],
  },
  REPLICATION_SLOT_IN_USE: {
    title: 'Replication slot in use',
    cause: 'Another session is streaming from the trigger\'s replication slot; PostgreSQL lets only one read it at a time.',
    fixes: [
      'Wait: a second subscription retries and takes over when the first ends.',
      'Find the reader: SELECT active_pid FROM pg_catalog.pg_replication_slots WHERE slot_name OPERATOR(pg_catalog.=) \'<slot>\'; and close it (or SELECT pg_catalog.pg_terminate_backend(<pid>);).',
    ],
  },
  CDC_POLL_DECODE_TIMEOUT: {
    title: 'Polled change capture cannot decode the next transaction in time',
    cause: 'pollTrigger of table-changes-cdc peeks the slot over plain SQL, and PostgreSQL decodes a transaction whole, from its start, at every peek: a transaction whose decoding alone takes longer than statementTimeoutMs (tens of millions of rows at 60 s), on any table of the database (watched or not: a bulk load elsewhere counts), times out at every poll, so the trigger cannot move past it and the slot keeps its WAL.',
    fixes: [
      'Read this trigger with subscribeTrigger: it streams the transaction and decodes it once.',
      'Or raise the connection\'s statementTimeoutMs above the time decoding this transaction takes, for the polls that cross it.',
    ],
  },
  CDC_POLL_STALLED: {
    title: 'Polled change capture cannot move on',
    cause: 'pollTrigger of table-changes-cdc read rows from the slot but neither a change nor a new position, so every later poll would read the same rows again; this is a fault in pg-actions, reported instead of returning "nothing new" for good. The slot keeps its WAL meanwhile.',
    fixes: [
      'Read this trigger with subscribeTrigger: it streams the changes instead of peeking the slot.',
      'Report it with the state\'s position, the PostgreSQL version and the transaction (the tables it wrote and their column types).',
    ],
  },
  CDC_KEY_NOT_SENT: {
    title: 'Change without its key',
    cause: 'The server sent a change without the value of a key (replica identity) column: an UPDATE that left a key value stored out of line (TOAST, over about 2 KB) unchanged, on a PostgreSQL minor release from before 2022 that did not log the old key then. A change without its key cannot be applied, so it is not delivered.',
    fixes: [
      'Update PostgreSQL to a current minor release (the fix went back to version 10), or set ALTER TABLE <table> REPLICA IDENTITY FULL so that every UPDATE sends its old row whole: either holds for changes written from then on.',
      'Changes already written stay without their key: deactivateTrigger and activateTrigger again, then copy the table anew with table-sync (handover) into table-changes-cdc.',
    ],
  },
  REPLICATION_THROUGH_POOLER: {
    title: 'Change capture cannot go through a connection pooler',
    cause: 'Streaming changes (table-changes-cdc subscribeTrigger) needs a replication connection to the server itself; a connection pooler refuses it (PgBouncer before 1.23) or does not pool it.',
    fixes: [
      'Give the change-capture trigger the address of the PostgreSQL server itself (connection.pooler "none"); actions and polling triggers can keep the pooler address.',
      'Or poll it (pollTrigger reads the slot over plain SQL, which works through a pooler).',
    ],
  },
  TEMPLATE_ERROR: {
    title: 'Template error',
    cause: 'A {{ }} template could not be rendered: a path that does not exist, or a template in a place that cannot take a value.',
    fixes: [
      'Check the path against the trigger data and earlier steps\' outputs.',
      'Use {{default path "fallback"}} where a value may be missing.',
    ],
  },
  DATABASE_ERROR: {
    title: 'Database error',
    cause: 'PostgreSQL reported an error that has no more specific code here; its SQLSTATE is kept.',
    fixes: ['Read the message and SQLSTATE; the PostgreSQL documentation lists every SQLSTATE (Appendix A).'],
  },
} as const satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;
export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];
