/**
 * Which numbers numeric matching can compare, as event-ruler's `ComparableNumber` decides.
 *
 * event-ruler compares numbers as fixed-point decimals: at most 6 digits after the decimal
 * point, between -5e9 and 5e9 inclusive. A pattern operand outside that is an invalid pattern;
 * an event value outside it is simply not a number for `numeric` and numeric `anything-but`
 * (it can still equal a number literal exactly).
 *
 * **Which decimal a double stands for.** Once JSON is parsed only the double is left, not the
 * text, so a number is judged by the decimal JavaScript writes for it: `Number.prototype
 * .toString` gives the shortest decimal that reads back as the same double. `0.1 + 0.2` is
 * `0.30000000000000004` (17 places, refused); `4999999999.999999` is itself (6 places, taken).
 * Two texts that read as one double are one number here (`4999999999.9999995` and
 * `4999999999.999999` are the same double), since nothing after `JSON.parse` can tell them apart.
 *
 * **Why comparing the doubles is then exact.** Every accepted number is the double nearest to a
 * decimal `k / 1e6` with `|k| <= 5e15`. Between -5e9 and 5e9 doubles lie at most 2^-20
 * (about 9.5e-7) apart, closer than the 1e-6 between neighbouring 6-place decimals, so distinct
 * decimals round to distinct doubles; and rounding to nearest never reverses an order. So `<`,
 * `<=` and `===` on the doubles give exactly the answers of event-ruler's fixed-point decimals,
 * with nothing to convert at match time.
 *
 * @module
 */

/** The largest magnitude numeric matching accepts (event-ruler's `FIVE_BILLION`). */
export const MAX_COMPARABLE_NUMBER = 5e9;

/** How many digits after the decimal point numeric matching keeps. */
export const MAX_NUMBER_DECIMALS = 6;

const SCALE = 10 ** MAX_NUMBER_DECIMALS;

/**
 * Below this magnitude the arithmetic test in {@link isComparableNumber} gives exactly the
 * answer of {@link decimalPlaces}: for |x| < 2^30, `x * 1e6` is within 0.125 of the integer
 * `k` of a 6-place decimal `k / 1e6` that x rounds from (0.06 from x's own rounding, whose
 * error is at most 2^-24, and 0.0625 from the product's, which is below 2^50), so `Math.round` recovers `k` and `k / 1e6` rounds back to x; and when
 * that round trip holds, x is the nearest double to a 6-place decimal, whose shortest form has
 * at most 6 places. Above it the product's error can pass 0.5 (from 2^32 up it does, and
 * 6-place numbers were refused), so there the decimal is read from the text.
 */
const ARITHMETIC_TEST_BELOW = 2 ** 30;

/**
 * The number of digits after the decimal point in the shortest decimal that reads back as
 * `value` (what `String(value)` writes, exponent included): 0 for integers, 1 for `0.5`, 7 for
 * `1e-7`, 17 for `0.1 + 0.2`. `value` must be finite.
 */
export function decimalPlaces(value: number): number {
  const text = String(Math.abs(value));
  const e = text.indexOf("e");
  const mantissa = e < 0 ? text : text.slice(0, e);
  const exponent = e < 0 ? 0 : Number(text.slice(e + 1));
  const dot = mantissa.indexOf(".");
  const fraction = dot < 0 ? 0 : mantissa.length - dot - 1;
  return Math.max(0, fraction - exponent);
}

/**
 * True when `value` is a number event-ruler can compare: finite, within ±5e9, and with at most
 * 6 decimal places in its shortest decimal form ({@link decimalPlaces}). Allocation-free for
 * integers and for magnitudes below 2^30, the usual prices and counts.
 */
export function isComparableNumber(value: number): boolean {
  if (!(value >= -MAX_COMPARABLE_NUMBER && value <= MAX_COMPARABLE_NUMBER)) return false;
  if (Number.isInteger(value)) return true;
  if (value > -ARITHMETIC_TEST_BELOW && value < ARITHMETIC_TEST_BELOW) {
    return Math.round(value * SCALE) / SCALE === value;
  }
  return decimalPlaces(value) <= MAX_NUMBER_DECIMALS;
}

/** Why `value` cannot be a numeric operand, or undefined when it can. */
export function whyNotComparable(value: number): string | undefined {
  if (!Number.isFinite(value)) return "must be a finite number";
  if (value < -MAX_COMPARABLE_NUMBER || value > MAX_COMPARABLE_NUMBER) {
    return `must be between -5e9 and 5e9 inclusive, got ${value}`;
  }
  if (!isComparableNumber(value)) {
    return `supports at most ${MAX_NUMBER_DECIMALS} decimal places, got ${value} (${decimalPlaces(value)} places)`;
  }
  return undefined;
}
