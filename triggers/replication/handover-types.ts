/**
 * A handover's key types come from a state the host stored (n8n static data, a file…), checked for
 * nothing but its trigger and fingerprint: they are never spliced into SQL as they are (REVIEW4 R37).
 * Each must be a type name and nothing else (to_regtype parses it, runs nothing) and is replaced by
 * format_type of the type it names, written by the server with its identifiers quoted. Without the
 * typmod, which comparing keys does not need (format_type then writes "bit", bpchar: no implied length).
 */
import { execute, PgActionsError } from '../../connection/index.js';
import { invalidState } from '../state.js';

export async function checkedKeyTypes(connection: unknown, types: readonly unknown[]): Promise<string[]> {
  const invalid = () => invalidState('state.position.handover holds a key type that is not a type name (the state was edited)', ['state.position.handover.tables[].types must be the types a previous poll returned']);
  if (!types.every((type) => typeof type === 'string')) throw invalid();
  try {
    const { rows } = await execute(connection, {
      text: 'SELECT format_type(to_regtype(u.t), NULL) AS type FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY u.n',
      values: [types],
      readOnly: true,
    });
    if (rows.some((row) => row.type === null)) throw invalid();
    return rows.map((row) => row.type as string);
  } catch (error) {
    // Before PostgreSQL 16 to_regtype raises on what does not parse as a type name (42601, 22P02).
    if (error instanceof PgActionsError && /^(42|22)/.test(error.sqlstate ?? '')) throw invalid();
    throw error;
  }
}
