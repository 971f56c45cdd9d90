/** New or Updated Row: rows whose updated_at-style column moved forward, by polling with SELECT only. */
import configSchema from '../schemas/triggers/new-or-updated-row.config.schema.json' with { type: 'json' };
import eventSchema from '../schemas/triggers/new-or-updated-row.event.schema.json' with { type: 'json' };
import type { NewOrUpdatedRowConfig, NewOrUpdatedRowEvent } from '../schemas/types.gen.js';
import { defineTrigger } from './definition.js';
import { pollTable, sampleTable, startPosition, tableEvent, type TableCursorPosition } from './table-cursor.js';
import { CURSOR_GUARANTEES, cursorPrivileges } from './table-cursor-docs.js';

export function newOrUpdatedEvent(column: string) {
  // The row version is (key, column value): a later update moves the column, so it is a new event.
  return (info: Parameters<typeof tableEvent>[2], row: Record<string, unknown>, keyText: readonly string[]) =>
    tableEvent('new-or-updated-row', 'INSERT_OR_UPDATE' as const, info, row, keyText, [row[column]]);
}

export const newOrUpdatedRow = defineTrigger<NewOrUpdatedRowConfig, NewOrUpdatedRowEvent, TableCursorPosition>({
  key: 'new-or-updated-row',
  name: 'New or Updated Row',
  description:
    'Starts a flow for each row inserted or updated in a table. Polls with SELECT only: rows are read after a cursor on an ' +
    'updated_at-style column (set on every insert and update) and the primary key.',
  config: configSchema,
  event: eventSchema,
  example: {
    setup: [
      'CREATE TABLE tickets (id serial PRIMARY KEY, status text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())',
      'CREATE INDEX ON tickets (updated_at)',
    ],
    config: { table: 'tickets', column: 'updated_at' },
    event: {
      id: 'f3Yc1Ck8Q0ZKp5l2n7w4Rg:["7"]',
      op: 'INSERT_OR_UPDATE',
      schema: 'public',
      table: 'tickets',
      key: { id: 7 },
      new: { id: 7, status: 'closed', updated_at: '2026-01-15T10:31:02.000417Z' },
    },
  },
  guarantees: [
    ...CURSOR_GUARANTEES,
    'Several updates of one row between two polls arrive as one event with the latest row (the table keeps only that version).',
    'The column must move forward on every update (e.g. a BEFORE UPDATE trigger setting updated_at = now()); an update that leaves it unchanged is not seen.',
  ],
  privileges: cursorPrivileges,
  identity: ['table', 'column'],
  installs: false,
  start: startPosition,
  poll: (args, position) => pollTable(args, position, newOrUpdatedEvent(args.config.column)),
  sample: (args) => sampleTable(args, newOrUpdatedEvent(args.config.column)),
});
