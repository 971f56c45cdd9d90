/** Every trigger, in the order a trigger picker shows them. */
import type { TriggerDefinition } from './definition.js';
import { newOrUpdatedRow } from './new-or-updated-row.js';
import { listen } from './listen.js';
import { newRow } from './new-row.js';
import { rowChanges } from './row-changes.js';
import { schemaChanges } from './schema-changes.js';
import { tableChangesCdc } from './table-changes-cdc.js';
import { tableSync } from './table-sync.js';

// Each definition is typed for its own config; the registry speaks of them generically.
export const triggers = [rowChanges, tableChangesCdc, tableSync, newRow, newOrUpdatedRow, listen, schemaChanges] as unknown as readonly TriggerDefinition[];

export type TriggerKey = 'row-changes' | 'table-changes-cdc' | 'table-sync' | 'new-row' | 'new-or-updated-row' | 'listen' | 'schema-changes';

const byKey = new Map(triggers.map((trigger) => [trigger.key, trigger]));

export function findTrigger(key: string): TriggerDefinition | undefined {
  return byKey.get(key);
}
