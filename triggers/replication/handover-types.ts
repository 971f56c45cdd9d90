/**
 * A handover's key types come from a state the host stored (n8n static data, a file…), checked for
 * nothing but its trigger and fingerprint: they are never spliced into SQL as they are (REVIEW4 R37).
 * Each must be a type name and nothing else (to_regtype parses it, runs nothing) and is replaced by
 * the schema-qualified name of the type's ultimate base type (through every domain level), written
 * by the server with its identifiers quoted: a key cast to a domain runs the domain's CHECK
 * constraints, which its owner chooses, with the flow's role (REVIEW7 R139); ORDER BY on a domain
 * sorts by its base type's default opclass anyway (key-order.ts). Without the typmod, which
 * comparing keys does not need ("bit", bpchar: no implied length). table-sync records the names
 * with their schema; a name that resolves here to another type than the column has (retyped during
 * the handover, or an older state's unqualified name finding a look-alike earlier on this session's
 * search_path: REVIEW10 R163) is refused, never used to place keys.
 *
 * The type alone does not say how keys order: table-sync cut its batches in `ORDER BY key`, i.e. in
 * each key column's own collation (a text key declared COLLATE "und-x-icu", a domain's collation),
 * while a cast to the type compares in the database's default one (REVIEW4 R43). So each key is
 * compared in the collation the table's column has, named by the server (quote_ident) from the
 * catalog; the state's table and column names are only bound as values.
 */
import { execute, PgActionsError, quoteIdentifier } from '../../connection/index.js';
import { untrustedDomainsSql } from '../domain-reach.js';
import { enumLabelsSql, isLabelsFingerprint, labelsRenamed } from '../enum-labels.js';
import { DEFAULT_BTREE_OPCLASS } from '../key-order.js';
import { invalidState } from '../state.js';

export interface KeyComparison {
  /** The server's schema-qualified name of the key column's ultimate base type (never a domain). */
  type: string;
  /** The column's collation, quoted ("pg_catalog"."C"), or null for a type without one. */
  collation: string | null;
}

interface KeyShape {
  schema: string;
  table: string;
  key: readonly string[];
  types: readonly unknown[];
  /** The collations table-sync cut the batches in (its names for them, quoted); absent in states made before they were recorded. */
  collations?: readonly unknown[];
  /** The fingerprint of the key's enums' labels when table-sync read the table (enum-labels.ts); absent for keys without enums and in states made before it. */
  labels?: unknown;
}

/**
 * The base type `b` can be a primary key's: not a pseudo-type (record, void, anyelement) and with a
 * default btree opclass, its own or a polymorphic one (enum, range, multirange, composite, array) or
 * one it has an implicit binary cast to, as key-order.ts finds it. An edited type without one failed
 * the placement's ORDER BY with a DATABASE_ERROR (REVIEW8 R152): it is refused as not a key type.
 */
/**
 * The key column's (alias col) type as its ALTER … TYPE fix prints it: schema-qualified, with its
 * typmod and array brackets (pg_catalog."varchar"(20)[]). format_type writes a type visible on the
 * search_path in one part (`text`), which the admin's own search_path could resolve to a look-alike
 * domain public.text (R177).
 */
const DECLARED = `(SELECT pg_catalog.quote_ident(dn.nspname::pg_catalog.text) OPERATOR(pg_catalog.||) '.'::pg_catalog.text OPERATOR(pg_catalog.||) pg_catalog.quote_ident(de.typname::pg_catalog.text)
         OPERATOR(pg_catalog.||) COALESCE(pg_catalog.substring(pg_catalog.format_type(col.atttypid, col.atttypmod), '\\([0-9, ]+\\)'::pg_catalog.text), ''::pg_catalog.text)
         OPERATOR(pg_catalog.||) CASE WHEN de.oid OPERATOR(pg_catalog.<>) dt.oid THEN '[]'::pg_catalog.text ELSE ''::pg_catalog.text END
    FROM pg_catalog.pg_type dt
    JOIN pg_catalog.pg_type de ON de.oid OPERATOR(pg_catalog.=) CASE WHEN dt.typelem OPERATOR(pg_catalog.<>) 0::pg_catalog.oid AND dt.typlen OPERATOR(pg_catalog.=) (-1)::pg_catalog.int2 THEN dt.typelem ELSE dt.oid END
    JOIN pg_catalog.pg_namespace dn ON dn.oid OPERATOR(pg_catalog.=) de.typnamespace
   WHERE dt.oid OPERATOR(pg_catalog.=) col.atttypid)`;

const ORDERABLE = `b.typtype OPERATOR(pg_catalog.<>) 'p'::pg_catalog."char" AND EXISTS (SELECT FROM pg_catalog.pg_opclass c
                     WHERE ${DEFAULT_BTREE_OPCLASS})`;

export async function keyComparisons(connection: unknown, shape: KeyShape): Promise<KeyComparison[]> {
  const { types, key } = shape;
  const invalid = () => invalidState('state.position.handover holds a key type that is not the name of a type keys are ordered by (the state was edited)', ['state.position.handover.tables[].types must be the types a previous poll returned']);
  const names = [shape.schema, shape.table, ...key];
  if (!types.every((type) => typeof type === 'string') || !names.every((name) => typeof name === 'string') || key.length !== types.length) throw invalid();
  const recorded = shape.collations;
  if (recorded !== undefined && (!Array.isArray(recorded) || recorded.length !== key.length || !recorded.every((name) => name === null || typeof name === 'string'))) throw invalid();
  if (shape.labels !== undefined && !isLabelsFingerprint(shape.labels)) throw invalid();
  try {
    // Exact built-in argument types everywhere (text, name, oid): no look-alike in public can match better (REVIEW4 R47).
    const { rows } = await execute(connection, {
      text: `WITH RECURSIVE walk(n, type) AS (
               SELECT u.n, pg_catalog.to_regtype(u.t)::pg_catalog.oid FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS u(t, n)
               UNION ALL
               SELECT w.n, d.typbasetype FROM walk w JOIN pg_catalog.pg_type d ON d.oid OPERATOR(pg_catalog.=) w.type AND d.typtype OPERATOR(pg_catalog.=) 'd'::pg_catalog."char")
             SELECT (SELECT pg_catalog.quote_ident(bn.nspname::pg_catalog.text) OPERATOR(pg_catalog.||) '.'::pg_catalog.text OPERATOR(pg_catalog.||) pg_catalog.quote_ident(b.typname::pg_catalog.text)
                       FROM walk w JOIN pg_catalog.pg_type b ON b.oid OPERATOR(pg_catalog.=) w.type AND b.typtype OPERATOR(pg_catalog.<>) 'd'::pg_catalog."char"
                       JOIN pg_catalog.pg_namespace bn ON bn.oid OPERATOR(pg_catalog.=) b.typnamespace
                      WHERE w.n OPERATOR(pg_catalog.=) u.n AND ${ORDERABLE}) AS type,
                    (SELECT pg_catalog.quote_ident(n.nspname::pg_catalog.text) OPERATOR(pg_catalog.||) '.'::pg_catalog.text OPERATOR(pg_catalog.||) pg_catalog.quote_ident(co.collname::pg_catalog.text)
                       FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) co.collnamespace
                      WHERE co.oid OPERATOR(pg_catalog.=) col.attcollation) AS collation,
                    col.attcollation IS NOT NULL AS found,
                    pg_catalog.to_regtype(u.t)::pg_catalog.oid OPERATOR(pg_catalog.<>) col.atttypid AS retyped,
                    pg_catalog.format_type(col.atttypid, NULL) AS current,
                    ${DECLARED} AS declared,
                    (SELECT ${untrustedDomainsSql('w.type')} FROM walk w JOIN pg_catalog.pg_type b ON b.oid OPERATOR(pg_catalog.=) w.type AND b.typtype OPERATOR(pg_catalog.<>) 'd'::pg_catalog."char"
                      WHERE w.n OPERATOR(pg_catalog.=) u.n) AS domains
               FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.name[])) WITH ORDINALITY AS u(t, c, n)
               LEFT JOIN LATERAL (SELECT a.attcollation, a.atttypid, a.atttypmod
                    FROM pg_catalog.pg_class r
                    JOIN pg_catalog.pg_namespace rn ON rn.oid OPERATOR(pg_catalog.=) r.relnamespace
                    JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) r.oid
                   WHERE rn.nspname OPERATOR(pg_catalog.=) $2::pg_catalog.name AND r.relname OPERATOR(pg_catalog.=) $3::pg_catalog.name
                     AND a.attname OPERATOR(pg_catalog.=) u.c AND NOT a.attisdropped) AS col ON true
              ORDER BY u.n`,
      values: [types, shape.schema, shape.table, key],
      readOnly: true,
    });
    if (rows.some((row) => row.type === null)) throw invalid();
    // A key column renamed or dropped (or its table) since the sync: its collation is unknown, and
    // comparing in the database's instead would misplace keys silently (REVIEW5 R107).
    const missing = key.filter((_, i) => rows[i]?.found !== true);
    if (missing.length > 0) {
      throw new PgActionsError('SYNC_HANDOVER_BROKEN', {
        message: `${shape.schema}.${shape.table} no longer has the key column${missing.length > 1 ? 's' : ''} ${missing.map((name) => JSON.stringify(name)).join(', ')} that table-sync copied it by (renamed or dropped, or the table renamed, during the handover): the changes cannot be matched to the copy.`,
      });
    }
    // Keys are read as their base type; one holding another role's domain (an array of it, a composite with a field of it) runs its CHECK with this role (REVIEW8 R142).
    const reach = rows.findIndex((row) => row.domains !== null);
    if (reach >= 0) {
      throw new PgActionsError('SYNC_HANDOVER_BROKEN', {
        message: `${shape.schema}.${shape.table}: the key column ${JSON.stringify(key[reach])} has the type ${String(rows[reach]!.type)}, whose values hold ${String(rows[reach]!.domains)} (a domain, or a composite type that may be given a domain field at any moment) of a role that is neither a superuser nor this one; reading its keys would run the domain's CHECK constraints, its owner's code, with this role's rights: the changes are not matched to the copy.`,
      });
    }
    // The name resolved to another type than the column has: a key retyped during the handover, or a
    // state recorded before names were qualified whose unqualified name now finds a look-alike made
    // earlier on this session's search_path (REVIEW10 R163): keys placed by that type's order are misplaced.
    const retyped = rows.findIndex((row) => row.retyped === true);
    if (retyped >= 0) {
      throw new PgActionsError('SYNC_HANDOVER_BROKEN', {
        message: `${shape.schema}.${shape.table}: the key column ${JSON.stringify(key[retyped])} has the type ${String(rows[retyped]!.current)}, but the handover recorded ${JSON.stringify(types[retyped])}, which names another type here (the column retyped during the handover, or a type of that name made on this session's search_path since): the changes cannot be matched to the copy.`,
      });
    }
    // The column given another collation since the sync (ALTER COLUMN … TYPE text COLLATE "C"): the batches
    // were cut in the recorded one, and keys placed in the column's current order fall in the wrong batch,
    // whose snapshot may already hold their update (REVIEW11 R174). States made before it recorded none.
    const recollated = recorded === undefined ? -1 : rows.findIndex((row, i) => ((row.collation as string | null) ?? null) !== recorded[i]);
    if (recollated >= 0) {
      const column = key[recollated]!;
      const was = recorded![recollated] as string | null;
      const now = (rows[recollated]!.collation as string | null) ?? null;
      const back = was === null ? [] : [`Give the key column back the collation the copy was cut in, then poll again: ALTER TABLE ${quoteIdentifier(shape.schema)}.${quoteIdentifier(shape.table)} ALTER COLUMN ${quoteIdentifier(column)} TYPE ${String(rows[recollated]!.declared)} COLLATE ${was};`];
      throw new PgActionsError('SYNC_HANDOVER_BROKEN', {
        message: `${shape.schema}.${shape.table}: the key column ${JSON.stringify(column)} has the collation ${now ?? 'none'}, but table-sync cut its batches in ${was ?? 'none'} (the column given another collation during the handover): its keys are in another order now, and the changes cannot be matched to the copy.`,
        fixes: [...back, 'Or run table-sync again (without a state), then start table-changes-cdc from the state it hands over.'],
      });
    }
    if (shape.labels !== undefined) await refuseRenamedLabels(connection, shape, shape.labels as string);
    return rows.map((row) => ({ type: row.type as string, collation: (row.collation as string | null) ?? null }));
  } catch (error) {
    // Before PostgreSQL 16 to_regtype raises on what does not parse as a type name (42601, 22P02).
    if (error instanceof PgActionsError && /^(42|22)/.test(error.sqlstate ?? '')) throw invalid();
    throw error;
  }
}

/**
 * The batch bounds of an enum key are its labels' texts, read again here by the enum's input function: a
 * label renamed since table-sync read the table (RENAME VALUE; b and f swapped through a third name) gives
 * a bound another place in the enum's order, while the type oids stay the same, and a change placed by it
 * was judged by another batch's snapshot (REVIEW11 R175). Labels added since are not counted (enum-labels.ts).
 */
async function refuseRenamedLabels(connection: unknown, shape: KeyShape, fingerprint: string): Promise<void> {
  const relation = `(SELECT r.oid FROM pg_catalog.pg_class r JOIN pg_catalog.pg_namespace rn ON rn.oid OPERATOR(pg_catalog.=) r.relnamespace
                      WHERE rn.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name AND r.relname OPERATOR(pg_catalog.=) $2::pg_catalog.name)`;
  const { rows } = await execute(connection, { text: `SELECT ${enumLabelsSql(relation, '$3::pg_catalog.name[]')} AS labels`, values: [shape.schema, shape.table, shape.key], readOnly: true });
  if (!labelsRenamed(fingerprint, (rows[0]?.labels as string | null) ?? null)) return;
  throw new PgActionsError('SYNC_HANDOVER_BROKEN', {
    message: `${shape.schema}.${shape.table}: a label of an enum its key holds was renamed since table-sync read the table (ALTER TYPE … RENAME VALUE): the batches' bounds are label texts, which now name other places in the enum's order, and the changes cannot be matched to the copy.`,
    fixes: ['Rename the labels back (ALTER TYPE … RENAME VALUE) and poll again, or run table-sync again (without a state), then start table-changes-cdc from the state it hands over.'],
  });
}
