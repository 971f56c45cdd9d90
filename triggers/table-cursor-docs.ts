/** What the polling triggers promise, and the privileges they need, for their generated docs. */
export const CURSOR_GUARANTEES: readonly string[] = [
  'At least once: the cursor moves only when the host stores the state returned after its flows ran; a crash before that repeats the batch with the same event ids.',
  'No skipped rows for equal values: the cursor is (column, primary key), so rows sharing a value on either side of a poll boundary are each delivered once.',
  'Late commits are delivered, once: a row is handed over only when the transaction that wrote it is older than every transaction still writing (txid_snapshot_xmin), and a batch stops before the first row that is not. A row with a lower value that commits after a higher one was read is therefore still ahead of the cursor.',
  'Trade-off: while any transaction that has written something stays open, rows committed after it started wait for it (a delay, never a loss); a transaction left "idle in transaction" holds delivery back until it ends.',
  'Not covered by the horizon: a value assigned long before its transaction first writes (e.g. now() in a transaction that reads for minutes before its INSERT) may be lower than rows already delivered. Use row-changes when every change must be seen.',
  'Bounded: at most batchSize rows per poll, read through an index on the column when there is one (sampleEvents warns when there is none).',
  'Deleted rows are not seen (use row-changes).',
];

export const cursorPrivileges: readonly string[] = [
  'GRANT USAGE ON SCHEMA <schema> TO <role>;',
  'GRANT SELECT ON <schema>.<table> TO <role>;',
  '-- recommended: an index starting with the ordering column',
  'CREATE INDEX ON <schema>.<table> (<column>);',
];
