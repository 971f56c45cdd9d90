/**
 * Key values read back from JSON (table-sync's cursor, the handover's batch bounds and changed keys)
 * through each type's input function, never through a cast from text (REVIEW8 R143): a cast is looked
 * up in pg_cast when the statement is parsed, the owner of a type may make one from text (CREATE CAST
 * (text AS app.mood) WITH FUNCTION …) at any moment, and its function would run with the flow's role;
 * no check made before the statement can close that gap. pg_catalog.jsonb_to_record hands a JSON
 * string to the column type's input function (enum_in, array_in, record_in, range_in, citext's…),
 * which consults no pg_cast (a bound parameter, `$1::type`, is read the same way). Two exceptions: a
 * jsonb key, which jsonb_to_record would keep as a JSON string, is cast from its text (a cast between
 * built-in types, which only a superuser can make), and a bytea value as events carry it (base64) is decoded.
 */

/** One key column read from the record: the type `x` is declared with, and the value's expression. */
function column(alias: string, i: number, type: string, base64: boolean): { declared: string; value: string } {
  const name = `${alias}.c${i}`;
  if (type === 'pg_catalog.jsonb') return { declared: 'pg_catalog.text', value: `(${name})::pg_catalog.jsonb` };
  if (base64 && type === 'pg_catalog.bytea') return { declared: 'pg_catalog.text', value: `pg_catalog.decode(${name}, 'base64')` };
  return { declared: type, value: name };
}

/** The record's column definition list (`c0 type, c1 type`) and each column's value, for `FROM pg_catalog.jsonb_to_record(…) AS <alias>(<definition>)`. */
export function keyRecord(alias: string, types: readonly string[], base64 = false): { definition: string; values: string[] } {
  const columns = types.map((type, i) => column(alias, i, type, base64));
  return { definition: columns.map(({ declared }, i) => `c${i} ${declared}`).join(', '), values: columns.map(({ value }) => value) };
}

/** Each key column as a scalar subquery on `json` (an object {"c0": …, "c1": …}): read once per statement. */
export function keyValues(json: string, types: readonly string[], base64: boolean): string[] {
  const { definition, values } = keyRecord('x', types, base64);
  return values.map((value) => `(SELECT ${value} FROM pg_catalog.jsonb_to_record(${json}) AS x(${definition}))`);
}

/** Key values (an array, one per column) as the object keyRecord reads: {"c0": …, "c1": …}. */
export function keyObject(values: readonly unknown[]): Record<string, unknown> {
  return Object.fromEntries(values.map((value, i) => [`c${i}`, value]));
}
