/**
 * Column types of a connection's database as Query Rows parses them (result-types.ts), for readers
 * that get a column's declared type OID rather than a RowDescription (table-changes-cdc's Relation
 * messages): known types at once, the others (domains, enums, composites, ranges) looked up once
 * per pool and OID.
 */
import { configOf, execute } from './execute.js';
import { poolFor } from './pools.js';
import { knownResultParser, resolveTypes, type ResolvedType } from './result-types.js';

type Parser = (text: string) => unknown;

export interface ColumnTypes {
  /** The parser of a column of this type (undefined: its text as it is); null until resolve() looked it up. */
  parserOf(oid: number): Parser | undefined | null;
  /** Looks up the types not known yet (one query, none when all are known). */
  resolve(oids: readonly number[]): Promise<void>;
}

export function columnTypes(connection: unknown): ColumnTypes {
  const pool = () => poolFor(configOf(connection)).pool;
  return {
    parserOf: (oid) => knownResultParser(pool(), oid),
    resolve: (oids) =>
      resolveTypes(pool(), oids, async (text, values) => (await execute(connection, { text, values, readOnly: true })) as unknown as { rows: ResolvedType[] }),
  };
}
