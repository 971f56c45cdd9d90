/**
 * The publications that would publish a table created in a schema: every FOR ALL TABLES one, and
 * (PostgreSQL 15+) every FOR TABLES IN SCHEMA <schema> one. A table pg-actions creates there (the
 * CDC heartbeat, the row-changes / schema-changes outbox) would reach their subscribers, which do
 * not have it: a native subscriber's apply worker then stops for good. A FOR ALL TABLES
 * publication cannot leave one table out, so not creating the table is the only way to keep the
 * user's replication working.
 */
import { quoteIdentifier } from '../identifiers.js';

/** Runs one read-only statement (execute() or an inTransaction query). */
export type ReadRows = (text: string, values: unknown[]) => Promise<Record<string, unknown>[]>;

export interface SchemaPublications {
  /** FOR ALL TABLES publications. */
  allTables: string[];
  /** FOR TABLES IN SCHEMA <schema> publications (15+). */
  inSchema: string[];
}

export async function schemaPublications(read: ReadRows, schema: string): Promise<SchemaPublications> {
  const [facts] = await read(
    `SELECT pg_catalog.current_setting('server_version_num')::int AS version,
            ARRAY(SELECT pubname::pg_catalog.text FROM pg_catalog.pg_publication WHERE puballtables ORDER BY 1) AS all_tables`,
    [],
  );
  const inSchema = Number(facts!.version) >= 150000
    ? await read(
        'SELECT p.pubname::pg_catalog.text AS name FROM pg_catalog.pg_publication_namespace n JOIN pg_catalog.pg_publication p ON p.oid OPERATOR(pg_catalog.=) n.pnpubid WHERE n.pnnspid OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace($1::pg_catalog.text)::pg_catalog.oid ORDER BY 1',
        [schema],
      )
    : [];
  return { allTables: facts!.all_tables as string[], inSchema: inSchema.map((row) => row.name as string) };
}

/** Why a table created in `schema` would be published, or undefined when nothing publishes it. */
export function publishedBecause(found: SchemaPublications, schema: string): string | undefined {
  const names = [...found.allTables, ...found.inSchema];
  if (names.length === 0) return undefined;
  const others = names.length > 1 ? ` (as ${names.length > 2 ? 'do' : 'does'} ${names.slice(1).map((p) => `"${p}"`).join(', ')})` : '';
  return `publication "${names[0]}"${others} publishes every table${found.allTables.length ? '' : ` of schema ${schema}`}, so its subscribers would receive the changes of a table they do not have, and their replication would stop`;
}

/** The fix shared by every refusal: publish the user's tables by name (or, 15+, by their own schemas). */
export function publishByNameFix(found: SchemaPublications): string {
  const name = [...found.allTables, ...found.inSchema][0]!;
  return `Publish the tables by name instead (CREATE PUBLICATION <name> FOR TABLE <schema>.<table>, …; on PostgreSQL 15+ also FOR TABLES IN SCHEMA <schema>, which leaves schema pgactions out), then DROP PUBLICATION ${quoteIdentifier(name)}; once its subscribers use the new one.`;
}
