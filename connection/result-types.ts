/**
 * Which parser a value of a type gets, as Query Rows decides it. Query Rows learns each column's
 * type from RowDescription, where the server gives a domain's base type (through every level); a
 * type the parsers do not know by OID (an enum, a composite, a range, an extension's type) is
 * looked up in pg_type, and if it is an array ("," delimited) its elements get their base type's
 * parser. table-sync (pg_attribute) and table-changes-cdc (pgoutput's Relation message) see the
 * column's declared type, a domain's own OID: they resolve it here, the same way, so their values
 * are the ones Query Rows returns (REVIEW4 R35).
 */
import { arrayParser, isKnownType, jsonSafeTypes } from './types.js';

type Parser = (text: string) => unknown;

/** A type resolved by typeResolutionSql: its base type and, for an array, its element's base type. */
export interface ResolvedType {
  oid: number;
  base: number;
  element: number | null;
}

/**
 * One row (type, oid, base, element) per type OID that `oids` (a SELECT of one oid column) yields:
 * type is that OID as an oid (to join on: every comparison here is exact on built-in types, so no
 * look-alike operator in public is chosen, REVIEW4 R47), oid the same as an int8 (an oid above 2^31 would wrap as an int); base walks
 * domains down to a type that is not one; element is the base's element type (walked the same way)
 * when the base is an array with "," as its delimiter (box[] uses ";": left as text).
 */
export function typeResolutionSql(oids: string): string {
  return `WITH RECURSIVE walk(given, type, depth, inside) AS (
            SELECT DISTINCT given.oid, given.oid, 0, false FROM (${oids}) AS given(oid)
            UNION ALL
            SELECT w.given, CASE WHEN t.typtype OPERATOR(pg_catalog.=) 'd' THEN t.typbasetype ELSE t.typelem END, w.depth OPERATOR(pg_catalog.+) 1, w.inside OR t.typtype OPERATOR(pg_catalog.<>) 'd'
              FROM walk w JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) w.type
             WHERE t.typtype OPERATOR(pg_catalog.=) 'd' OR (NOT w.inside AND t.typcategory OPERATOR(pg_catalog.=) 'A' AND t.typdelim OPERATOR(pg_catalog.=) ','))
          SELECT w.given AS type, w.given::pg_catalog.int8 AS oid,
                 (pg_catalog.array_agg(w.type ORDER BY w.depth DESC) FILTER (WHERE NOT w.inside))[1]::pg_catalog.int8 AS base,
                 (pg_catalog.array_agg(w.type ORDER BY w.depth DESC) FILTER (WHERE w.inside))[1]::pg_catalog.int8 AS element
            FROM walk w GROUP BY w.given`;
}

const asText = jsonSafeTypes.getTypeParser(25);

/** The parser Query Rows gives a column of this resolved type; undefined: the text as it is. */
export function resultParser(type: Pick<ResolvedType, 'base' | 'element'>): Parser | undefined {
  const parse = isKnownType(type.base) ? jsonSafeTypes.getTypeParser(type.base) : type.element !== null ? arrayParser(type.element) : asText;
  return parse === asText ? undefined : parse;
}

/** Per pool (type OIDs are per database): type OID → its parser, undefined for text as it is. */
const byPool = new WeakMap<object, Map<number, Parser | undefined>>();

export function resolvedTypesOf(pool: object): Map<number, Parser | undefined> {
  let known = byPool.get(pool);
  if (!known) byPool.set(pool, (known = new Map()));
  return known;
}

/** Looks up (once per pool) the types of `oids` not known yet; `query` runs the resolution SQL with them as $1. */
export async function resolveTypes(pool: object, oids: readonly number[], query: (sql: string, values: unknown[]) => Promise<{ rows: ResolvedType[] }>): Promise<void> {
  const known = resolvedTypesOf(pool);
  const missing = [...new Set(oids)].filter((oid) => !isKnownType(oid) && !known.has(oid));
  if (missing.length === 0) return;
  const { rows } = await query(typeResolutionSql('SELECT pg_catalog.unnest($1::pg_catalog.oid[])'), [missing]);
  for (const oid of missing) known.set(oid, undefined); // a type dropped meanwhile: its text
  // int8, not int: an OID above 2^31 (a cluster that has made two billion objects) must not wrap to a negative number (REVIEW5 R106).
  for (const row of rows) known.set(Number(row.oid), resultParser({ base: Number(row.base), element: row.element === null ? null : Number(row.element) }));
}

/**
 * A column type's parser without asking the server: known OIDs, and types resolved before on this
 * pool (undefined: text as it is); null when it must be resolved first.
 */
export function knownResultParser(pool: object, oid: number): Parser | undefined | null {
  if (isKnownType(oid)) {
    const parse = jsonSafeTypes.getTypeParser(oid);
    return parse === asText ? undefined : parse;
  }
  const known = byPool.get(pool);
  return known?.has(oid) ? known.get(oid) : null;
}
