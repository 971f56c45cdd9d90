/**
 * row-changes and schema-changes' event-trigger mode keep their outbox, cursor and bookkeeping in
 * tables of schema pgactions. Where a publication FOR ALL TABLES (or, 15+, FOR TABLES IN SCHEMA
 * pgactions) exists, every write to those tables would be replicated to its subscribers, which do
 * not have them: a native subscriber's apply worker stops for good, and the user's replica with it.
 * Activation is refused there (schema-changes falls back to catalog snapshots instead), before
 * anything is created. A publication created after activation is the user's choice: the cursor
 * has a replica identity (its unique key) so reads keep working, and the subscription then fails
 * at CREATE SUBSCRIPTION ("schema pgactions does not exist" on the subscriber), before any data moves.
 */
import { PgActionsError } from '../connection/index.js';
import type { Query } from '../connection/session.js';
import { publishByNameFix, publishedBecause, schemaPublications } from '../connection/replication-readiness/schema-publications.js';
import { SCHEMA } from './outbox-sql.js';

/** Throws OUTBOX_WOULD_BE_PUBLISHED when a new table in schema pgactions would be published. */
export async function refuseWhenPublished(query: Query, trigger: 'row-changes' | 'schema-changes'): Promise<void> {
  const found = await schemaPublications(query, SCHEMA);
  const why = publishedBecause(found, SCHEMA);
  if (!why) return;
  throw new PgActionsError('OUTBOX_WOULD_BE_PUBLISHED', {
    message: `${trigger} cannot be activated in this database: it keeps its changes in tables of schema ${SCHEMA}, and ${why}. Nothing was created.`,
    fixes: [
      publishByNameFix(found),
      trigger === 'row-changes'
        ? 'Or capture the changes without tables of ours: table-changes-cdc (reads the WAL) or new-row / new-or-updated-row (poll the table).'
        : 'Or poll without activation: schema-changes then compares the catalog at each poll (catalog snapshots).',
    ],
  });
}
