/**
 * What change capture needs from each table: that it exists, how its old rows are identified
 * (replica identity), who owns it (only an owner may publish it) and whether it can be read.
 * A table without a primary key (identity DEFAULT) or with identity NOTHING in a publication that
 * publishes UPDATE and DELETE makes those statements FAIL on the server: checked before publishing.
 */
import { execute } from '../execute.js';
import { quoteIdentifier, quoteQualifiedName } from '../identifiers.js';
import type { ReplicationCheck } from './check.js';

export interface TableFacts {
  input: string;
  found: boolean;
  schema: string;
  name: string;
  /** "schema"."name", quoted. */
  qualified: string;
  /** pg_class.relreplident: d default (primary key), n nothing, f full, i index. */
  identity: string;
  has_pk: boolean;
  has_identity_index: boolean;
  can_select: boolean;
  owned: boolean;
}

const TABLE_SQL = `SELECT n.nspname AS schema, c.relname AS name, c.relreplident AS identity,
  EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary) AS has_pk,
  EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisreplident) AS has_identity_index,
  pg_catalog.has_table_privilege(c.oid, 'SELECT') AS can_select, pg_catalog.pg_has_role(c.relowner, 'USAGE') AS owned
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1::pg_catalog.text)::pg_catalog.oid AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog."char"[])`;

export async function tableFacts(connection: unknown, tables: readonly string[]): Promise<TableFacts[]> {
  return Promise.all(
    tables.map(async (input, i) => {
      const quoted = quoteQualifiedName(input, `tables[${i}]`);
      const { rows } = await execute(connection, { text: TABLE_SQL, values: [quoted], readOnly: true });
      const row = rows[0] as Omit<TableFacts, 'input' | 'found' | 'qualified'> | undefined;
      if (!row) return { input, found: false, schema: '', name: input, qualified: quoted, identity: 'd', has_pk: false, has_identity_index: false, can_select: false, owned: false };
      return { ...row, input, found: true, qualified: `${quoteIdentifier(row.schema)}.${quoteIdentifier(row.name)}` };
    }),
  );
}

export function replicaIdentityCheck(table: TableFacts): ReplicationCheck | undefined {
  const fine = table.identity === 'f' || (table.identity === 'd' && table.has_pk) || (table.identity === 'i' && table.has_identity_index);
  if (fine) return undefined;
  const why = table.identity === 'n' ? 'its replica identity is NOTHING' : table.identity === 'i' ? 'its replica identity index is gone' : 'it has no primary key';
  return {
    code: 'TABLE_WITHOUT_REPLICA_IDENTITY',
    level: 'failed',
    message: `${table.qualified} cannot be published: ${why}, so once published its UPDATEs and DELETEs would fail on the server.`,
    fixes: [
      `Add a primary key: ALTER TABLE ${table.qualified} ADD PRIMARY KEY (<column>);`,
      `Or send whole old rows: ALTER TABLE ${table.qualified} REPLICA IDENTITY FULL;`,
    ],
  };
}
