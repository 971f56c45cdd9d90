/**
 * The output formats pg-actions' value parsers read, whatever the server's, database's or role's
 * defaults: ISO dates, postgres intervals, and exact floats (extra_float_digits 0 or less writes 15
 * significant digits: distinct values read as one, REVIEW6 R111). One list for every place that
 * sets them: pooled sessions (pools.ts, session-limits.ts), the walsender, table-sync's batches.
 *
 * TimeZone is pinned for the triggers' reads only (REVIEW9 R160): it decides the text of every
 * timestamptz (`2026-01-01 21:00:00+09` in Asia/Tokyo), which event ids, keys, cursors and values are
 * made of, so a database's, role's or pooler client's TimeZone changed the ids of the same rows.
 * Triggers write timestamptz in UTC: the walsender and table-sync's batches (FORMAT_OPTIONS,
 * LOCAL_FORMAT_SETS, which take every entry), new-row's and new-or-updated-row's reads and CDC's
 * peeks (execute's `fixedFormats`), the row-changes capture (capture-sql.ts). Actions do not get it
 * (pools.ts sets the other formats by name): a user's SQL means what the session's TimeZone says
 * (`now()::date`, a timestamptz literal without an offset, date_trunc), and its results keep the
 * session's offsets, as they always did.
 *
 * bytea_output is pinned to hex in the same places (REVIEW10 R167): 'escape' (settable per database,
 * role or session) writes the same bytes as `ab` instead of `\x6162`, which changed new-row's and
 * table-sync's ids of a bytea key and row-changes' values. Actions need no pin: their bytea parser
 * (types.ts) reads both formats, and the server reads both as input.
 * Not pinned: lc_monetary (money's text; a money key's id follows the database's locale) and
 * xmloption (xml has no btree order, so it is never a key).
 */
export const PARSED_FORMATS = { DateStyle: 'ISO', IntervalStyle: 'postgres', extra_float_digits: '3', TimeZone: 'UTC', bytea_output: 'hex' } as const;

/** As startup options, for a session no pooler stands in front of (the walsender). */
export const FORMAT_OPTIONS = Object.entries(PARSED_FORMATS).map(([name, value]) => `-c ${name}=${value}`).join(' ');

/** As SET LOCAL statements, for a transaction of pg-actions' own (a SET takes no snapshot). */
export const LOCAL_FORMAT_SETS = Object.entries(PARSED_FORMATS).map(([name, value]) => `SET LOCAL ${name} = '${value}'`);

/** TimeZone UTC and bytea_output hex for the rest of the step's transaction (explicit or implicit: a SELECT, not SET LOCAL). */
export const FIXED_FORMATS_SQL = `SELECT pg_catalog.set_config('TimeZone', '${PARSED_FORMATS.TimeZone}', true), pg_catalog.set_config('bytea_output', '${PARSED_FORMATS.bytea_output}', true)`;
