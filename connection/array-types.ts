/**
 * Arrays of types the parsers do not know by OID (enums, domains, types from extensions) arrive
 * as text such as "{sad,happy}". Their OIDs differ per database, so pg_type is asked once per
 * pool and OID (result-types.ts, which table-sync and table-changes-cdc share), and such columns
 * are turned into JSON arrays like every other array.
 */
import { resolvedTypesOf, resolveTypes, type ResolvedType } from './result-types.js';
import type { StatementOutcome } from './statement.js';
import { isKnownType } from './types.js';

/** Whether parseUnknownArrays() must ask the server about a column's type (else it needs no query). */
export function needsTypeLookup(pool: object, outcome: StatementOutcome): boolean {
  if (outcome.rows.length === 0) return false;
  const known = resolvedTypesOf(pool);
  return outcome.fields.some((field) => !isKnownType(field.dataTypeID) && !known.has(field.dataTypeID));
}

/** `query` runs on the step's session, under its deadline. */
export async function parseUnknownArrays(
  pool: object,
  query: (sql: string, values: unknown[]) => Promise<{ rows: ResolvedType[] }>,
  outcome: StatementOutcome,
): Promise<void> {
  const unknown = outcome.fields.filter((field) => !isKnownType(field.dataTypeID));
  if (unknown.length === 0 || outcome.rows.length === 0) return;
  await resolveTypes(pool, unknown.map((field) => field.dataTypeID), query);
  const known = resolvedTypesOf(pool);
  for (const field of unknown) {
    const parse = known.get(field.dataTypeID);
    if (!parse) continue;
    for (const row of outcome.rows) {
      const value = row[field.name];
      if (typeof value === 'string') row[field.name] = parse(value);
    }
  }
}
