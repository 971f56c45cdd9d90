/**
 * triggers/replication/lsn.ts against the server's own pg_lsn type: the acknowledged position
 * of table-changes-cdc is parsed, compared and written back with these, so they must read and
 * write exactly what PostgreSQL does, over the whole 64-bit range.
 */
import { formatLsn, isLsn, parseLsn } from '../../triggers/replication/lsn.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('lsn');

const SAMPLES = ['0/0', '0/1', '0/FFFFFFFF', '1/0', '16/B374D848', 'a/bc', 'FFFFFFFF/FFFFFFFF', '7FFFFFFF/80000000', '0/10', '10/0'];

test('parse and format agree with pg_lsn: the same text and the same byte distance, for every sample', async () => {
  const rows = (await db.sql(
    `SELECT s AS given, s::pg_lsn::text AS written, (s::pg_lsn - '0/0'::pg_lsn)::text AS bytes FROM unnest($1::text[]) AS s`,
    [SAMPLES],
  )) as { given: string; written: string; bytes: string }[];
  for (const row of rows) {
    expect({ given: row.given, parsed: parseLsn(row.given).toString(), written: formatLsn(parseLsn(row.given)) }).toEqual({
      given: row.given,
      parsed: row.bytes,
      written: row.written,
    });
  }
});

test('the order of parsed LSNs is the server\'s order', async () => {
  const ordered = (await db.sql(`SELECT s AS lsn FROM unnest($1::text[]) AS s ORDER BY s::pg_lsn`, [SAMPLES])).map((row) => row.lsn as string);
  expect([...SAMPLES].sort((a, b) => (parseLsn(a) < parseLsn(b) ? -1 : parseLsn(a) > parseLsn(b) ? 1 : 0))).toEqual(ordered);
});

test('the server\'s current WAL position round-trips', async () => {
  const [{ lsn }] = (await db.sql('SELECT pg_current_wal_lsn()::text AS lsn')) as [{ lsn: string }];
  expect(isLsn(lsn)).toBe(true);
  expect(formatLsn(parseLsn(lsn))).toBe(lsn);
  // pg_lsn - pg_lsn (bytes, numeric) exists on every supported server; pg_lsn + numeric only from PostgreSQL 14.
  const [{ bytes }] = (await db.sql(`SELECT ($1::pg_lsn - '0/0'::pg_lsn)::text AS bytes`, [formatLsn(parseLsn(lsn))])) as [{ bytes: string }];
  expect(BigInt(bytes)).toBe(parseLsn(lsn));
  const [{ next }] = (await db.sql(`SELECT ('0/0'::pg_lsn + ($1::pg_lsn - '0/0'::pg_lsn + 1))::text AS next`, [lsn]).catch(() => [{ next: undefined }])) as [{ next: string | undefined }];
  const [{ version }] = (await db.sql(`SELECT current_setting('server_version_num')::int AS version`)) as [{ version: number }];
  if (version >= 140000) expect(parseLsn(next!)).toBe(parseLsn(lsn) + 1n);
  else expect(next).toBeUndefined(); // refused before 14: operator does not exist
});

test('text that is not an LSN is refused, as the server refuses it', async () => {
  const bad = ['', '0', '/0', '0/', '1/2/3', 'G/0', '0/G', ' 0/0', '0/0 ', '100000000/0', '0/100000000', '-1/0', '0x1/0'];
  for (const text of bad) {
    expect({ text, isLsn: isLsn(text) }).toEqual({ text, isLsn: false });
    expect(() => parseLsn(text)).toThrow(RangeError);
    expect(() => parseLsn(text)).toThrow(`not an LSN: ${JSON.stringify(text)}`);
  }
  expect([isLsn(undefined), isLsn(16), isLsn(null)]).toEqual([false, false, false]);
  for (const text of SAMPLES) expect(isLsn(text)).toBe(true);
  // the server refuses the same texts (except padding it trims)
  const accepted = await db.sql(
    `SELECT s FROM unnest($1::text[]) AS s WHERE pg_input_is_valid(s, 'pg_lsn') AND s = btrim(s)`,
    [bad],
  ).catch(() => undefined); // pg_input_is_valid: PostgreSQL 16+
  if (accepted) expect(accepted).toEqual([]);
});
