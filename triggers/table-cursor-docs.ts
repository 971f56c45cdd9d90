import { fixedFormatsGuarantee } from './time-zone-docs.js';

/** What the polling triggers promise, and the privileges they need, for their generated docs. */
export const CURSOR_GUARANTEES: readonly string[] = [
  'At least once: the cursor moves only when the host stores the state returned after its flows ran; a crash before that repeats the batch with the same event ids.',
  'No skipped rows for equal values: the cursor is (column, primary key), so rows sharing a value on either side of a poll boundary are each delivered once.',
  'Late commits are delivered, once: rows are read only up to a horizon, the highest value that was visible when every transaction then open in the database (pg_locks, pg_prepared_xacts) has since ended. A row with a lower value that commits after higher ones were visible (its transaction took now() or nextval() first and committed last) is therefore still ahead of the cursor when it is read.',
  'Trade-off: a row waits until every transaction that was open in the same database when it became visible has ended, read-only ones included: usually the next poll, but a session left "idle in transaction" (or a long report, or a long VACUUM) holds newer rows back until it ends. A delay, never a loss.',
  'What the horizon covers: ordering values taken inside the writing transaction from a source that only grows: serial/identity (nextval), now(), statement_timestamp(), clock_timestamp(). Not covered: values the application computes before its transaction (e.g. a client-side timestamp), a sequence that cycles or is set back, a server clock set back. Use row-changes when every change must be seen.',
  'No extra privileges: pg_locks, pg_stat_activity (database of each session) and pg_prepared_xacts are readable by every role; a least-privilege role sees the same horizon as a superuser.',
  'Bounded: at most batchSize rows per poll, read through an index on the column when there is one (sampleEvents warns when there is none).',
  'Deleted rows are not seen (use row-changes).',
  'Schema changes are seen at once: a table\'s shape is cached for 30 s, but each poll\'s own statement also reads the primary key\'s columns and their types, and rows read by a key the table no longer has (retyped, or moved to other columns: ADD PRIMARY KEY (tenant, id)) are read again by the current one (REVIEW7 R124, REVIEW8 R145); a table made again with another key type, whose poll fails on the old type\'s parameters, is polled once more with the new one (REVIEW8 R146). A state made with the old key is refused with TRIGGER_STATE_INVALID.',
  'Keys are read back (the cursor, the horizon) as bound parameters of the key\'s ultimate base type: by the type\'s input function, never a cast a type\'s owner could make, and never through a domain\'s CHECK. A key whose type holds another role\'s domain deeper in it (an array of it, a composite with a field of it, a range over it), whose input would run its CHECK with the flow\'s role, or another role\'s composite type (which its owner may give a domain field at any moment), is refused with INVALID_INPUT naming the column and the type, unless its owner is a superuser or the flow\'s role (REVIEW8 R142).',
  'One id per row (per row version for new-or-updated-row): the id holds the primary key as PostgreSQL writes it, so two keys are two ids even where their parsed values are one (a jsonb number beyond a double and the same digits as a string: then `key` is the same for both). Ids were a hash alone before 2026-11-30: a batch repeated across that upgrade comes again with new ids, once.',
  'Exact cursor for every key type: the state keeps the last row\'s values as PostgreSQL writes them (position.afterText), read back by each type\'s own input, not the event\'s parsed values (a jsonb string or a number beyond a double does not read back). A state made before it resumes from its parsed values, as before.',
  "An edited state is refused, not guessed at: a cursor whose values the key's types cannot read (`position.afterText` or `position.after` changed by hand) is TRIGGER_STATE_INVALID naming the field, and the poll is not run.",
  fixedFormatsGuarantee('`key`, `new`, the event id and the state', true),
];

export const cursorPrivileges: readonly string[] = [
  'GRANT USAGE ON SCHEMA <schema> TO <role>;',
  '-- when the primary key\'s (or ordering column\'s) type is in another schema (citext in "extensions"): GRANT USAGE ON SCHEMA <type schema> TO <role>;',
  'GRANT SELECT ON <schema>.<table> TO <role>;',
  '-- recommended: an index starting with the ordering column',
  'CREATE INDEX ON <schema>.<table> (<column>);',
];
