/** New Row: rows that appear in a table, in (column, primary key) order, by polling with SELECT only. */
import configSchema from '../schemas/triggers/new-row.config.schema.json' with { type: 'json' };
import eventSchema from '../schemas/triggers/new-row.event.schema.json' with { type: 'json' };
import type { NewRowConfig, NewRowEvent } from '../schemas/types.gen.js';
import { defineTrigger } from './definition.js';
import { pollTable, sampleTable, startPosition, tableEvent, type TableCursorPosition } from './table-cursor.js';
import { CURSOR_GUARANTEES, cursorPrivileges } from './table-cursor-docs.js';

const toEvent = (info: Parameters<typeof tableEvent>[2], row: Record<string, unknown>, keyText: readonly string[]) => tableEvent('new-row', 'INSERT' as const, info, row, keyText, []);

export const newRow = defineTrigger<NewRowConfig, NewRowEvent, TableCursorPosition>({
  key: 'new-row',
  name: 'New Row',
  description:
    'Starts a flow for each new row of a table. Polls with SELECT only (nothing is installed in the database): rows are read ' +
    'after a cursor on an ordering column that grows for new rows (serial id or created_at) and the primary key.',
  config: configSchema,
  event: eventSchema,
  example: {
    setup: [
      'CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10,2) NOT NULL, created_at timestamptz NOT NULL DEFAULT now())',
    ],
    config: { table: 'orders', column: 'id' },
    event: {
      id: 'Jx0W8m3dXn6tq1uS2p9GqA:["1"]',
      op: 'INSERT',
      schema: 'public',
      table: 'orders',
      key: { id: 1 },
      new: { id: 1, customer: 'Ada', total: '42.50', created_at: '2026-01-15T10:30:00.123456Z' },
    },
  },
  guarantees: CURSOR_GUARANTEES,
  privileges: cursorPrivileges,
  identity: ['table', 'column'],
  installs: false,
  start: startPosition,
  poll: (args, position) => pollTable(args, position, toEvent),
  sample: (args) => sampleTable(args, toEvent),
});
