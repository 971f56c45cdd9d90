/**
 * The output formats pg-actions' value parsers read, whatever the server's, database's or role's
 * defaults: ISO dates, postgres intervals, and exact floats (extra_float_digits 0 or less writes 15
 * significant digits: distinct values read as one, REVIEW6 R111). One list for every place that
 * sets them: pooled sessions (pools.ts, session-limits.ts), the walsender, table-sync's batches.
 */
export const PARSED_FORMATS = { DateStyle: 'ISO', IntervalStyle: 'postgres', extra_float_digits: '3' } as const;

/** As startup options, for a session no pooler stands in front of (the walsender). */
export const FORMAT_OPTIONS = Object.entries(PARSED_FORMATS).map(([name, value]) => `-c ${name}=${value}`).join(' ');

/** As SET LOCAL statements, for a transaction of pg-actions' own (a SET takes no snapshot). */
export const LOCAL_FORMAT_SETS = Object.entries(PARSED_FORMATS).map(([name, value]) => `SET LOCAL ${name} = ${value}`);
