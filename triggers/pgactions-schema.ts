/** The pgactions schema holds every trigger's objects; it goes once nothing of ours is left in it. */
import { quoteIdentifier } from '../connection/index.js';
import type { Query } from '../connection/session.js';
import { SCHEMA } from './outbox-sql.js';

export async function dropSchemaIfEmpty(query: Query): Promise<void> {
  const [left] = await query(
    `WITH s(oid) AS (SELECT pg_catalog.to_regnamespace($1::pg_catalog.text)::pg_catalog.oid)
     SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class, s WHERE relnamespace OPERATOR(pg_catalog.=) s.oid)
            OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc, s WHERE pronamespace OPERATOR(pg_catalog.=) s.oid)
            OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_type, s WHERE typnamespace OPERATOR(pg_catalog.=) s.oid AND typrelid OPERATOR(pg_catalog.=) 0::pg_catalog.oid AND typelem OPERATOR(pg_catalog.=) 0::pg_catalog.oid) AS n,
            (SELECT s.oid IS NOT NULL FROM s) AS present`,
    [SCHEMA],
  );
  if (left?.present && Number(left.n) === 0) await query(`DROP SCHEMA ${quoteIdentifier(SCHEMA)}`);
}
