/**
 * outputFormatFixes (connection/pools.ts): the SETs a server session needs before a step so that the
 * type parsers read what it sends, and only those. A session the server started in the formats
 * pg-actions reads needs none (an extra SET would cost every step a statement); each format the
 * database sets otherwise gets exactly its own SET. Read from what the server reported at startup.
 */
import { closeAll, resolveConfig } from '../../connection/index.js';
import { OUTPUT_FORMAT_FIXES, outputFormatFixes, poolFor } from '../../connection/pools.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('format_fixes');

afterEach(async () => {
  await db.sql(`ALTER DATABASE ${db.name} RESET ALL`);
  await closeAll();
}, 30_000);

async function fixesOf(applicationName: string): Promise<string[]> {
  const managed = poolFor(resolveConfig({ ...db.config, applicationName, sslMode: 'disable' }));
  const client = await managed.pool.connect();
  try {
    return outputFormatFixes(client);
  } finally {
    client.release();
  }
}

test('a session in the formats pg-actions reads (ISO dates in any order, postgres intervals, standard strings) needs no SET', async () => {
  expect(await fixesOf('fixes-default')).toEqual([]);
  await db.sql(`ALTER DATABASE ${db.name} SET DateStyle = 'ISO, DMY'`);
  expect(await fixesOf('fixes-iso-dmy')).toEqual([]);
}, 60_000);

test('each format the database sets otherwise gets exactly its SET', async () => {
  await db.sql(`ALTER DATABASE ${db.name} SET DateStyle = 'SQL, DMY'`);
  expect(await fixesOf('fixes-date')).toEqual([OUTPUT_FORMAT_FIXES.DateStyle]);
  await db.sql(`ALTER DATABASE ${db.name} RESET DateStyle; ALTER DATABASE ${db.name} SET IntervalStyle = 'iso_8601'`);
  expect(await fixesOf('fixes-interval')).toEqual([OUTPUT_FORMAT_FIXES.IntervalStyle]);
  await db.sql(`ALTER DATABASE ${db.name} RESET IntervalStyle; ALTER DATABASE ${db.name} SET standard_conforming_strings = off`);
  expect(await fixesOf('fixes-strings')).toEqual([OUTPUT_FORMAT_FIXES.standardConformingStrings]);
  await db.sql(`ALTER DATABASE ${db.name} SET DateStyle = 'German'; ALTER DATABASE ${db.name} SET IntervalStyle = 'sql_standard'`);
  expect(await fixesOf('fixes-all')).toEqual([OUTPUT_FORMAT_FIXES.DateStyle, OUTPUT_FORMAT_FIXES.IntervalStyle, OUTPUT_FORMAT_FIXES.standardConformingStrings]);
}, 60_000);

test('the SETs are the formats pg-actions reads', () => {
  expect(OUTPUT_FORMAT_FIXES).toEqual({
    DateStyle: 'SET DateStyle TO ISO',
    IntervalStyle: 'SET IntervalStyle TO postgres',
    standardConformingStrings: 'SET standard_conforming_strings TO on',
  });
});
