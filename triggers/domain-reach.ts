/**
 * Domains a key's values reach through their type's input function (REVIEW8 R142). pg-actions reads
 * a key as its ultimate base type, so a domain key's CHECK constraints (chosen by the domain's owner,
 * and able to call any function of theirs) never run with the flow's role (REVIEW7 R139). A domain
 * deeper in the type is still parsed through: the elements of an array, the fields of a composite,
 * the subtype of a range or multirange. Such a key is refused when one of those domains belongs to a
 * role that is neither a superuser nor the running role (the trust rule pg-actions uses for other roles' code: a superuser's or the running role's is trusted). So is a
 * composite type of such a role: its owner may add a field of a domain at any moment (ALTER TYPE … ADD
 * ATTRIBUTE, or ALTER TABLE … ADD COLUMN for a table's row type, is allowed while a column uses it).
 * Arrays' elements, ranges' subtypes and domains' base types cannot change while a column uses them.
 */

/**
 * The recursive step of a `WITH RECURSIVE reach(type)` over pg_type: from each type reached, the types
 * its values are made of (a domain's base type, an array's element, a composite's fields, a range's
 * subtype, a multirange's range). Ends with the CTE's closing parenthesis.
 */
export const REACH_STEP = `SELECT s.type FROM reach r JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) r.type
        CROSS JOIN LATERAL (
          SELECT t.typbasetype WHERE t.typtype OPERATOR(pg_catalog.=) 'd'::pg_catalog."char"
          UNION ALL SELECT t.typelem WHERE t.typelem OPERATOR(pg_catalog.<>) 0::pg_catalog.oid AND t.typlen OPERATOR(pg_catalog.=) (-1)::pg_catalog.int2
          UNION ALL SELECT f.atttypid FROM pg_catalog.pg_attribute f
                     WHERE t.typrelid OPERATOR(pg_catalog.<>) 0::pg_catalog.oid AND f.attrelid OPERATOR(pg_catalog.=) t.typrelid AND f.attnum OPERATOR(pg_catalog.>) 0 AND NOT f.attisdropped
          UNION ALL SELECT g.rngsubtype FROM pg_catalog.pg_range g WHERE g.rngtypid OPERATOR(pg_catalog.=) t.oid
          UNION ALL SELECT g.rngtypid FROM pg_catalog.pg_range g WHERE g.rngmultitypid OPERATOR(pg_catalog.=) t.oid) AS s(type))`;

/** A scalar subquery: the untrusted domains and composite types (their names, comma-separated) reached from the type `base` (an oid expression), or NULL. */
export function untrustedDomainsSql(base: string): string {
  return `(WITH RECURSIVE reach(type) AS (
       SELECT ${base}
       UNION
       ${REACH_STEP}
     SELECT pg_catalog.string_agg(pg_catalog.format_type(d.oid, NULL), ', ' ORDER BY d.oid)
       FROM reach r JOIN pg_catalog.pg_type d ON d.oid OPERATOR(pg_catalog.=) r.type AND d.typtype OPERATOR(pg_catalog.=) ANY ('{d,c}'::pg_catalog."char"[])
      WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles o WHERE o.oid OPERATOR(pg_catalog.=) d.typowner
                          AND (o.rolsuper OR o.rolname OPERATOR(pg_catalog.=) CURRENT_USER)))`;
}
