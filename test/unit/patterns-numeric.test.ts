// Numbers as event-ruler compares them: within ±5e9, at most 6 decimal places, judged on the
// shortest decimal that reads back as the double; and comparing the doubles is then exact.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { compileEventPattern } from "../../src/patterns/compile-pattern.js";
import { decimalPlaces, isComparableNumber, whyNotComparable } from "../../src/patterns/numeric.js";
import { parseEventPattern } from "../../src/patterns/parse-pattern.js";
import { matchesEventPattern } from "../../src/patterns/reference-matcher.js";

test("patterns numbers - decimal places are read from the shortest decimal, exponent included", () => {
  assert.equal(decimalPlaces(0), 0);
  assert.equal(decimalPlaces(-0), 0);
  assert.equal(decimalPlaces(300), 0);
  assert.equal(decimalPlaces(0.5), 1);
  assert.equal(decimalPlaces(-123.456), 3);
  assert.equal(decimalPlaces(1e-6), 6);
  assert.equal(decimalPlaces(1e-7), 7); // String(1e-7) is "1e-7"
  assert.equal(decimalPlaces(1.5e-7), 8);
  assert.equal(decimalPlaces(0.1 + 0.2), 17); // 0.30000000000000004
  assert.equal(decimalPlaces(1e21), 0); // "1e+21"
  assert.equal(decimalPlaces(1.25e21), 0);
  assert.equal(decimalPlaces(4999999999.999999), 6);
});

test("patterns numbers - the edges of what numeric matching can compare", () => {
  const comparable = [5e9, -5e9, 4999999999.999999, -4999999999.999999, 1e-6, -1e-6, 0, -0, 0.000001, 123456.5];
  for (const value of comparable) assert.equal(isComparableNumber(value), true, String(value));
  const not = [5e9 + 1, -5e9 - 1, 5000000000.000001, 1e-7, -1e-7, 0.1 + 0.2, 1e21, -1e21, 0.1234567, NaN, Infinity, -Infinity];
  for (const value of not) assert.equal(isComparableNumber(value), false, String(value));
  // Above 2^32 the old test (Math.round(x * 1e6) / 1e6 === x) refused numbers with 5 and 6 places.
  assert.equal(isComparableNumber(4380328669.33983), true);
  assert.equal(isComparableNumber(4294970486.188908), true);
  assert.equal(isComparableNumber(-4316588072.316999), true);
  // A text with 7 places that reads as the same double as a 6-place one is that number: after
  // JSON.parse nothing can tell them apart.
  const sevenPlaces = Number("4999999999.9999995");
  assert.equal(sevenPlaces, 4999999999.999999);
  assert.equal(isComparableNumber(sevenPlaces), true);
});

test("patterns numbers - operands that cannot be compared are refused with the reason", () => {
  assert.equal(whyNotComparable(5e9), undefined);
  assert.equal(whyNotComparable(4380328669.33983), undefined);
  assert.match(whyNotComparable(1e-7) ?? "", /at most 6 decimal places, got 1e-7 \(7 places\)/);
  assert.match(whyNotComparable(0.1 + 0.2) ?? "", /at most 6 decimal places, got 0\.30000000000000004 \(17 places\)/);
  assert.match(whyNotComparable(1e21) ?? "", /between -5e9 and 5e9/);
  assert.match(whyNotComparable(-5000000000.5) ?? "", /between -5e9 and 5e9/);
  assert.match(whyNotComparable(NaN) ?? "", /finite/);
});

/** A decimal text with `places` digits after the point, and its exact value in millionths when places <= 6. */
const decimalText = fc
  .tuple(
    fc.boolean(),
    fc.integer({ min: 0, max: 4999 }),
    fc.integer({ min: 0, max: 999_999 }),
    fc.integer({ min: 1, max: 9 }),
    fc.integer({ min: 0, max: 999_999_999 }),
  )
  .map(([negative, high, low, places, fraction]) => {
    const integer = high * 1_000_000 + low; // 0 .. 4999999999
    const digits = String(fraction % 10 ** places).padStart(places, "0");
    return `${negative ? "-" : ""}${integer}.${digits}`;
  });

test("patterns numbers - the fast test agrees with the shortest-decimal definition on random doubles", () => {
  const definition = (x: number): boolean => Math.abs(x) <= 5e9 && decimalPlaces(x) <= 6;
  fc.assert(
    fc.property(fc.oneof(decimalText.map(Number), fc.double({ min: -5e9, max: 5e9, noNaN: true })), (x) => {
      assert.equal(isComparableNumber(x), definition(x), String(x));
    }),
    { numRuns: 3000 },
  );
  // Around 2^30, where the test switches from arithmetic to reading the decimal.
  for (let k = -2000; k <= 2000; k++) {
    const x = 2 ** 30 + k * 2 ** -23;
    assert.equal(isComparableNumber(x), definition(x), String(x));
    assert.equal(isComparableNumber(-x), definition(-x), String(-x));
  }
});

/** Millionths as a BigInt, exact, from a decimal text with at most 6 places. */
function millionths(text: string): bigint {
  const [integer, fraction = ""] = text.split(".");
  const sign = text.startsWith("-") ? -1n : 1n;
  return BigInt(integer!) * 1_000_000n + sign * BigInt(fraction.padEnd(6, "0"));
}

/** The decimal text of a number of millionths. */
function fromMillionths(k: bigint): string {
  const magnitude = k < 0n ? -k : k;
  return `${k < 0n ? "-" : ""}${magnitude / 1_000_000n}.${String(magnitude % 1_000_000n).padStart(6, "0")}`;
}

test("patterns numbers - comparing the doubles of 6-place decimals within ±5e9 gives the decimals' exact order", () => {
  const sixPlaces = decimalText.filter((text) => text.split(".")[1]!.length <= 6);
  fc.assert(
    fc.property(sixPlaces, sixPlaces, fc.integer({ min: -3, max: 3 }), (a, b, step) => {
      // Neighbours 1e-6 apart are the hardest case: the doubles must still differ, in order.
      const c = fromMillionths(millionths(a) + BigInt(step));
      for (const [x, y] of [[a, b], [a, c]] as const) {
        const exact = millionths(x) < millionths(y) ? -1 : millionths(x) > millionths(y) ? 1 : 0;
        const doubles = Number(x) < Number(y) ? -1 : Number(x) > Number(y) ? 1 : 0;
        assert.equal(doubles, exact, `${x} vs ${y}`);
      }
    }),
    { numRuns: 2000 },
  );
});

test("patterns numbers - numeric ranges compare exactly at the top of the range", () => {
  const cases: [object, unknown, boolean][] = [
    [{ n: [{ numeric: [">", 4999999999.999998] }] }, { n: 4999999999.999999 }, true],
    [{ n: [{ numeric: [">", 4999999999.999998] }] }, { n: 4999999999.999998 }, false],
    [{ n: [{ numeric: ["<", -4999999999.999998] }] }, { n: -4999999999.999999 }, true],
    [{ n: [{ numeric: ["=", 4380328669.33983] }] }, { n: 4380328669.33983 }, true],
    [{ n: [{ numeric: ["=", 4380328669.33983] }] }, { n: 4380328669.339831 }, false],
    [{ n: [{ numeric: [">=", 0] }] }, { n: -0 }, true],
    [{ n: [{ numeric: ["<", 0] }] }, { n: -0 }, false],
    [{ n: [{ numeric: [">", 0] }] }, { n: 1e-7 }, false], // 7 places: not comparable
    [{ n: [{ numeric: [">", 0] }] }, { n: 0.1 + 0.2 }, false],
    [{ n: [{ numeric: [">", 0] }] }, { n: 1e21 }, false],
    [{ n: [{ "anything-but": [4294970486.188908] }] }, { n: 4294970486.188908 }, false],
  ];
  for (const [pattern, event, expected] of cases) {
    const parsed = parseEventPattern(pattern);
    const label = `${JSON.stringify(pattern)} on ${JSON.stringify(event)}`;
    assert.equal(matchesEventPattern(parsed, event), expected, `reference: ${label}`);
    assert.equal(compileEventPattern(parsed).matches(event), expected, `compiled: ${label}`);
  }
});
