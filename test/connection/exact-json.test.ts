/**
 * The exact-number JSON reader against JSON.parse: same values for every document whose numbers
 * a double holds, whatever the nesting, key names (__proto__, "") or spacing.
 */
import fc from 'fast-check';
import { parseExactJson } from '../../connection/exact-json.js';

/** An "e" key sends the text down the exact-number path (JSON.parse's fast path skips it). */
const slowPath = (json: string): string => `{"e": ${json}}`;

test('reads what JSON.parse reads when every number is exact', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), fc.boolean(), (value, spaced) => {
      const json = JSON.stringify(value, null, spaced ? 2 : undefined);
      expect(parseExactJson(slowPath(json))).toEqual(JSON.parse(slowPath(json)));
    }),
    { numRuns: 500 },
  );
});

test('a "__proto__" key is a plain property, as with JSON.parse, nested or not', () => {
  const parsed = parseExactJson(slowPath('{"__proto__": {"isAdmin": true}, "": [{}, [], {"__proto__": 1}]}')) as { e: Record<string, unknown> };
  expect(Object.getPrototypeOf(parsed.e)).toBe(Object.prototype);
  expect((parsed.e as { isAdmin?: unknown }).isAdmin).toBeUndefined();
  expect(Object.keys(parsed.e)).toEqual(['__proto__', '']);
  expect(parsed.e['']).toEqual(JSON.parse('[{}, [], {"__proto__": 1}]'));
});

test('100,000 levels of nesting do not exhaust the call stack', () => {
  const depth = 100_000;
  let value = parseExactJson(`${'['.repeat(depth)}1e400${']'.repeat(depth)}`);
  for (let level = 0; level < depth; level++) value = (value as unknown[])[0];
  expect(value).toBe('1e400');
});

test('a string ends at the first quote after an even run of backslashes', () => {
  const value = { e: ['a\\', '"', '\\"', '\\\\', 'x\\\\"y', ''], '\\': { '"': '\\' } };
  expect(parseExactJson(JSON.stringify(value))).toEqual(value);
});
