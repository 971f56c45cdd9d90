/**
 * pollTrigger for table-changes-cdc, over plain SQL for hosts that cannot hold a connection open:
 * first advance the slot to the state's position (what the host handled and stored, so the server
 * may release that WAL), then peek the next transactions without consuming them. Nothing moves
 * the slot past the state, so a host that crashes before storing the state gets the same events,
 * same ids, again. When nothing is pending a heartbeat is written (heartbeat.ts), so the next
 * poll can move a quiet slot forward and release WAL. upto_nchanges counts the plugin's ROWS, not
 * changes: before PG 15 every transaction of the database is a BEGIN+COMMIT pair, and (14+) every
 * logical message anyone emits is a row. So a peek that filled its limit with fewer than batchSize
 * changes is repeated, within the same poll, with a larger limit (up to ROWS_CAP): a poll moves past
 * thousands of unrelated transactions instead of ~250. A larger peek that would pass maxResultBytes
 * falls back to the last one that fit.
 *
 * A transaction larger than batchSize (REVIEW4 R39): PostgreSQL ends a peek only at the end of the
 * transaction in which upto_nchanges is reached, so one bulk write would come whole (and pass
 * maxResultBytes at every poll). The peek's rows are therefore cut on the server: a poll stops after
 * batchSize changes even inside a transaction, and its position says where (`inside`: the
 * transaction's xid and commit LSN, its rows and changes delivered). The slot stays at the last
 * whole transaction, so the next poll's peek starts with that transaction again: its rows already
 * delivered are skipped in the query (its Begin, Relation and Type messages are kept: the decoder
 * needs them) and its changes keep their ids ("<commit LSN>:<place>"). Each such poll has the server
 * decode the transaction again: subscribeTrigger reads it once. Rows too wide for maxResultBytes are
 * read in smaller peeks, down to one change (REVIEW6 R114); a transaction whose decoding alone passes
 * statementTimeoutMs cannot be polled past (CDC_POLL_DECODE_TIMEOUT, REVIEW6 R115).
 */
import { execute, PgActionsError } from '../../connection/index.js';
import type { Batch, TriggerArguments } from '../definition.js';
import { columnTypes, type ColumnTypes } from '../../connection/column-types.js';
import { ChangeAssembler, parseLate, type ChangeEvent } from './changes.js';
import { formatLsn, isLsn, parseLsn, type Lsn } from './lsn.js';
import { invalidState } from '../state.js';

/** A poll peeks at most batchSize × this many rows (8× more each time the last peek brought too few changes). */
const ROWS_CAP_FACTOR = 64;
/**
 * …or this many while its peeks bring no change at all: other applications' logical messages, or
 * (before PG 15) other transactions' empty Begin/Commit pairs, which any role can write by the
 * million in a second (REVIEW8 R154). Such rows come back one per run (peekSql), so only decoding
 * costs: about 1.5 s per million rows on a loaded machine, well within statementTimeoutMs.
 */
const NO_CHANGE_ROWS_CAP = 1 << 21;
import { decodePgOutput } from './pgoutput.js';
import { assertSlotMatches, publicationName, slotInUse, slotName, slotState, type CdcConfig } from './slot.js';
import { beat, heartbeatMode, isHeartbeatChange } from './heartbeat.js';
import type { CdcPosition, InsidePosition } from './stream.js';

/** pgoutput's message tags (a row's first byte): Relation and Type messages of a transaction's skipped part are still needed. */
const BEGIN = 66;
/** Relation and Type rows: the tables' and types' layouts the decoder needs before their changes. */
const LAYOUT_TAGS = [82, 89];
/**
 * Rows that carry data of any size: Insert, Update, Delete (a logical Message comes emptied:
 * MESSAGE_EMPTIED). A peek returns at most its limit of them (REVIEW6 R114): the rows around them
 * (Begin, Relation, Type, Commit, Message…) are small.
 */
const HEAVY_TAGS = [73, 85, 68];
/**
 * Rows a peek reads beyond its limit: Begins and Commits around its changes (pairs of empty
 * transactions before PG 15). Relation and Type rows are not counted (REVIEW7 R125): they come
 * with the changes (one per table, one per column of a non-built-in type) and a resumed peek keeps
 * all of its transaction's, so counting them could leave no room for a change.
 */
const ROW_SLACK = 16;

/**
 * pgoutput's Message row (tag 77, a flags byte, its LSN, the prefix NUL-terminated, the content's
 * length, the content): any role may write one of any size, with any prefix (pg-actions' own
 * included), with pg_logical_emit_message, and a poll needs only its LSN (REVIEW7 R135, REVIEW8
 * R144). Every such row comes back as the same message without prefix or content (15 bytes), so
 * its LSN still moves the position and it can never make a peek pass maxResultBytes.
 */
const MESSAGE = 77;
const MESSAGE_EMPTIED = `CASE WHEN pg_catalog.get_byte(c.data, 0) OPERATOR(pg_catalog.=) ${MESSAGE}
           THEN pg_catalog.substring(c.data, 1, 10) OPERATOR(pg_catalog.||) pg_catalog.decode('0000000000', 'hex') ELSE c.data END`;

/**
 * The slot's next rows, at most $2 of them heavy (HEAVY_TAGS: a limit of one reads one change,
 * however wide) and at most $2 + ROW_SLACK others than Relation and Type (the plugin stops at the
 * end of the transaction in which it passes $2 + $3 + ROW_SLACK rows), each with its place after
 * the peek's first Begin and its tag; with $3 > 0 (a poll resuming inside that transaction),
 * without its rows at places 1 to $3 but their Relation and Type messages. A transaction is cut
 * only when it is the peek's first, so every peek that resumes it (its first too, in a new decoding
 * session) has the same rows at the same places. Of each run of Message rows only the last comes
 * back (its LSN is the run's end; REVIEW8 R154), with `read`, the rows the server read.
 */
function peekSql(optionCount: number): string {
  const options = Array.from({ length: optionCount }, (_, i) => `$${i + 4}`).join(', ');
  return `WITH c AS (SELECT c.n, ${MESSAGE_EMPTIED} AS data, pg_catalog.get_byte(c.data, 0) AS tag
                       FROM pg_catalog.pg_logical_slot_peek_binary_changes($1, NULL, LEAST($2::pg_catalog.int8 OPERATOR(pg_catalog.+) $3::pg_catalog.int8 OPERATOR(pg_catalog.+) ${ROW_SLACK}, 2147483647)::pg_catalog.int4, ${options}) WITH ORDINALITY AS c(lsn, xid, data, n)),
               r AS (SELECT pg_catalog.count(*) AS read FROM c),
               p AS (SELECT c.* FROM (SELECT c.*, pg_catalog.lead(c.tag) OVER (ORDER BY c.n) AS next FROM c) c
                      WHERE c.tag OPERATOR(pg_catalog.<>) ${MESSAGE} OR c.next IS NULL OR c.next OPERATOR(pg_catalog.<>) ${MESSAGE}),
               b AS (SELECT pg_catalog.min(p.n) AS n FROM p WHERE p.tag OPERATOR(pg_catalog.=) ${BEGIN}),
               k AS (SELECT p.n, p.data, p.tag, (p.n OPERATOR(pg_catalog.-) b.n)::int AS place FROM p, b
                      WHERE b.n IS NULL OR p.n OPERATOR(pg_catalog.<=) b.n OR p.n OPERATOR(pg_catalog.>) (b.n OPERATOR(pg_catalog.+) $3::int)
                         OR p.tag OPERATOR(pg_catalog.=) ANY (ARRAY[${LAYOUT_TAGS.join(', ')}])),
               h AS (SELECT k.*, pg_catalog.count(*) FILTER (WHERE k.tag OPERATOR(pg_catalog.=) ANY (ARRAY[${HEAVY_TAGS.join(', ')}])) OVER (ORDER BY k.n) AS heavy,
                            pg_catalog.count(*) FILTER (WHERE k.tag OPERATOR(pg_catalog.<>) ALL (ARRAY[${LAYOUT_TAGS.join(', ')}])) OVER (ORDER BY k.n) AS counted FROM k)
          SELECT h.data, h.place, h.tag, r.read FROM h, r
           WHERE h.heavy OPERATOR(pg_catalog.<=) $2::int AND h.counted OPERATOR(pg_catalog.<=) ($2::int OPERATOR(pg_catalog.+) ${ROW_SLACK})
           ORDER BY h.n`;
}

export async function pollChanges(args: TriggerArguments<CdcConfig>, position: CdcPosition, heartbeat = true, keyText = false): Promise<Batch<ChangeEvent, CdcPosition>> {
  const slot = slotName(args);
  const inside = checkedInside(position.inside);
  const state = await slotState(args);
  const from = parseLsn(position.lsn);
  assertSlotMatches(args, state, from);
  if (state.confirmedFlush < from) await execute(args.connection, { text: 'SELECT pg_catalog.pg_replication_slot_advance($1::pg_catalog.name, $2::pg_catalog.pg_lsn)', values: [slot, position.lsn] });
  const messages = state.serverVersion >= 140000;
  const options = ['proto_version', '1', 'publication_names', publicationName(args), ...(messages ? ['messages', 'true'] : [])];
  const batchSize = args.config.batchSize ?? 500;
  const text = peekSql(options.length);
  const peek = async (limit: number) =>
    (await execute(args.connection, { text, values: [slot, limit, inside?.rows ?? 0, ...options], fixedFormats: true }).catch((error: unknown) => {
      throw decodeTimeout(position.lsn, inside, slotInUse(args, error));
    })).rows;
  const types = columnTypes(args.connection);
  let limit = batchSize;
  let rows: Record<string, unknown>[];
  for (;;) {
    try {
      rows = await peek(limit);
      break;
    } catch (error) {
      // Rows too wide for maxResultBytes: fewer of them (down to one; its transaction then comes in several polls).
      if (!(error instanceof PgActionsError && error.code === 'RESULT_TOO_LARGE')) throw error;
      if (limit === 1) throw oneChangeTooLarge(position.lsn, inside, error);
      limit = Math.max(1, Math.floor(limit / 8));
    }
  }
  let batch = readChanges(rows, from, batchSize, types, inside, keyText);
  const shrunk = limit < batchSize; // rows that wide: a larger peek would pass maxResultBytes again
  const cap = () => Math.max(batchSize * ROWS_CAP_FACTOR, batch.events.length === 0 ? NO_CHANGE_ROWS_CAP : 0);
  while (!shrunk && filled(rows, limit, inside?.rows ?? 0) && batch.events.length < batchSize && limit < cap()) {
    limit = Math.min(limit * 8, cap());
    try {
      rows = await peek(limit);
    } catch (error) {
      if (error instanceof PgActionsError && error.code === 'RESULT_TOO_LARGE') break; // keep the peek that fit
      throw error;
    }
    batch = readChanges(rows, from, batchSize, types, inside, keyText);
  }
  if (rows.length > 0 && batch.events.length === 0 && batch.end === from && samePlace(batch.inside, inside)) throw stalled(position.lsn, inside);
  await parseLate(batch.events, types); // a poll's first sight of a domain or enum array: one lookup, then cached
  if (heartbeat && rows.length === 0 && (args.config.heartbeatSeconds ?? 30) > 0) await beat(args, heartbeatMode(args.config, state.serverVersion)).catch(() => undefined); // a failed beat only delays the position: never the poll
  return { events: batch.events, position: batch.inside ? { lsn: formatLsn(batch.end), inside: batch.inside } : { lsn: formatLsn(batch.end) } };
}

/**
 * A peek's rows → batchSize changes from `from`: whole transactions (the one that reaches
 * batchSize included when these rows hold it whole), or, when the limit falls inside the peek's
 * first transaction (or the rows end inside it), its changes so far and where they end (`inside`).
 * A later transaction the rows end inside is left out: the next poll starts with it.
 */
function readChanges(rows: Record<string, unknown>[], from: Lsn, batchSize: number, types: ColumnTypes, resume: InsidePosition | undefined, keyText: boolean): { events: ChangeEvent[]; end: Lsn; inside?: InsidePosition } {
  const assembler = new ChangeAssembler(types, keyText);
  const events: ChangeEvent[] = [];
  let pending: ChangeEvent[] = [];
  let end = from;
  let commits = 0;
  let first = false; // the open transaction is the peek's first
  let place = 0; // the last row's place after the open transaction's Begin
  let resuming = resume;
  for (const row of rows) {
    // Enough: stop between transactions, or inside the peek's first one (cut); a later one goes on to its commit, in these rows.
    if (events.length + pending.length >= batchSize && !(assembler.inTransaction && !first)) break;
    const message = decodePgOutput(Buffer.from(row.data as string, 'base64'));
    place = Math.max(place, Number(row.place));
    if (message.tag === 'begin') {
      first = commits === 0;
      if (resuming && (message.xid !== resuming.xid || formatLsn(message.finalLsn) !== resuming.lsn)) throw lostTransaction(resuming, `${message.xid} at ${formatLsn(message.finalLsn)}`);
    }
    for (const item of assembler.feed(message)) {
      if (item.kind === 'change') {
        if (!isHeartbeatChange(item.event)) pending.push(item.event);
      } else if (item.kind === 'commit') {
        commits++;
        events.push(...pending);
        pending = [];
        if (item.endLsn > end) end = item.endLsn;
      } else if (item.kind === 'message' && !item.transactional && !assembler.inTransaction && item.lsn > end) end = item.lsn;
    }
    if (message.tag === 'begin' && resuming) {
      assembler.resume(resuming.seq);
      place = resuming.rows;
      resuming = undefined;
    }
  }
  if (resuming) return { events, end, inside: resuming }; // its Begin not reached yet (messages before it filled the peek)
  const open = assembler.openTransaction;
  if (!open || !first) return { events, end }; // a later transaction comes whole, or first in a later poll
  events.push(...pending);
  return { events, end, inside: { xid: open.xid, lsn: open.lsn, rows: place, seq: open.seq } };
}

/**
 * The peek stopped at its limit rather than at the slot's end: the server read as many rows as it
 * was allowed (`read`, counted before runs of messages were folded), or the query kept its limit
 * of rows or of heavy rows. There may be more.
 */
function filled(rows: Record<string, unknown>[], limit: number, skipped: number): boolean {
  const read = rows.length > 0 ? Number(rows[0]!.read) : 0;
  return read >= Math.min(limit + skipped + ROW_SLACK, 0x7fffffff)
    || rows.filter((row) => !LAYOUT_TAGS.includes(Number(row.tag))).length >= limit + ROW_SLACK
    || rows.filter((row) => HEAVY_TAGS.includes(Number(row.tag))).length >= limit;
}

function samePlace(a: InsidePosition | undefined, b: InsidePosition | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.xid === b.xid && a.lsn === b.lsn && a.rows === b.rows && a.seq === b.seq);
}

/**
 * A peek that read rows but neither a change nor a new position (REVIEW7 R125): every later poll
 * would read the same rows again. Never returned as an empty batch: a host would see "nothing new" for good.
 */
function stalled(lsn: string, inside: InsidePosition | undefined): PgActionsError {
  const where = inside ? `in transaction ${inside.xid} (commit ${inside.lsn}) after its first ${inside.rows} rows` : `after position ${lsn}`;
  return new PgActionsError('CDC_POLL_STALLED', {
    message: `table-changes-cdc: pollTrigger read the slot ${where} but got neither a change nor a new position: every poll would read the same rows again, so it stops here (the slot keeps its WAL).`,
  });
}

/**
 * A peek decodes its first transaction whole, from its start, whatever its limit (REVIEW6 R115): one
 * whose decoding alone passes statementTimeoutMs times out at every poll. Said plainly, with the way out.
 */
function decodeTimeout(lsn: string, inside: InsidePosition | undefined, error: unknown): unknown {
  if (!(error instanceof PgActionsError && error.code === 'QUERY_TIMEOUT')) return error;
  const where = inside ? `transaction ${inside.xid} (commit ${inside.lsn})` : `the transaction after position ${lsn}`;
  return new PgActionsError('CDC_POLL_DECODE_TIMEOUT', {
    message: `table-changes-cdc: decoding ${where} took longer than statementTimeoutMs; pollTrigger decodes it again from its start at every poll, so it cannot get past it (the slot keeps its WAL meanwhile).`,
    cause: error,
  });
}

/** One change (or logical message) alone passes maxResultBytes: the poll cannot move past it. */
function oneChangeTooLarge(lsn: string, inside: InsidePosition | undefined, cause: unknown): PgActionsError {
  const where = inside ? `in transaction ${inside.xid} (commit ${inside.lsn}) after its first ${inside.rows} rows` : `after position ${lsn}`;
  return new PgActionsError('RESULT_TOO_LARGE', {
    message: `table-changes-cdc: the next change ${where} is larger than maxResultBytes by itself (its pgoutput row, sent as hex text): pollTrigger cannot read past it, and the slot keeps its WAL.`,
    fixes: [
      'Raise the connection\'s maxResultBytes (at most 256 MiB): a change takes about twice its row\'s size.',
      'Or read this trigger with subscribeTrigger, which streams changes of any size.',
    ],
    cause,
  });
}

function checkedInside(inside: unknown): InsidePosition | undefined {
  if (inside === undefined) return undefined;
  const given = (typeof inside === 'object' && inside !== null ? inside : {}) as Record<string, unknown>;
  const count = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
  // rows is bound as an int4 (peekSql): a larger one failed on the server as INVALID_VALUE (REVIEW6 R118).
  const int4 = (value: unknown) => count(value) && (value as number) <= 0x7fffffff;
  if (!count(given.xid) || (given.xid as number) > 0xffffffff || !isLsn(given.lsn) || !int4(given.rows) || !int4(given.seq)) {
    throw invalidState('state.position.inside is not a place inside a transaction as a poll returns it', ['state.position.inside must be the one a previous poll returned']);
  }
  return { xid: given.xid as number, lsn: given.lsn as string, rows: given.rows as number, seq: given.seq as number };
}

function lostTransaction(inside: InsidePosition, found: string) {
  return invalidState(
    `state.position.inside continues transaction ${inside.xid} (commit ${inside.lsn}), but the slot's next transaction is ${found}: the state does not belong to this slot's stream`,
    ['state.position.inside does not match the slot'],
  );
}
