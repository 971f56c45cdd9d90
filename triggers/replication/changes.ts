/**
 * Turns pgoutput messages into change events: one per row change (one per table for TRUNCATE),
 * in commit order, each with a deterministic id ("<commit LSN>:<place in the transaction>": the same
 * on every redelivery, distinct for changes that share a WAL record) and
 * the commit time. Unchanged TOASTed values are listed in `unchanged`, never reported as null.
 */
import { textParser } from '../../connection/replication.js';
import type { TriggerEvent } from '../definition.js';
import type { TableChangesCdcEvent } from '../../schemas/types.gen.js';
import { formatLsn, type Lsn } from './lsn.js';
import type { PgOutputMessage, RelationColumn, TupleValue } from './pgoutput.js';
import { setField } from '../../connection/row-field.js';

/** The event as its schema (schemas/triggers/table-changes-cdc.event.schema.json) describes it. */
export type ChangeEvent = TableChangesCdcEvent & TriggerEvent;

interface Relation {
  schema: string;
  name: string;
  columns: RelationColumn[];
  names: string[];
  parsers: ((text: string) => unknown)[];
  /** The replica identity columns' places. */
  keys: number[];
}

export type Assembled =
  | { kind: 'change'; event: ChangeEvent }
  | { kind: 'commit'; endLsn: Lsn }
  | { kind: 'message'; lsn: Lsn; prefix: string; transactional: boolean }
  | { kind: 'none' };

const PG_EPOCH_US = 946_684_800_000_000n;

export class ChangeAssembler {
  private readonly relations = new Map<number, Relation>();
  private transaction: { lsn: string; xid: number; commitTime: string; seq: number } | undefined;

  /** An assembler that knows the same tables: replays a streamed transaction while this one goes on. */
  fork(): ChangeAssembler {
    const copy = new ChangeAssembler();
    for (const [oid, relation] of this.relations) copy.relations.set(oid, relation);
    return copy;
  }

  /** True between a transaction's Begin and its Commit. */
  get inTransaction(): boolean {
    return this.transaction !== undefined;
  }

  feed(message: PgOutputMessage): Assembled[] {
    switch (message.tag) {
      case 'begin':
        this.transaction = { lsn: formatLsn(message.finalLsn), xid: message.xid, commitTime: isoTime(message.commitTime), seq: 0 };
        return [];
      case 'commit':
        this.transaction = undefined;
        return [{ kind: 'commit', endLsn: message.endLsn }];
      case 'relation':
        this.relations.set(message.relationOid, {
          schema: message.schema,
          name: message.name,
          columns: message.columns,
          names: message.columns.map((column) => column.name),
          parsers: message.columns.map((column) => textParser(column.typeOid)),
          keys: message.columns.flatMap((column, i) => (column.key ? [i] : [])),
        });
        return [];
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
    event.key = pick(relation, after?.row ?? before?.row ?? {});
    return { kind: 'change', event };
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

/** Microseconds since 2000-01-01 → ISO 8601 with six fractional digits. */
export function isoTime(microseconds: bigint): string {
  const unix = microseconds + PG_EPOCH_US;
  const iso = new Date(Number(unix / 1000n)).toISOString();
  return iso.slice(0, -1) + String(Number(((unix % 1000n) + 1000n) % 1000n)).padStart(3, '0') + 'Z';
}
