/**
 * Turns pgoutput messages into change events: one per row change (one per table for TRUNCATE),
 * in commit order, each with a deterministic id ("<commit LSN>:<place in the transaction>": the same
 * on every redelivery, distinct for changes that share a WAL record) and
 * the commit time. Unchanged TOASTed values are listed in `unchanged`, never reported as null.
 */
import type { ColumnTypes } from '../../connection/column-types.js';
import type { TriggerEvent } from '../definition.js';
import type { TableChangesCdcEvent } from '../../schemas/types.gen.js';
import { formatLsn, type Lsn } from './lsn.js';
import type { PgOutputMessage, RelationColumn, TupleValue } from './pgoutput.js';
import { setField } from '../../connection/row-field.js';
import { PgActionsError } from '../../connection/index.js';

/** The event as its schema (schemas/triggers/table-changes-cdc.event.schema.json) describes it. */
export type ChangeEvent = TableChangesCdcEvent & TriggerEvent;

interface Relation {
  schema: string;
  name: string;
  columns: RelationColumn[];
  names: string[];
  parsers: Parser[];
  /** Places of the columns whose type (a domain, an enum array, …) was not resolved yet: their text is kept until it is. */
  late: number[];
  /** The replica identity columns' places. */
  keys: number[];
}

export type Assembled =
  | { kind: 'change'; event: ChangeEvent }
  | { kind: 'commit'; endLsn: Lsn }
  | { kind: 'message'; lsn: Lsn; prefix: string; transactional: boolean }
  | { kind: 'none' };

const PG_EPOCH_US = 946_684_800_000_000n;

type Parser = (text: string) => unknown;
const asText: Parser = (text) => text;
/** Events assembled before their columns' types were resolved: column name → type OID, for parseLate(). */
const lateColumns = new WeakMap<ChangeEvent, [string, number][]>();
let lateEvents = 0;

/** A change's tuples as the server wrote them (pgoutput text), kept when the assembler is asked to. */
interface ChangeText {
  names: readonly string[];
  new?: TupleValue[];
  old?: TupleValue[];
}
const changeTexts = new WeakMap<ChangeEvent, ChangeText>();

/**
 * The server's text of `columns` in a change's new and old row (null: SQL NULL or not sent; a
 * value a change left unchanged (TOASTed) is taken from the other row), or undefined when the
 * assembler did not keep it. Exact for every type, unlike the parsed values (REVIEW5 R101-R103):
 * the handover compares these with the sync's batch bounds (handover-filter.ts).
 */
export function keyTextOf(event: ChangeEvent, columns: readonly string[]): { new: (string | null)[]; old: (string | null)[] } | undefined {
  const text = changeTexts.get(event);
  if (!text) return undefined;
  const places = columns.map((column) => text.names.indexOf(column));
  const from = (first: TupleValue[] | undefined, second: TupleValue[] | undefined) =>
    places.map((at) => {
      const value = at === -1 ? null : typeof first?.[at] === 'string' ? first[at] : second?.[at];
      return typeof value === 'string' ? value : null;
    });
  return { new: from(text.new, text.old), old: from(text.old, text.new) };
}

export class ChangeAssembler {
  private readonly relations = new Map<number, Relation>();
  private transaction: { lsn: string; xid: number; commitTime: string; seq: number } | undefined;

  /**
   * `types`: the database's column types, parsed as Query Rows parses them (a domain as its base type).
   * `keepText`: remember each change's tuples as the server wrote them (keyTextOf), for a handover.
   */
  constructor(
    private readonly types: Pick<ColumnTypes, 'parserOf'>,
    private readonly keepText = false,
  ) {}

  /** An assembler that knows the same tables: replays a streamed transaction while this one goes on. */
  fork(): ChangeAssembler {
    const copy = new ChangeAssembler(this.types, this.keepText);
    for (const [oid, relation] of this.relations) copy.relations.set(oid, relation);
    return copy;
  }

  /** True between a transaction's Begin and its Commit. */
  get inTransaction(): boolean {
    return this.transaction !== undefined;
  }

  /** The transaction between its Begin and its Commit: its commit LSN, xid and changes so far. */
  get openTransaction(): { lsn: string; xid: number; seq: number } | undefined {
    const open = this.transaction;
    return open && { lsn: open.lsn, xid: open.xid, seq: open.seq };
  }

  /** Continues the open transaction after its first `seq` changes (a poll that resumes inside it, their rows skipped). */
  resume(seq: number): void {
    if (!this.transaction) throw new Error('pgoutput: no transaction to resume');
    this.transaction.seq = seq;
  }

  feed(message: PgOutputMessage): Assembled[] {
    switch (message.tag) {
      case 'begin':
        this.transaction = { lsn: formatLsn(message.finalLsn), xid: message.xid, commitTime: isoTime(message.commitTime), seq: 0 };
        return [];
      case 'commit':
        this.transaction = undefined;
        return [{ kind: 'commit', endLsn: message.endLsn }];
      case 'relation': {
        // The Relation message gives each column's declared type: a domain's own OID, resolved
        // to what Query Rows parses (REVIEW4 R35) once per relation; an unknown one is looked up
        // later (parseLate) and its values kept as text until then.
        const relation: Relation = {
          schema: message.schema,
          name: message.name,
          columns: message.columns,
          names: message.columns.map((column) => column.name),
          parsers: message.columns.map(() => asText),
          keys: message.columns.flatMap((column, i) => (column.key ? [i] : [])),
          late: message.columns.map((_, i) => i),
        };
        this.resolve(relation);
        this.relations.set(message.relationOid, relation);
        return [];
      }
      case 'insert':
        return [this.change('INSERT', message.relationOid, { new: message.new })];
      case 'update':
        return [this.change('UPDATE', message.relationOid, { new: message.new, old: message.old, oldKind: message.oldKind ?? 'none' })];
      case 'delete':
        return [this.change('DELETE', message.relationOid, { old: message.old, oldKind: message.oldKind })];
      case 'truncate':
        return message.relationOids.map((oid) => this.change('TRUNCATE', oid, {}));
      case 'message':
        return [{ kind: 'message', lsn: message.lsn, prefix: message.prefix, transactional: message.transactional }];
      default:
        return [];
    }
  }

  private change(
    op: ChangeEvent['op'],
    relationOid: number,
    tuples: { new?: TupleValue[]; old?: TupleValue[] | null; oldKind?: 'key' | 'full' | 'none' },
  ): Assembled {
    const relation = this.relations.get(relationOid);
    const transaction = this.transaction;
    if (!relation || !transaction) throw new Error(`pgoutput: a change of relation ${relationOid} outside a transaction or before its Relation message`);
    if (relation.late.length) this.resolve(relation);
    const seq = transaction.seq++;
    const event: ChangeEvent = {
      id: `${transaction.lsn}:${seq}`, // unique per change, the same on every redelivery
      op,
      schema: relation.schema,
      table: relation.name,
      lsn: transaction.lsn,
      seq,
      xid: transaction.xid,
      commitTime: transaction.commitTime,
      key: {},
    };
    const after = tuples.new ? rowOf(relation, tuples.new) : undefined;
    const before = tuples.old ? rowOf(relation, tuples.old) : undefined;
    if (after) {
      event.new = after.row;
      if (after.unchanged.length) event.unchanged = after.unchanged;
    }
    if (tuples.oldKind) {
      event.oldRow = tuples.oldKind;
      if (before) event.old = tuples.oldKind === 'key' ? pick(relation, before.row) : before.row;
    }
    if (after || before) event.key = keyOf(relation, event, after?.row, before?.row);
    if (this.keepText) changeTexts.set(event, { names: relation.names, ...(tuples.new ? { new: tuples.new } : {}), ...(tuples.old ? { old: tuples.old } : {}) });
    if (relation.late.length) {
      lateColumns.set(event, relation.late.map((i) => [relation.names[i]!, relation.columns[i]!.typeOid]));
      lateEvents++;
    }
    return { kind: 'change', event };
  }

  /** Takes the parsers of the relation's columns whose types are known now. */
  private resolve(relation: Relation): void {
    relation.late = relation.late.filter((i) => {
      const parse = this.types.parserOf(relation.columns[i]!.typeOid);
      if (parse === null) return true;
      relation.parsers[i] = parse ?? asText;
      return false;
    });
  }
}

/** The type OIDs of columns some events still hold as text (none: nothing to resolve). */
export function lateTypes(events: readonly ChangeEvent[]): number[] {
  if (lateEvents === 0) return [];
  const oids = new Set<number>();
  for (const event of events) for (const [, oid] of lateColumns.get(event) ?? []) oids.add(oid);
  return [...oids];
}

/**
 * Parses the values events hold as text because their types were not resolved when they were
 * assembled: looks the types up (once per pool), then parses new, old and key in place.
 */
export async function parseLate(events: readonly ChangeEvent[], types: ColumnTypes): Promise<void> {
  const oids = lateTypes(events);
  if (oids.length === 0) return;
  await types.resolve(oids);
  for (const event of events) {
    const columns = lateColumns.get(event);
    if (!columns) continue;
    lateColumns.delete(event);
    lateEvents--;
    for (const [name, oid] of columns) {
      const parse = types.parserOf(oid);
      if (!parse) continue;
      for (const row of [event.new, event.old, event.key] as (Record<string, unknown> | undefined)[]) {
        const value = row && Object.hasOwn(row, name) ? row[name] : undefined;
        if (typeof value === 'string') setField(row!, name, parse(value));
      }
    }
  }
}

const NONE: string[] = [];

function rowOf(relation: Relation, tuple: TupleValue[]): { row: Record<string, unknown>; unchanged: string[] } {
  const row: Record<string, unknown> = {};
  let unchanged = NONE;
  const { names, parsers } = relation;
  const count = Math.min(tuple.length, names.length);
  for (let i = 0; i < count; i++) {
    const value = tuple[i];
    if (value === null) setField(row, names[i]!, null);
    else if (typeof value === 'string') setField(row, names[i]!, parsers[i]!(value));
    else (unchanged === NONE ? (unchanged = []) : unchanged).push(names[i]!);
  }
  return { row, unchanged };
}

/** The replica identity columns present in a row. */
function pick(relation: Relation, row: Record<string, unknown>): Record<string, unknown> {
  const key: Record<string, unknown> = {};
  for (const i of relation.keys) {
    const name = relation.names[i]!;
    if (Object.hasOwn(row, name)) setField(key, name, row[name]);
  }
  return key;
}

/**
 * The replica identity columns' values: from the new row, else from the old one (REVIEW7 R128: an
 * UPDATE that left a key stored out of line (TOAST) unchanged sends it only in the old key tuple).
 * A key column in neither fails loudly: an event without its key cannot be applied.
 */
function keyOf(relation: Relation, event: ChangeEvent, after: Record<string, unknown> | undefined, before: Record<string, unknown> | undefined): Record<string, unknown> {
  const key: Record<string, unknown> = {};
  for (const i of relation.keys) {
    const name = relation.names[i]!;
    const row = after && Object.hasOwn(after, name) ? after : before && Object.hasOwn(before, name) ? before : undefined;
    if (!row) throw keyNotSent(event, name);
    setField(key, name, row[name]);
  }
  return key;
}

function keyNotSent(event: ChangeEvent, column: string): PgActionsError {
  return new PgActionsError('CDC_KEY_NOT_SENT', {
    message: `table-changes-cdc: the server sent the ${event.op} of ${event.schema}.${event.table} in transaction ${event.xid} (commit ${event.lsn}) without the value of its key column ${column} (a key value stored out of line (TOAST) that an UPDATE left unchanged, on a PostgreSQL release that did not log the old key then): a change without its key cannot be applied, so it is not delivered.`,
  });
}

/** Microseconds since 2000-01-01 → ISO 8601 with six fractional digits. */
export function isoTime(microseconds: bigint): string {
  const unix = microseconds + PG_EPOCH_US;
  const iso = new Date(Number(unix / 1000n)).toISOString();
  return iso.slice(0, -1) + String(Number(((unix % 1000n) + 1000n) % 1000n)).padStart(3, '0') + 'Z';
}
