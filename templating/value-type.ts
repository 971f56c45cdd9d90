/**
 * The PostgreSQL type a bare {{ }} in SQL code carries, from its value, the way JDBC (with
 * stringtype=unspecified) and Npgsql type parameters: numbers, booleans, objects and dates
 * are sent with their type; strings (and arrays of strings, null, empty arrays) stay
 * unspecified, so the server infers them from context as it does for a quoted literal (uuid,
 * enum, json and text columns keep working).
 *
 * Integers go as int8, not int4: any integer fits, and int4 = int8 is an indexable cross-type
 * operator, so an index on an int4 column is still used. Other numbers go as numeric, the type
 * PostgreSQL gives a literal such as 1.5: exact against numeric columns (float8 would make the
 * column side convert and lose the index).
 *
 * The names are schema-qualified (numeric and boolean are SQL keywords, parsed as pg_catalog's): the
 * cast is pg-actions' text inside the author's statement, and a look-alike DOMAIN public.int8 found
 * through a search_path that lists pg_catalog after public would run its CHECK with the flow's role
 * (REVIEW7 R134) even in a statement whose author qualified everything.
 */
const INT8 = 'pg_catalog.int8';

export function sqlTypeOf(value: unknown): string | undefined {
  if (Array.isArray(value)) {
    const element = elementType(value);
    return element === undefined ? undefined : `${element}[]`;
  }
  return scalarType(value);
}

function scalarType(value: unknown): string | undefined {
  switch (typeof value) {
    case 'number':
      return Number.isSafeInteger(value) ? INT8 : 'numeric';
    case 'bigint':
      return value >= -(2n ** 63n) && value < 2n ** 63n ? INT8 : 'numeric';
    case 'boolean':
      return 'boolean';
    case 'object':
      if (value instanceof Date) return 'pg_catalog.timestamptz';
      if (value !== null && isPlainObject(value)) return 'pg_catalog.jsonb';
      return undefined;
    default:
      return undefined;
  }
}

/** One type for every non-null element, nested arrays included (int8 and numeric meet in numeric). */
function elementType(items: readonly unknown[]): string | undefined {
  let found: string | undefined;
  for (const item of items) {
    if (item === null) continue;
    const type = Array.isArray(item) ? elementType(item) : scalarType(item);
    if (type === undefined) return undefined;
    if (found === undefined || found === type) found = type;
    else if (isNumeric(found) && isNumeric(type)) found = 'numeric';
    else return undefined;
  }
  return found;
}

const isNumeric = (type: string) => type === INT8 || type === 'numeric';

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
