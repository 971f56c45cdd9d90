/**
 * The exact-number JSON reader against JSON.parse: same values for every document whose numbers
 * a double holds, whatever the nesting, key names (__proto__, "") or spacing.
 */
import fc from 'fast-check';
import { parseExactJson } from '../../connection/exact-json.js';

/** An exponent ("1e" here, as a key) sends the text down the exact-number path (JSON.parse's fast path skips it). */
const slowPath = (json: string): string => `{"e": ${json}, "1e": 0}`;

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

test('a number of 16 or more significant digits is exact whichever path the document takes, the point anywhere in it (REVIEW4 R34)', () => {
  const digits = fc.tuple(fc.integer({ min: 1, max: 9 }), fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 39, size: 'max' })).map(([first, rest]) => [first, ...rest].join(''));
  const decimal = fc.tuple(digits, fc.nat(), fc.boolean()).map(([digits, at, negative]) => {
    const point = at % (digits.length + 1);
    const whole = digits.slice(0, point) || '0';
    const fraction = digits.slice(point);
    return `${negative ? '-' : ''}${whole}${fraction ? '.' + fraction : ''}`;
  });
  fc.assert(
    fc.property(decimal, (number) => {
      // Without an exponent or a run of 16 digits anywhere, the document may take the fast path.
      const fast = parseExactJson(`{"amount": ${number}}`) as { amount: unknown };
      const exact = (parseExactJson(slowPath(number)) as { e: unknown }).e;
      expect(fast.amount).toEqual(exact);
      if (typeof exact === 'number') expect(String(exact)).toBe(String(Number(number)));
    }),
    { numRuns: 2000 },
  );
  expect(parseExactJson('{"amount": 9007199254740.993, "qty": 12345678.123456789, "cost": 0.1}')).toEqual({ amount: '9007199254740.993', qty: '12345678.123456789', cost: 0.1 });
});
