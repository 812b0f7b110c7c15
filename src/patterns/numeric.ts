/**
 * Which numbers numeric matching can compare, as event-ruler's `ComparableNumber` decides.
 *
 * event-ruler compares numbers as fixed-point decimals: at most 6 digits after the decimal
 * point, between -5e9 and 5e9 inclusive. A pattern operand outside that is an invalid pattern;
 * an event value outside it is simply not a number for `numeric` and numeric `anything-but`
 * (it can still equal a number literal exactly). Inside that set, comparing the doubles directly
 * gives the same order as event-ruler's fixed-point form, so the matchers compare doubles.
 *
 * @module
 */

/** The largest magnitude numeric matching accepts (event-ruler's `FIVE_BILLION`). */
export const MAX_COMPARABLE_NUMBER = 5e9;

/** How many digits after the decimal point numeric matching keeps. */
export const MAX_NUMBER_DECIMALS = 6;

const SCALE = 10 ** MAX_NUMBER_DECIMALS;

/**
 * True when `value` is a number event-ruler can compare: finite, within ±5e9, and with at most
 * 6 decimal places. The decimal places are judged on the double (scaling by 1e6 must round-trip
 * exactly), because the original JSON text is gone once the event is parsed; this is exact for
 * every number written with 6 or fewer decimals at the magnitudes prices and counts have.
 */
export function isComparableNumber(value: number): boolean {
  if (!(value >= -MAX_COMPARABLE_NUMBER && value <= MAX_COMPARABLE_NUMBER)) return false;
  if (Number.isInteger(value)) return true;
  return Math.round(value * SCALE) / SCALE === value;
}

/** Why `value` cannot be a numeric operand, or undefined when it can. */
export function whyNotComparable(value: number): string | undefined {
  if (!Number.isFinite(value)) return "must be a finite number";
  if (value < -MAX_COMPARABLE_NUMBER || value > MAX_COMPARABLE_NUMBER) {
    return `must be between -5e9 and 5e9 inclusive, got ${value}`;
  }
  if (!isComparableNumber(value)) return `supports at most 6 decimal places, got ${value}`;
  return undefined;
}
