/** Every action, in the order a step picker shows them. Hosts render pickers and forms from this list alone. */
import type { ActionDefinition } from './definition.js';
import { deleteRows } from './delete-rows.js';
import { executeQuery } from './execute-query.js';
import { insertRow } from './insert-row.js';
import { queryRows } from './query-rows.js';
import { schemaOverview } from './schema-overview.js';
import { updateRows } from './update-rows.js';

// Each definition is typed for its own input; the registry speaks of them generically.
export const actions = [queryRows, insertRow, updateRows, deleteRows, executeQuery, schemaOverview] as unknown as readonly ActionDefinition[];

export type ActionKey = 'query-rows' | 'insert-row' | 'update-rows' | 'delete-rows' | 'execute-query' | 'schema-overview';

const byKey = new Map(actions.map((action) => [action.key, action]));

export function findAction(key: string): ActionDefinition | undefined {
  return byKey.get(key);
}
