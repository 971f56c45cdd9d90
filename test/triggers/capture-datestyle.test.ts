/**
 * REVIEW11 R172: row-changes' capture wrote dates inside ranges (daterange, tsrange) and inside the
 * text of other roles' composites in the writer session's DateStyle: the same value arrived as
 * "[30/11/2026,01/12/2026)" or "[2026-11-30,2026-12-01)" depending on who wrote it. The capture
 * functions pin DateStyle ISO with the other formats.
 */
import pg from 'pg';
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('capture_datestyle');
const request = () => ({ connection: db.config, config: { tables: ['public.stays'] } });

beforeAll(async () => {
  await db.sql('CREATE TABLE stays (id int PRIMARY KEY, during daterange, at tsrange)');
  await activateTrigger('row-changes', request());
}, 60_000);
afterAll(async () => {
  await deactivateTrigger('row-changes', request()).catch(() => undefined);
});

test('ranges of dates are captured in ISO whatever the writer\'s DateStyle', async () => {
  const { state } = await pollTrigger('row-changes', request());
  for (const [id, style] of [[1, 'ISO, MDY'], [2, 'SQL, DMY'], [3, 'German']] as const) {
    const writer = new pg.Client({ ...db.config, ssl: false } as pg.ClientConfig);
    await writer.connect();
    try {
      await writer.query(`SET DateStyle = '${style}'`);
      await writer.query(`INSERT INTO stays VALUES ($1, '[2026-11-30,2026-12-01)', '[2026-11-30 10:00,2026-11-30 12:00)')`, [id]);
    } finally {
      await writer.end();
    }
  }
  const { events } = await pollTrigger('row-changes', { ...request(), state });
  const values = events.map((event) => (event as unknown as { new: { during: string; at: string } }).new);
  expect(values.map((v) => [v.during, v.at])).toEqual(Array.from({ length: 3 }, () => ['[2026-11-30,2026-12-01)', '["2026-11-30 10:00:00","2026-11-30 12:00:00")']));
}, 60_000);
