/**
 * Arrays of types the parsers do not know by OID (enums, domains, types from extensions) arrive
 * as text such as "{sad,happy}". Their OIDs differ per database, so pg_type is asked once per
 * pool and OID, and such columns are turned into JSON arrays like every other array.
 */
import type { StatementOutcome } from './statement.js';
import { arrayParser, isKnownType } from './types.js';

type Parser = (text: string) => unknown;
/** undefined: looked up, not an array (its text is the value). */
const byPool = new WeakMap<object, Map<number, Parser | undefined>>();

/** The element's base type, through up to three domains (a domain over a domain over …). */
const LOOKUP = `SELECT t.oid::int AS oid, t.typcategory = 'A' AND t.typdelim = ',' AS is_array,
                       coalesce(nullif(d2.typbasetype, 0), nullif(d1.typbasetype, 0), nullif(e.typbasetype, 0), t.typelem)::int AS element
                  FROM pg_catalog.pg_type t
                  LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem
                  LEFT JOIN pg_catalog.pg_type d1 ON d1.oid = e.typbasetype
                  LEFT JOIN pg_catalog.pg_type d2 ON d2.oid = d1.typbasetype
                 WHERE t.oid = ANY($1::oid[])`;

interface TypeRow {
  oid: number;
  is_array: boolean;
  element: number;
}

/** Whether parseUnknownArrays() must ask the server about a column's type (else it needs no query). */
export function needsTypeLookup(pool: object, outcome: StatementOutcome): boolean {
  if (outcome.rows.length === 0) return false;
  const known = byPool.get(pool);
  return outcome.fields.some((field) => !isKnownType(field.dataTypeID) && !known?.has(field.dataTypeID));
}

/** `query` runs on the step's session, under its deadline. */
export async function parseUnknownArrays(
  pool: object,
  query: (sql: string, values: unknown[]) => Promise<{ rows: TypeRow[] }>,
  outcome: StatementOutcome,
): Promise<void> {
  const unknown = outcome.fields.filter((field) => !isKnownType(field.dataTypeID));
  if (unknown.length === 0 || outcome.rows.length === 0) return;
  let known = byPool.get(pool);
  if (!known) byPool.set(pool, (known = new Map()));
  const missing = [...new Set(unknown.map((field) => field.dataTypeID))].filter((oid) => !known!.has(oid));
  if (missing.length) {
    const { rows } = await query(LOOKUP, [missing]);
    for (const oid of missing) known.set(oid, undefined);
    for (const row of rows) if (row.is_array) known.set(row.oid, arrayParser(row.element));
  }
  for (const field of unknown) {
    const parse = known.get(field.dataTypeID);
    if (!parse) continue;
    for (const row of outcome.rows) {
      const value = row[field.name];
      if (typeof value === 'string') row[field.name] = parse(value);
    }
  }
}
