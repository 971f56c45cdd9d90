/**
 * The SQL of Schema Overview. One catalog query lists a schema's relations with the planner's
 * estimate; exact counts wrap it in a CTE whose count(*) per table runs in the same statement
 * (one snapshot, one timeout). Table names in the count are quoted by connection/identifiers.
 */
import { quoteIdentifier } from '../connection/index.js';

/** Kinds whose rows are counted exactly on request; views run a query, foreign tables a remote scan. */
export const COUNTED_KINDS = ['table', 'partitioned table', 'materialized view'];

// Never analysed: reltuples is -1 on PostgreSQL 14+, and 0 with no pages and no stats before.
const LEAF_ESTIMATE = `CASE WHEN l.reltuples OPERATOR(pg_catalog.<) 0::real
            OR (l.reltuples OPERATOR(pg_catalog.=) 0::real AND l.relpages OPERATOR(pg_catalog.=) 0
                AND coalesce(s.last_analyze, s.last_autoanalyze, s.last_vacuum, s.last_autovacuum) IS NULL)
          THEN NULL ELSE pg_catalog.round(l.reltuples::pg_catalog.float8) END`;

/**
 * Pages of leaf l with its TOAST table and all their indexes, as of the last VACUUM, ANALYZE or
 * CREATE INDEX: read from pg_class, so without a lock (pg_total_relation_size opens each relation
 * and would wait behind any ALTER TABLE, VACUUM FULL or LOCK on one listed table).
 */
const RELATION_PAGES = `l.relpages OPERATOR(pg_catalog.+) (SELECT coalesce(pg_catalog.sum(x.relpages), 0) FROM pg_catalog.pg_class x
            WHERE x.oid OPERATOR(pg_catalog.=) l.reltoastrelid
               OR x.oid OPERATOR(pg_catalog.=) ANY (SELECT i.indexrelid FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) ANY (ARRAY[l.oid, l.reltoastrelid])))`;

/**
 * Rows of the schema's relations, by name; a schema without relations gives one row with a null
 * name, a schema that does not exist none. A partitioned table's estimate and size add up its
 * leaf partitions (unknown if one leaf has never been analysed); partitions are not listed.
 * Sizes, like estimates, come from the catalog: no relation is opened or locked (the partition tree
 * is walked in pg_inherits: pg_partition_tree() would lock every partition, and wait behind a locked one).
 * $1: the schema (null: current_schema()); $2: whether to include views.
 */
export const OVERVIEW_SQL = `WITH target AS (SELECT n.oid, n.nspname::pg_catalog.text AS schema_name, pg_catalog.has_schema_privilege(n.oid, 'USAGE') AS usable
                  FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) coalesce($1::pg_catalog.text, pg_catalog.current_schema()))
SELECT target.schema_name, c.relname::pg_catalog.text AS name,
       CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'r' THEN 'table' WHEN c.relkind OPERATOR(pg_catalog.=) 'p' THEN 'partitioned table'
            WHEN c.relkind OPERATOR(pg_catalog.=) 'm' THEN 'materialized view' WHEN c.relkind OPERATOR(pg_catalog.=) 'f' THEN 'foreign table'
            WHEN c.relkind OPERATOR(pg_catalog.=) 'v' THEN 'view' END AS kind,
       tree.estimated_rows, tree.size_bytes,
       target.usable AND pg_catalog.has_table_privilege(c.oid, 'SELECT') AS readable, c.relispopulated AS populated,
       ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a
              WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns,
       ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_index i, pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, position), pg_catalog.pg_attribute a
              WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary AND a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
              ORDER BY k.position) AS primary_key
  FROM target
  LEFT JOIN pg_catalog.pg_class c
    ON c.relnamespace OPERATOR(pg_catalog.=) target.oid AND NOT c.relispartition
   AND (c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,m,f}'::pg_catalog."char"[]) OR (c.relkind OPERATOR(pg_catalog.=) 'v' AND $2::boolean))
   -- Any table or column privilege, as the pickers (and psql's \\dp) read "can see".
   AND (pg_catalog.has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
        OR pg_catalog.has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
  LEFT JOIN LATERAL (
    SELECT CASE WHEN pg_catalog.bool_or(t.isleaf AND leaf.estimate IS NULL) THEN NULL
                ELSE coalesce(pg_catalog.sum(leaf.estimate) FILTER (WHERE t.isleaf), 0) END AS estimated_rows,
           CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'f' THEN NULL
                ELSE pg_catalog.sum(${RELATION_PAGES})::pg_catalog.float8 OPERATOR(pg_catalog.*) pg_catalog.current_setting('block_size')::pg_catalog.float8 END AS size_bytes
      FROM (WITH RECURSIVE tree(relid) AS (
              SELECT c.oid UNION ALL SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid WHERE c.relkind OPERATOR(pg_catalog.=) 'p')
            SELECT tree.relid, x.relkind OPERATOR(pg_catalog.<>) 'p' AS isleaf FROM tree JOIN pg_catalog.pg_class x ON x.oid OPERATOR(pg_catalog.=) tree.relid) t
      JOIN pg_catalog.pg_class l ON l.oid OPERATOR(pg_catalog.=) t.relid
      LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid OPERATOR(pg_catalog.=) l.oid
      CROSS JOIN LATERAL (SELECT ${LEAF_ESTIMATE} AS estimate) leaf
  ) tree ON c.relkind OPERATOR(pg_catalog.<>) 'v'
 ORDER BY c.relname COLLATE "C"`;

/** The overview without its ORDER BY, to wrap in a CTE. */
const OVERVIEW_UNORDERED = OVERVIEW_SQL.replace(/\n ORDER BY c\.relname COLLATE "C"$/, '');

/**
 * Exact mode's listing: the overview plus, per relation, the server processes holding or waiting
 * for an ACCESS EXCLUSIVE lock (ALTER TABLE, TRUNCATE, VACUUM FULL, REINDEX, REFRESH MATERIALIZED
 * VIEW, LOCK TABLE) on it, on a partition or inheritance child of it, or on an index of those:
 * count(*) would queue behind them (the planner opens the indexes too). A waiting request counts,
 * as a new lock queues behind it. Read from pg_locks and pg_inherits, so it takes no lock itself;
 * a prepared transaction's lock has no process (null).
 */
export const EXACT_LISTING_SQL = `WITH overview AS (${OVERVIEW_UNORDERED})
SELECT overview.*, ARRAY(
         WITH RECURSIVE tree(relid) AS (
           SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
            WHERE n.nspname OPERATOR(pg_catalog.=) overview.schema_name AND c.relname OPERATOR(pg_catalog.=) overview.name
           UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid)
         SELECT DISTINCT lk.pid FROM pg_catalog.pg_locks lk
          WHERE lk.locktype OPERATOR(pg_catalog.=) 'relation' AND lk.mode OPERATOR(pg_catalog.=) 'AccessExclusiveLock'
            AND (lk.pid IS NULL OR lk.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid())
            AND lk.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
            AND (lk.relation OPERATOR(pg_catalog.=) ANY (SELECT tree.relid FROM tree)
                 OR lk.relation OPERATOR(pg_catalog.=) ANY (SELECT x.indexrelid FROM pg_catalog.pg_index x WHERE x.indrelid OPERATOR(pg_catalog.=) ANY (SELECT tree.relid FROM tree)))
          ORDER BY lk.pid) AS locked_by
  FROM overview
 ORDER BY overview.name COLLATE "C"`;

/**
 * The exact-count statement for the tables listed (names as the catalog spells them): the same
 * overview with one count(*) per table joined in; each name quoted, its text bound as a value.
 */
export function exactCountText(schema: string, tables: readonly string[]): string {
  if (tables.length === 0) return OVERVIEW_SQL;
  const qualifiedSchema = quoteIdentifier(schema, 'input.schema');
  const counts = tables
    .map((table, i) => `($${i + 3}::pg_catalog.text, (SELECT pg_catalog.count(*) FROM ${qualifiedSchema}.${quoteIdentifier(table, 'table')})::pg_catalog.float8)`)
    .join(',\n         ');
  return `WITH overview AS (${OVERVIEW_UNORDERED}),
     counted(name, exact_rows) AS (VALUES ${counts})
SELECT overview.*, counted.exact_rows FROM overview LEFT JOIN counted ON counted.name OPERATOR(pg_catalog.=) overview.name
 ORDER BY overview.name COLLATE "C"`;
}
