/**
 * checkCdcPosition (triggers/replication/checked-position.ts, REVIEW7 R132), field by field: every
 * shape a poll or a table-sync handover writes passes, and each single edit of one field is
 * TRIGGER_STATE_INVALID naming that field. No server: the check runs before anything is read, so
 * this file pins each rule in milliseconds (cdc-state-edits.test shows the same end to end).
 */
import { checkCdcPosition } from '../../triggers/replication/checked-position.js';

const SNAPSHOTS = ['10:10:', '10:12:10,11', '1:1:', '18446744073709551615:18446744073709551615:18446744073709551614'];

/** A handover position as table-sync's handoverState writes it: two batches of a one-column key, the last one unbounded. */
function handover(): Record<string, unknown> & { handover: Record<string, unknown> & { tables: Record<string, unknown>[] } } {
  return {
    lsn: '0/16B3748',
    handover: {
      until: '0/16B3800',
      tables: [{ schema: 'public', table: 't', key: ['id'], types: ['integer'], batches: [[{ text: ['5'] }, '10:12:10,11'], [null, '10:10:']] }],
    },
  };
}

/** The problem named by checkCdcPosition's TRIGGER_STATE_INVALID, or 'passed'. */
function verdict(position: unknown): string {
  try {
    checkCdcPosition(position);
    return 'passed';
  } catch (error) {
    const { code, problems } = error as { code?: string; problems?: string[] };
    if (code !== 'TRIGGER_STATE_INVALID') throw error;
    expect(problems).toHaveLength(1);
    return problems![0]!;
  }
}

const invalid = (field: string) => `${field} must be the one a previous poll returned`;

test('positions as polls and handovers write them pass', () => {
  expect(verdict({ lsn: '0/16B3748' })).toBe('passed');
  expect(verdict({ lsn: 'FFFFFFFF/FFFFFFFF', inside: { xid: 1, lsn: '0/1', rows: 3, seq: 2 } })).toBe('passed');
  expect(verdict(handover())).toBe('passed');
  for (const snapshot of SNAPSHOTS) {
    const position = handover();
    (position.handover.tables[0]!.batches as unknown[][])[0]![1] = snapshot;
    expect([snapshot, verdict(position)]).toEqual([snapshot, 'passed']);
  }
  const older = handover(); // an older state's bounds: the parsed values, one per key column
  (older.handover.tables[0]!.batches as unknown[][])[0]![0] = [5];
  expect(verdict(older)).toBe('passed');
  const twoColumns = handover();
  Object.assign(twoColumns.handover.tables[0]!, { key: ['a', 'b'], types: ['integer', 'text'], batches: [[{ text: ['1', 'x'] }, '1:1:'], [[2, 'y'], '1:1:'], [null, '1:1:']] });
  expect(verdict(twoColumns)).toBe('passed');
  const reopened = handover();
  reopened.handover.reopened = ['["5"]'];
  expect(verdict(reopened)).toBe('passed');
  const noneReopened = handover();
  noneReopened.handover.reopened = [];
  expect(verdict(noneReopened)).toBe('passed');
  const twoTables = handover();
  twoTables.handover.tables.push({ schema: 's', table: 'u', key: ['k'], types: ['text'], batches: [[null, '1:1:']] });
  expect(verdict(twoTables)).toBe('passed');
});

test.each<[string, unknown]>([
  ['no position', undefined],
  ['a null position', null],
  ['a position that is a string', '0/1'],
  ['no lsn', {}],
  ['lsn a number', { lsn: 5 }],
  ['lsn "zz"', { lsn: 'zz' }],
  ['lsn without its slash', { lsn: '16B3748' }],
  ['lsn with text around it', { lsn: ' 0/1' }],
])('%s: state.position.lsn', (_, position) => {
  expect(verdict(position)).toBe(invalid('state.position.lsn'));
});

type Handover = ReturnType<typeof handover>;
type Table = Record<string, unknown>;
const table = (position: Handover): Table => position.handover.tables[0]!;
const batches = (position: Handover) => table(position).batches as unknown[][];

test.each<[string, (position: Handover) => void, string]>([
  ['handover null', (p) => void (p.handover = null as never), 'state.position.handover.until'],
  ['handover a string', (p) => void (p.handover = 'x' as never), 'state.position.handover.until'],
  ['no until', (p) => void delete p.handover.until, 'state.position.handover.until'],
  ['until "zz"', (p) => void (p.handover.until = 'zz'), 'state.position.handover.until'],
  ['no tables', (p) => void delete (p.handover as { tables?: unknown }).tables, 'state.position.handover.tables'],
  ['tables {}', (p) => void (p.handover.tables = {} as never), 'state.position.handover.tables'],
  ['tables []', (p) => void (p.handover.tables = []), 'state.position.handover.tables'],
  ['a table null', (p) => void (p.handover.tables = [null as never]), 'state.position.handover.tables'],
  ['a table a string', (p) => void (p.handover.tables = ['t' as never]), 'state.position.handover.tables'],
  ['a table undefined (a state kept as an object, not JSON)', (p) => void (p.handover.tables = [undefined as never]), 'state.position.handover.tables'],
  ['a second table broken', (p) => void p.handover.tables.push({ ...table(p), schema: 1 }), 'state.position.handover.tables'],
  ['schema a number', (p) => void (table(p).schema = 1), 'state.position.handover.tables'],
  ['no table name', (p) => void delete table(p).table, 'state.position.handover.tables'],
  ['key a string', (p) => void (table(p).key = 'id'), 'state.position.handover.tables'],
  ['key []', (p) => Object.assign(table(p), { key: [], types: [], batches: [[null, '1:1:']] }), 'state.position.handover.tables'],
  ['key with a number', (p) => void (table(p).key = [1]), 'state.position.handover.tables'],
  ['types one more than key', (p) => void (table(p).types = ['integer', 'text']), 'state.position.handover.tables'],
  ['types none', (p) => void delete table(p).types, 'state.position.handover.tables'],
  ['types with a number', (p) => void (table(p).types = [23]), 'state.position.handover.tables'],
  ['batches {}', (p) => void (table(p).batches = {}), 'state.position.handover.tables'],
  ['batches []', (p) => void (table(p).batches = []), 'state.position.handover.tables'],
  ['a batch a string', (p) => void (batches(p)[1] = 'x' as never), 'state.position.handover.tables'],
  ['a batch of one', (p) => void (batches(p)[1] = [null]), 'state.position.handover.tables'],
  ['a batch of three', (p) => void (batches(p)[1] = [null, '1:1:', 'x']), 'state.position.handover.tables'],
  ['a bound of two values for one key column', (p) => void (batches(p)[0]![0] = [5, 6]), 'state.position.handover.tables'],
  ['a bound a string', (p) => void (batches(p)[0]![0] = '5'), 'state.position.handover.tables'],
  ['a bound a number', (p) => void (batches(p)[0]![0] = 5), 'state.position.handover.tables'],
  ['a bound undefined (a state kept as an object, not JSON)', (p) => void (batches(p)[0]![0] = undefined), 'state.position.handover.tables'],
  ['a bound {}', (p) => void (batches(p)[0]![0] = {}), 'state.position.handover.tables'],
  ['a bound whose text is a number', (p) => void (batches(p)[0]![0] = { text: [5] }), 'state.position.handover.tables'],
  ['a bound of two texts', (p) => void (batches(p)[0]![0] = { text: ['5', '6'] }), 'state.position.handover.tables'],
  ['a snapshot 42', (p) => void (batches(p)[0]![1] = 42), 'state.position.handover.tables'],
  ['a snapshot in a list (its text would match)', (p) => void (batches(p)[0]![1] = ['10:12:10,11']), 'state.position.handover.tables'],
  ['a snapshot "x:y:"', (p) => void (batches(p)[0]![1] = 'x:y:'), 'state.position.handover.tables'],
  ['a snapshot without its list', (p) => void (batches(p)[0]![1] = '10:12'), 'state.position.handover.tables'],
  ['a snapshot with an empty list item', (p) => void (batches(p)[0]![1] = '10:12:10,'), 'state.position.handover.tables'],
  ['a snapshot with a leading comma', (p) => void (batches(p)[0]![1] = '10:12:,10'), 'state.position.handover.tables'],
  ['a snapshot with text before it', (p) => void (batches(p)[0]![1] = 'x10:12:'), 'state.position.handover.tables'],
  ['a snapshot with text after it', (p) => void (batches(p)[0]![1] = '10:12:11x'), 'state.position.handover.tables'],
  ['a snapshot of 21 digits', (p) => void (batches(p)[0]![1] = '123456789012345678901:1:'), 'state.position.handover.tables'],
  ['a snapshot whose xmax has 21 digits', (p) => void (batches(p)[0]![1] = '1:123456789012345678901:'), 'state.position.handover.tables'],
  ['a snapshot whose list has 21 digits', (p) => void (batches(p)[0]![1] = '1:2:123456789012345678901'), 'state.position.handover.tables'],
  ['a snapshot whose later item has 21 digits', (p) => void (batches(p)[0]![1] = '1:2:1,123456789012345678901'), 'state.position.handover.tables'],
  ['a snapshot with an empty xmin', (p) => void (batches(p)[0]![1] = ':2:'), 'state.position.handover.tables'],
  ['a snapshot with an empty xmax', (p) => void (batches(p)[0]![1] = '1::'), 'state.position.handover.tables'],
  ['reopened a string', (p) => void (p.handover.reopened = '["5"]'), 'state.position.handover.reopened'],
  ['reopened with a number', (p) => void (p.handover.reopened = [5]), 'state.position.handover.reopened'],
  ['reopened null', (p) => void (p.handover.reopened = null), 'state.position.handover.reopened'],
])('%s: TRIGGER_STATE_INVALID naming its field', (_, change, field) => {
  const position = handover();
  change(position);
  expect(verdict(position)).toBe(invalid(field));
});

test('each message says which field and that the state was edited or made by something else', () => {
  const messages: string[] = [];
  for (const position of [{ lsn: 'zz' }, { lsn: '0/1', handover: { until: 'zz' } }, { lsn: '0/1', handover: { until: '0/1', tables: [] } }, { ...handover(), handover: { ...handover().handover, reopened: 'x' } }]) {
    try {
      checkCdcPosition(position);
    } catch (error) {
      messages.push((error as Error).message);
    }
  }
  expect(messages).toEqual([
    'state.position.lsn is not a WAL position ("zz"): the state was edited, or made by something else',
    'state.position.handover.until is not a WAL position: the state was edited, or made by something else',
    'state.position.handover.tables is not the list of tables, keys and batches a table-sync handover writes: the state was edited, or made by something else',
    'state.position.handover.reopened is not a list of keys: the state was edited, or made by something else',
  ]);
});
