/** The pgactions schema holds every trigger's objects; it goes once nothing of ours is left in it. */
import { quoteIdentifier } from '../connection/index.js';
import type { Query } from '../connection/session.js';
import { SCHEMA } from './outbox-sql.js';

export async function dropSchemaIfEmpty(query: Query): Promise<void> {
  const [left] = await query(
    `SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = to_regnamespace($1)::oid) + (SELECT count(*) FROM pg_proc WHERE pronamespace = to_regnamespace($1)::oid)
            + (SELECT count(*) FROM pg_type WHERE typnamespace = to_regnamespace($1)::oid AND typrelid = 0::oid AND typelem = 0::oid) AS n, to_regnamespace($1) IS NOT NULL AS present`,
    [SCHEMA],
  );
  if (left?.present && Number(left.n) === 0) await query(`DROP SCHEMA ${quoteIdentifier(SCHEMA)}`);
}
