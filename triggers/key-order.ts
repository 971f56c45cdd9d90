/**
 * How pg-actions compares key and cursor columns without letting the search_path choose the
 * operator (REVIEW6 R109/R110). `t.k > cursor` looks `>` up on the path: for an enum or a domain
 * pg_catalog has no exact operator, so an exact look-alike made in public by any role with CREATE
 * there won and ran with the flow's role; with citext off the path, `>` was text's (case-sensitive)
 * while ORDER BY sorts case-insensitively, and rows were skipped. ORDER BY sorts with the default
 * btree opclass of the column's ultimate base type (through every domain level): the comparisons
 * here are that opclass's own operators, written OPERATOR(schema.op), their operands cast to its
 * input type (an exact match, found in that schema only; a relabel the index still matches). When
 * the input type is polymorphic (anyenum, anyarray, anyrange, record) the operator is a built-in of
 * pg_catalog, and only pg_catalog is searched.
 */
import { execute, forgetTables, PgActionsError, shortCache } from '../connection/index.js';
import { untrustedDomainsSql } from './domain-reach.js';

export interface ColumnOrder {
  /** The column's own type (its pg_attribute.atttypid) when the order was read: a cached order is used only while it still is. */
  type: number;
  /** The column's ultimate base type, schema-qualified, without typmod: what a key's text is read as (key-input.ts). */
  base: string;
  /** The opclass's input type (schema-qualified) the operands are cast to; null when it is polymorphic. */
  cast: string | null;
  /** The opclass's operators' schema and names, by btree strategy. */
  schema: string;
  names: Record<Strategy, string>;
}

type Strategy = 'lt' | 'le' | 'eq' | 'ge' | 'gt';
const STRATEGIES: Record<string, Strategy> = { 1: 'lt', 2: 'le', 3: 'eq', 4: 'ge', 5: 'gt' };
const OPERATOR_NAME = /^[-+*/<>=~!@#%^&|`?]+$/;

/**
 * The default btree opclass `c` that orders values of the base type `b`: its own, a polymorphic one (enum,
 * range, multirange, composite, array), or one `b` has an implicit binary cast to. Shared with the
 * handover's check that a recorded type can be a key's (handover-types.ts).
 */
export const DEFAULT_BTREE_OPCLASS = `c.opcmethod OPERATOR(pg_catalog.=) 403::pg_catalog.oid AND c.opcdefault
  AND (c.opcintype OPERATOR(pg_catalog.=) b.oid
    OR c.opcintype OPERATOR(pg_catalog.=) (CASE WHEN b.typtype OPERATOR(pg_catalog.=) 'e'::pg_catalog."char" THEN 3500 WHEN b.typtype OPERATOR(pg_catalog.=) 'r'::pg_catalog."char" THEN 3831
         WHEN b.typtype OPERATOR(pg_catalog.=) 'm'::pg_catalog."char" THEN 4537 WHEN b.typtype OPERATOR(pg_catalog.=) 'c'::pg_catalog."char" THEN 2249
         ELSE CASE WHEN b.typelem OPERATOR(pg_catalog.<>) 0::pg_catalog.oid AND b.typlen OPERATOR(pg_catalog.=) (-1)::pg_catalog.int2 THEN 2277 END END)::pg_catalog.oid
    OR EXISTS (SELECT FROM pg_catalog.pg_cast k WHERE k.castsource OPERATOR(pg_catalog.=) b.oid AND k.casttarget OPERATOR(pg_catalog.=) c.opcintype
         AND k.castmethod OPERATOR(pg_catalog.=) 'b'::pg_catalog."char" AND k.castcontext OPERATOR(pg_catalog.=) 'i'::pg_catalog."char"))`;

// GetDefaultOpClass's choice, in SQL: the default btree opclass (403 = btree) of the base type, or
// one it is binary-coercible to (anyenum 3500, anyrange 3831, anymultirange 4537, record 2249,
// anyarray 2277, an implicit binary cast: varchar to text), an exact one first, then a preferred
// type. Every comparison is exact on built-in types and qualified (REVIEW4 R47).
const ORDER_SQL = `WITH RECURSIVE walk(n, top, type) AS (
    SELECT u.n, a.atttypid, a.atttypid
      FROM pg_catalog.unnest($2::pg_catalog.name[]) WITH ORDINALITY AS u(c, n)
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass::pg_catalog.oid
       AND a.attname OPERATOR(pg_catalog.=) u.c AND NOT a.attisdropped
    UNION ALL
    SELECT w.n, w.top, t.typbasetype FROM walk w JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) w.type
     WHERE t.typtype OPERATOR(pg_catalog.=) 'd'::pg_catalog."char")
  SELECT w.n, w.top::pg_catalog.int8 AS top, pg_catalog.quote_ident(bn.nspname::pg_catalog.text) OPERATOR(pg_catalog.||) '.'::pg_catalog.text OPERATOR(pg_catalog.||) pg_catalog.quote_ident(b.typname::pg_catalog.text) AS base,
         CASE WHEN it.typtype OPERATOR(pg_catalog.<>) 'p'::pg_catalog."char" THEN pg_catalog.quote_ident(itn.nspname::pg_catalog.text) OPERATOR(pg_catalog.||) '.'::pg_catalog.text OPERATOR(pg_catalog.||) pg_catalog.quote_ident(it.typname::pg_catalog.text) END AS cast,
         ${untrustedDomainsSql('b.oid')} AS domains, pg_catalog.format_type(b.oid, NULL) AS base_name,
         bn.nspname AS base_schema, pg_catalog.has_schema_privilege(bn.oid, 'USAGE') AS base_usable,
         itn.nspname AS cast_schema, itn.oid IS NULL OR pg_catalog.has_schema_privilege(itn.oid, 'USAGE') AS cast_usable,
         (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(ao.amopstrategy, opn.nspname, o.oprname, pg_catalog.has_schema_privilege(opn.oid, 'USAGE')))
            FROM pg_catalog.pg_amop ao JOIN pg_catalog.pg_operator o ON o.oid OPERATOR(pg_catalog.=) ao.amopopr
            JOIN pg_catalog.pg_namespace opn ON opn.oid OPERATOR(pg_catalog.=) o.oprnamespace
           WHERE ao.amopfamily OPERATOR(pg_catalog.=) opc.opcfamily AND ao.amopmethod OPERATOR(pg_catalog.=) 403::pg_catalog.oid
             AND ao.amoplefttype OPERATOR(pg_catalog.=) opc.opcintype AND ao.amoprighttype OPERATOR(pg_catalog.=) opc.opcintype) AS operators
    FROM walk w
    JOIN pg_catalog.pg_type b ON b.oid OPERATOR(pg_catalog.=) w.type AND b.typtype OPERATOR(pg_catalog.<>) 'd'::pg_catalog."char"
    JOIN pg_catalog.pg_namespace bn ON bn.oid OPERATOR(pg_catalog.=) b.typnamespace
    LEFT JOIN LATERAL (
      SELECT c.opcfamily, c.opcintype FROM pg_catalog.pg_opclass c JOIN pg_catalog.pg_type ct ON ct.oid OPERATOR(pg_catalog.=) c.opcintype
       WHERE ${DEFAULT_BTREE_OPCLASS}
       ORDER BY c.opcintype OPERATOR(pg_catalog.=) b.oid DESC, ct.typispreferred DESC LIMIT 1) opc ON true
    LEFT JOIN pg_catalog.pg_type it ON it.oid OPERATOR(pg_catalog.=) opc.opcintype
    LEFT JOIN pg_catalog.pg_namespace itn ON itn.oid OPERATOR(pg_catalog.=) it.typnamespace
   ORDER BY w.n`;

/**
 * Key columns' orders, by connection, table and columns, for as long as describeTable keeps a table's
 * shape: a poll or batch needs them every time. The cache goes by the table's name, so a key retyped
 * (ALTER COLUMN … TYPE, a table dropped and made again) would be compared with the old type's
 * operators (rows skipped and repeated, REVIEW7 R124): every statement that compares with them also
 * reads the key columns' types (keyTypesSql), and its caller reads again when they differ (stale()).
 * The columns themselves come from describeTable's cache as well: keyTypesSql also confirms they are
 * still the table's primary key, else a key moved to other columns (ADD PRIMARY KEY (tenant, id))
 * was paged by the old, no longer unique one for 30 s (REVIEW8 R145).
 */
const orders = shortCache<ColumnOrder[]>(30_000);

/** Each of `columns` of `table` (quoted, as the server resolves it): how its values are ordered and compared. */
export function columnOrders(connection: unknown, table: string, columns: readonly string[], field: string): Promise<ColumnOrder[]> {
  return orders.get(JSON.stringify([connection, table, columns]), () => loadOrders(connection, table, columns, field));
}

/**
 * A scalar subquery (run once per statement) giving the key columns' current types as text, `{25,23}`,
 * or 'primary key changed' when `primaryKey` is no longer the table's primary key, in that order:
 * `table`, `columns` and `primaryKey` are the parameters holding the table (as regclass text), the
 * compared columns' names and the primary key's the statement was built from (name[]).
 */
export function keyTypesSql(table: string, columns: string, primaryKey: string): string {
  return `(SELECT CASE WHEN ${samePrimaryKey(table, primaryKey)} THEN pg_catalog.array_agg(a.atttypid ORDER BY u.n)::pg_catalog.text
                  ELSE 'primary key changed' END
             FROM pg_catalog.unnest(${columns}::pg_catalog.name[]) WITH ORDINALITY AS u(c, n)
             JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) ${table}::pg_catalog.regclass::pg_catalog.oid
              AND a.attname OPERATOR(pg_catalog.=) u.c AND NOT a.attisdropped)`;
}

/** Whether the primary key of `table` is the columns named in `primaryKey`, in that order (false without one). */
function samePrimaryKey(table: string, primaryKey: string): string {
  return `COALESCE((SELECT pg_catalog.array_agg(pa.attname ORDER BY k.n) FROM pg_catalog.pg_index i
                      CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, n)
                      JOIN pg_catalog.pg_attribute pa ON pa.attrelid OPERATOR(pg_catalog.=) i.indrelid AND pa.attnum OPERATOR(pg_catalog.=) k.attnum
                     WHERE i.indrelid OPERATOR(pg_catalog.=) ${table}::pg_catalog.regclass::pg_catalog.oid AND i.indisprimary) OPERATOR(pg_catalog.=) ${primaryKey}::pg_catalog.name[], false)`;
}

/**
 * Whether `types` (keyTypesSql's answer, read by the statement that used `used`) shows the key
 * retyped, or moved to other columns, since the orders or the table's shape were read; if so they are
 * forgotten (and the tables' shapes), and the caller reads again, the table's shape too.
 */
export function stale(connection: unknown, table: string, columns: readonly string[], used: readonly ColumnOrder[], types: unknown): boolean {
  if (types === `{${used.map((order) => order.type).join(',')}}`) return false;
  forgetKeyOrders(connection, table, columns);
  return true;
}

/** Forget the cached orders of `columns` of `table`, and the tables' shapes (as old: the columns' types are read again with them). */
export function forgetKeyOrders(connection: unknown, table: string, columns: readonly string[]): void {
  orders.forget(JSON.stringify([connection, table, columns]));
  forgetTables();
}

async function loadOrders(connection: unknown, table: string, columns: readonly string[], field: string): Promise<ColumnOrder[]> {
  const { rows } = await execute(connection, { text: ORDER_SQL, values: [table, columns], readOnly: true });
  return columns.map((column, i) => {
    const row = rows[i] as ({ top: string; base: string; domains: string | null; base_name: string; cast: string | null; operators: [number, string, string, boolean][] | null } & SchemaUsage) | undefined;
    const operators = (row?.operators ?? []).filter(([strategy]) => STRATEGIES[strategy]);
    if (!row || operators.length !== 5 || new Set(operators.map(([, schema]) => schema)).size !== 1 || !operators.every(([, , name]) => OPERATOR_NAME.test(name))) {
      throw new PgActionsError('INVALID_INPUT', {
        message: `${field}: the column ${JSON.stringify(column)} has a type without a default btree ordering (or it was dropped): its rows cannot be read in order`,
        problems: [`${field}: ${JSON.stringify(column)} cannot be ordered`],
      });
    }
    // The operators and casts are named with their schema, which PostgreSQL lets a role name only with
    // USAGE on it: citext installed in a schema of its own needs a grant a plain ORDER BY does not (REVIEW7 R131).
    const denied = [row.base_usable ? [] : [row.base_schema], row.cast_usable ? [] : [row.cast_schema!], operators.filter(([, , , usable]) => !usable).map(([, schema]) => schema)].flat();
    if (denied.length > 0) throw typeSchemaDenied(field, column, row.base, denied);
    // Read through a domain its owner (not a superuser, not this role) can give any CHECK: its code would run with this role (REVIEW8 R142).
    if (row.domains !== null) {
      throw new PgActionsError('INVALID_INPUT', {
        message: `${field}: the column ${JSON.stringify(column)} has the type ${row.base_name}, whose values hold ${row.domains} (a domain, or a composite type that may be given a domain field at any moment) of a role that is neither a superuser nor this one; reading a key of that type (a cursor, a bound) runs the domain's CHECK constraints, its owner's code, with this role's rights`,
        problems: [`${field}: the type of ${JSON.stringify(column)} holds another role's domain or composite type (${row.domains})`],
        fixes: ['Key the table by a type that holds no domain of another role (a domain at the top is fine: its base type is read), or connect as the domain\'s owner.'],
      });
    }
    const names = Object.fromEntries(operators.map(([strategy, , name]) => [STRATEGIES[strategy]!, name])) as Record<Strategy, string>;
    return { type: Number(row.top), base: row.base, cast: row.cast, schema: quoted(operators[0]![1]), names };
  });
}

interface SchemaUsage {
  base_schema: string;
  base_usable: boolean;
  cast_schema: string | null;
  cast_usable: boolean;
}

/** PERMISSION_DENIED naming the schemas the role may not use, and the grants. */
function typeSchemaDenied(field: string, column: string, type: string, denied: string[]): PgActionsError {
  const schemas = [...new Set(denied)];
  return new PgActionsError('PERMISSION_DENIED', {
    message: `${field}: the column ${JSON.stringify(column)} has the type ${type}; pg-actions compares its values with that type's own operators, named with their schema, and this role has no USAGE on ${schemas.map((schema) => `schema ${JSON.stringify(schema)}`).join(', ')}`,
    problems: [`${field}: no USAGE on ${schemas.map((schema) => `schema ${JSON.stringify(schema)}`).join(', ')} (the type of ${JSON.stringify(column)})`],
    fixes: [...schemas.map((schema) => `GRANT USAGE ON SCHEMA ${quoted(schema)} TO <role>;`), 'Or connect as a role that has USAGE on the schema the type (e.g. citext) was installed in.'],
  });
}

function quoted(schema: string): string {
  return `"${schema.replaceAll('"', '""')}"`;
}

/** `left op right`: left of the column's type, right of its base type (a bound, a cursor). */
export function compare(left: string, strategy: Strategy, right: string, order: ColumnOrder): string {
  return `${operand(left, order)} OPERATOR(${order.schema}.${order.names[strategy]}) ${operand(right, order, order.base)}`;
}

/** An expression of the column's (or `type`) as the opclass's operators take it. */
function operand(expression: string, order: ColumnOrder, type?: string): string {
  return order.cast && order.cast !== type ? `(${expression})::${order.cast}` : expression;
}

/**
 * True when the row `left` (expressions of the columns' types) comes strictly after `right` (of their
 * base types) in the key's order. One qualified row comparison when every column's operator is
 * the same (an index on the key bounds it exactly); else the lexicographic expansion, bounded by
 * its first column (`a >= x AND (a > x OR a = x AND …)`).
 */
export function rowAfter(left: readonly string[], right: readonly string[], orders: readonly ColumnOrder[]): string {
  if (orders.length === 1) return compare(left[0]!, 'gt', right[0]!, orders[0]!);
  const first = orders[0]!;
  if (orders.every((o) => o.schema === first.schema && o.names.gt === first.names.gt)) {
    return `ROW(${left.map((l, i) => operand(l, orders[i]!)).join(', ')}) OPERATOR(${first.schema}.${first.names.gt}) ROW(${right.map((r, i) => operand(r, orders[i]!, orders[i]!.base)).join(', ')})`;
  }
  const after = orders.map((order, i) => [...orders.slice(0, i).map((o, j) => compare(left[j]!, 'eq', right[j]!, o)), compare(left[i]!, 'gt', right[i]!, order)].join(' AND '));
  return `${compare(left[0]!, 'ge', right[0]!, first)} AND (${after.map((a) => `(${a})`).join(' OR ')})`;
}
