/**
 * Turns PostgreSQL's text values into JSON-safe, exact JavaScript values. Installed per pool
 * (pg's `types` option), never process-wide, so a host's own pg usage is left alone.
 *   bigint, numeric, money → string (no precision loss)      json, jsonb → parsed
 *   int2, int4, oid → number      float → number, or "NaN"/"Infinity"/"-Infinity" as strings
 *   timestamp(tz), date, time → ISO 8601 text, exact to the microsecond     bytea → base64
 *   arrays of these → arrays       anything else → the server's text
 */
import { parse as parseArray } from 'postgres-array';
import { parseExactJson } from './exact-json.js';

type Parser = (text: string) => unknown;

const identity: Parser = (text) => text;
const toNumber: Parser = (text) => Number(text);
const toFloat: Parser = (text) => {
  const value = Number(text);
  // JSON has no -0: "-0" as a string, like the non-finite values.
  if (Object.is(value, -0)) return '-0';
  return Number.isFinite(value) ? value : text === 'NaN' ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
};
const toBoolean: Parser = (text) => text === 't' || text === 'true';
const toJson: Parser = parseExactJson;
const toBase64: Parser = (text) =>
  text.startsWith('\\x') ? Buffer.from(text.slice(2), 'hex').toString('base64') : Buffer.from(unescapeBytea(text), 'latin1').toString('base64');

/** "2026-01-15 10:30:00.5+00" → "2026-01-15T10:30:00.5Z"; "+05:30" offsets kept; infinity and BC kept as sent. */
const toIsoTimestamp: Parser = (text) => {
  const match = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d(?::?\d\d){0,2})?$/.exec(text);
  if (!match) return text;
  const [, date, time, offset] = match;
  // ISO 8601 offsets have no seconds (a local mean time such as -04:56:02): give the instant in UTC.
  if (offset !== undefined && offset.split(':').length === 3) return utcInstant(date!, time!, offset);
  return `${date}T${time}${offset === undefined ? '' : isoOffset(offset)}`;
};
const toIsoTime: Parser = (text) => {
  const match = /^(\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d(?::?\d\d){0,2})$/.exec(text);
  return match ? match[1]! + isoOffset(match[2]!) : text;
};

function utcInstant(date: string, time: string, offset: string): string {
  const [year, month, day] = date.split('-').map(Number) as [number, number, number];
  const [hours, minutes, secondsText] = time.split(':') as [string, string, string];
  const [seconds, fraction] = secondsText.split('.');
  const [oh, om, os] = offset.slice(1).split(':').map(Number) as [number, number, number];
  const sign = offset[0] === '-' ? 1 : -1; // local = UTC + offset, so UTC = local - offset
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(Number(hours) + sign * oh, Number(minutes) + sign * om, Number(seconds) + sign * os);
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(utc.getUTCFullYear(), 4)}-${pad(utc.getUTCMonth() + 1)}-${pad(utc.getUTCDate())}T${pad(utc.getUTCHours())}:${pad(utc.getUTCMinutes())}:${pad(utc.getUTCSeconds())}${fraction ? '.' + fraction : ''}Z`;
}

function isoOffset(offset: string): string {
  const [hours, minutes = '00', seconds] = offset.slice(1).split(':');
  if (/^0+$/.test(hours! + minutes + (seconds ?? ''))) return 'Z';
  return `${offset[0]}${hours}:${minutes}${seconds ? ':' + seconds : ''}`;
}

/** The legacy "escape" bytea format: backslash-octal sequences. */
function unescapeBytea(text: string): string {
  return text.replace(/\\(\\|[0-7]{3})/g, (_, code: string) => (code === '\\' ? '\\' : String.fromCharCode(parseInt(code, 8))));
}

const SCALARS: Record<number, Parser> = {
  16: toBoolean, // bool
  17: toBase64, // bytea
  20: identity, // int8
  21: toNumber, // int2
  23: toNumber, // int4
  26: toNumber, // oid
  114: toJson, // json
  700: toFloat, // float4
  701: toFloat, // float8
  790: identity, // money
  1082: identity, // date: already ISO 8601 (YYYY-MM-DD) in the default DateStyle
  1083: identity, // time
  1114: toIsoTimestamp, // timestamp
  1184: toIsoTimestamp, // timestamptz
  1266: toIsoTime, // timetz
  1700: identity, // numeric
  3802: toJson, // jsonb
};

/** Array type OID → element type OID, for the element types with a parser above or plain text. */
const ARRAYS: Record<number, number> = {
  1000: 16, 1001: 17, 1016: 20, 1005: 21, 1007: 23, 1028: 26, 199: 114, 1021: 700, 1022: 701, 791: 790,
  1182: 1082, 1183: 1083, 1115: 1114, 1185: 1184, 1270: 1266, 1231: 1700, 3807: 3802,
  // text-like elements: kept as strings
  1002: 25, 1003: 25, 1009: 25, 1014: 25, 1015: 25, 2951: 25, 1041: 25, 651: 25, 1040: 25, 1187: 25, 1561: 25, 1563: 25,
};

/** Built-in types whose text form is the right JSON value as it is. */
const TEXT_TYPES = new Set([25, 1043, 1042, 18, 19, 2950, 869, 650, 829, 774, 1186, 3904, 3906, 3908, 3910, 3912, 3926, 142, 705]);

const parsers = new Map<number, Parser>();
function parserFor(oid: number): Parser {
  let parser = parsers.get(oid);
  if (!parser) {
    const element = ARRAYS[oid];
    // box[] uses ';' as its delimiter and is not listed, so ',' is right for every array here.
    parser = element !== undefined ? arrayParser(element) : (SCALARS[oid] ?? identity);
    parsers.set(oid, parser);
  }
  return parser;
}

/** Whether results of this type are parsed here (false: sent as the server's text, unless looked up). */
export function isKnownType(oid: number): boolean {
  return oid in SCALARS || oid in ARRAYS || TEXT_TYPES.has(oid);
}

/** Parses the text of an array whose elements are of `elementOid` (a scalar above, or text). */
export function arrayParser(elementOid: number): Parser {
  const elementParser = SCALARS[elementOid] ?? identity;
  return (text) => parseArray(text, elementParser);
}

/** The object pg's `types` option expects. Binary format is never requested by pg-actions. */
export const jsonSafeTypes = {
  getTypeParser: (oid: number, format?: string): Parser => (format === 'binary' ? (value: unknown) => value : parserFor(oid)) as Parser,
};

/**
 * Whether a column's parsed value can take much more memory than its text: json, jsonb and
 * arrays (types not known here may be arrays, parsed after the statement).
 */
export function expandsWhenParsed(oid: number): boolean {
  return oid === 114 || oid === 3802 || oid in ARRAYS || !isKnownType(oid);
}

/**
 * Each `[ { , :` of JSON or an array literal may become an array, an object, an element or a
 * property: at most ~48 bytes each on Node 20 (`[{},…]` 32 per character, a property of a large
 * object 44). Counted before parsing, so `[{},{},…]` cannot turn 10 MB into 200 MB.
 */
const STRUCTURE_BYTES = 48;

export function structureCost(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 44 || c === 58 || c === 91 || c === 123) count++; // , : [ {
  }
  return count * STRUCTURE_BYTES;
}
