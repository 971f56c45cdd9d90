/**
 * How far a polling cursor may safely advance: the delivery horizon of new-row and
 * new-or-updated-row. A transaction takes its ordering value (nextval, now()) when it runs the
 * statement, often before it has a transaction id and always before it commits, so a row with
 * a lower value can become visible after rows with higher values were delivered.
 *
 * Two phases: a capture notes the highest value visible now ("through") and every transaction
 * open in this database right after (virtual transaction ids from pg_locks, prepared ones from
 * pg_prepared_xacts: both readable by any role). Every value handed out later by a source that
 * only grows (sequence, clock) is above "through"; every value handed out earlier belongs to a
 * row already visible or to one of the noted transactions. Once all of those have ended, every
 * row up to "through" is visible, so the cursor may go up to it. Until then, the previous
 * horizon stays: a delay (at least until the noted transactions end), never a skip.
 */
import { execute, PgActionsError } from '../connection/index.js';

export interface Horizon {
  /** Rows whose ordering value is at most this are safe to deliver; null: none yet. */
  through: unknown;
  /** A newer bound that becomes safe once every transaction in waitFor has ended. */
  pending?: { through: unknown; waitFor: string[] };
}

// Transactions open in this database, other than ours: virtual ids of sessions (a transaction
// holds the lock on its own virtual id from start to end, with or without a transaction id) and
// prepared transactions (they outlive their session).
const OPEN_SQL = `SELECT l.virtualxid AS id FROM pg_catalog.pg_locks AS l LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid OPERATOR(pg_catalog.=) l.pid
   WHERE l.locktype OPERATOR(pg_catalog.=) 'virtualxid' AND l.granted AND (l.pid IS NULL OR l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid())
     AND (a.datid IS NULL OR a.datid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database AS d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()))
  UNION ALL SELECT 'prepared ' OPERATOR(pg_catalog.||) p.transaction::pg_catalog.text FROM pg_catalog.pg_prepared_xacts AS p WHERE p.database OPERATOR(pg_catalog.=) pg_catalog.current_database()`;
const STILL_OPEN = `ARRAY(SELECT w FROM pg_catalog.unnest($1::pg_catalog.text[]) AS w WHERE w OPERATOR(pg_catalog.=) ANY (SELECT open.id FROM open)) AS still`;
const RECHECK_MS = [0, 25, 100];

/** The horizon for this poll (then read rows up to horizon.through in a later statement). */
export async function advanceHorizon(connection: unknown, table: string, column: string, current: Horizon | undefined): Promise<Horizon> {
  const previous = checked(current);
  // One statement: "through" is read in its snapshot, taken before pg_locks is read.
  const { rows } = await execute(connection, {
    text: `WITH open AS (${OPEN_SQL}) SELECT (SELECT t.${column} FROM ${table} AS t WHERE t.${column} IS NOT NULL ORDER BY t.${column} DESC LIMIT 1) AS through, ARRAY(SELECT open.id FROM open) AS open, ${STILL_OPEN}`,
    values: [previous.pending?.waitFor ?? []],
    readOnly: true,
    fixedFormats: true, // through: a value of the column, kept in the state as the rows' values are
  });
  const [row] = rows as { through: unknown; open: string[]; still: string[] }[];
  let horizon: Horizon = previous;
  if (previous.pending) {
    if (row!.still.length > 0) return { through: previous.through, pending: { through: previous.pending.through, waitFor: row!.still } };
    horizon = { through: previous.pending.through };
  }
  if (row!.through === null || row!.through === undefined) return horizon;
  let waitFor = row!.open;
  for (const pause of RECHECK_MS) {
    if (waitFor.length === 0) return { through: row!.through };
    if (pause) await new Promise((resolve) => setTimeout(resolve, pause));
    const { rows: again } = await execute(connection, { text: `WITH open AS (${OPEN_SQL}) SELECT ${STILL_OPEN}`, values: [waitFor], readOnly: true });
    waitFor = (again[0] as { still: string[] }).still;
  }
  return waitFor.length === 0 ? { through: row!.through } : { through: horizon.through, pending: { through: row!.through, waitFor } };
}

function checked(horizon: unknown): Horizon {
  if (horizon === undefined) return { through: null };
  const h = horizon as Horizon;
  const valid =
    typeof horizon === 'object' && horizon !== null && 'through' in horizon &&
    (h.pending === undefined || (typeof h.pending === 'object' && h.pending !== null && Array.isArray(h.pending.waitFor) && h.pending.waitFor.every((w) => typeof w === 'string')));
  if (!valid) throw new PgActionsError('TRIGGER_STATE_INVALID', { message: 'state.position.horizon is not what a previous poll returned', problems: ['state.position.horizon is malformed'] });
  return h;
}
