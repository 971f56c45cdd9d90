/**
 * The SQL of Schema Overview. One catalog query lists a schema's relations with the planner's
 * estimate; exact counts wrap it in a CTE whose count(*) per table runs in the same statement
 * (one snapshot, one timeout). Table names in the count are quoted by connection/identifiers.
 */
import { quoteIdentifier } from '../connection/index.js';

/** Kinds whose rows are counted exactly on request; views run a query, foreign tables a remote scan. */
export const COUNTED_KINDS = ['table', 'partitioned table', 'materialized view'];

// Never analysed: reltuples is -1 on PostgreSQL 14+, and 0 with no pages and no stats before.
const LEAF_ESTIMATE = `CASE WHEN l.reltuples < 0::real
            OR (l.reltuples = 0::real AND l.relpages = 0
                AND coalesce(s.last_analyze, s.last_autoanalyze, s.last_vacuum, s.last_autovacuum) IS NULL)
          THEN NULL ELSE round(l.reltuples)::float8 END`;

/**
 * Pages of leaf l with its TOAST table and all their indexes, as of the last VACUUM, ANALYZE or
 * CREATE INDEX: read from pg_class, so without a lock (pg_total_relation_size opens each relation
 * and would wait behind any ALTER TABLE, VACUUM FULL or LOCK on one listed table).
 */
const RELATION_PAGES = `l.relpages + (SELECT coalesce(sum(x.relpages), 0) FROM pg_class x
            WHERE x.oid = l.reltoastrelid
               OR x.oid IN (SELECT i.indexrelid FROM pg_index i WHERE i.indrelid IN (l.oid, l.reltoastrelid)))`;

/**
 * Rows of the schema's relations, by name; a schema without relations gives one row with a null
 * name, a schema that does not exist none. A partitioned table's estimate and size add up its
 * leaf partitions (unknown if one leaf has never been analysed); partitions are not listed.
 * Sizes, like estimates, come from the catalog: no relation is opened or locked (the partition tree
 * is walked in pg_inherits: pg_partition_tree() would lock every partition, and wait behind a locked one).
 * $1: the schema (null: current_schema()); $2: whether to include views.
 */
export const OVERVIEW_SQL = `WITH target AS (SELECT n.oid, n.nspname::text AS schema_name, has_schema_privilege(n.oid, 'USAGE') AS usable
                  FROM pg_namespace n WHERE n.nspname = coalesce($1::text, current_schema()))
SELECT target.schema_name, c.relname::text AS name,
       CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'm' THEN 'materialized view'
                      WHEN 'f' THEN 'foreign table' WHEN 'v' THEN 'view' END AS kind,
       tree.estimated_rows, tree.size_bytes,
       target.usable AND has_table_privilege(c.oid, 'SELECT') AS readable, c.relispopulated AS populated,
       ARRAY(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns,
       ARRAY(SELECT a.attname::text FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, position), pg_attribute a
              WHERE i.indrelid = c.oid AND i.indisprimary AND a.attrelid = c.oid AND a.attnum = k.attnum
              ORDER BY k.position) AS primary_key
  FROM target
  LEFT JOIN pg_class c
    ON c.relnamespace = target.oid AND NOT c.relispartition
   AND (c.relkind IN ('r', 'p', 'm', 'f') OR (c.relkind = 'v' AND $2::boolean))
   -- Any table or column privilege, as the pickers (and psql's \\dp) read "can see".
   AND (has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
        OR has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
  LEFT JOIN LATERAL (
    SELECT CASE WHEN bool_or(t.isleaf AND leaf.estimate IS NULL) THEN NULL
                ELSE coalesce(sum(leaf.estimate) FILTER (WHERE t.isleaf), 0) END AS estimated_rows,
           CASE WHEN c.relkind = 'f' THEN NULL ELSE sum(${RELATION_PAGES})::float8 * current_setting('block_size')::float8 END AS size_bytes
      FROM (WITH RECURSIVE tree(relid) AS (
              SELECT c.oid UNION ALL SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.relid WHERE c.relkind = 'p')
            SELECT tree.relid, x.relkind <> 'p' AS isleaf FROM tree JOIN pg_class x ON x.oid = tree.relid) t
      JOIN pg_class l ON l.oid = t.relid
      LEFT JOIN pg_stat_all_tables s ON s.relid = l.oid
      CROSS JOIN LATERAL (SELECT ${LEAF_ESTIMATE} AS estimate) leaf
  ) tree ON c.relkind <> 'v'
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
           SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = overview.schema_name AND c.relname = overview.name
           UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.relid)
         SELECT DISTINCT lk.pid FROM pg_catalog.pg_locks lk
          WHERE lk.locktype = 'relation' AND lk.mode = 'AccessExclusiveLock'
            AND lk.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()
            AND lk.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
            AND (lk.relation IN (SELECT tree.relid FROM tree)
                 OR lk.relation IN (SELECT x.indexrelid FROM pg_catalog.pg_index x WHERE x.indrelid IN (SELECT tree.relid FROM tree)))
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
    .map((table, i) => `($${i + 3}::text, (SELECT count(*) FROM ${qualifiedSchema}.${quoteIdentifier(table, 'table')})::float8)`)
    .join(',\n         ');
  return `WITH overview AS (${OVERVIEW_UNORDERED}),
     counted(name, exact_rows) AS (VALUES ${counts})
SELECT overview.*, counted.exact_rows FROM overview LEFT JOIN counted USING (name)
 ORDER BY overview.name COLLATE "C"`;
}
