// The range index of the pattern machine must find exactly the ranges that hold a value, for
// any mix of widths, overlaps, open sides and inclusive or exclusive bounds.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { RangeIndex } from "../../src/patterns/range-index.js";

interface Bounds {
  low: number;
  lowInclusive: boolean;
  high: number;
  highInclusive: boolean;
}

const bound = fc.oneof(fc.integer({ min: -20, max: 20 }), fc.constantFrom(-Infinity, Infinity, 0.5));
const range = fc
  .tuple(bound, fc.boolean(), bound, fc.boolean())
  .map(([a, lowInclusive, b, highInclusive]): Bounds => ({ low: Math.min(a, b), lowInclusive, high: Math.max(a, b), highInclusive }));

function holds(r: Bounds, v: number): boolean {
  return (r.lowInclusive ? r.low <= v : r.low < v) && (r.highInclusive ? v <= r.high : v < r.high);
}

/** Builds an index of `ranges` and checks that each search finds exactly the ranges a scan finds, each once. */
function assertSearchesAgreeWithScan(ranges: readonly Bounds[], values: readonly number[]): void {
  // States are numbers, as in the laid-out machine: state offsets.
  const index = new RangeIndex<number>();
  const states = ranges.map((_, i) => 100 + i);
  ranges.forEach((r, i) => index.add(r.low, r.lowInclusive, r.high, r.highInclusive, states[i]!));
  index.seal();
  for (const value of values) {
    const found: number[] = [];
    index.search(value, found);
    const expected = states.filter((_, i) => holds(ranges[i]!, value));
    assert.deepEqual(new Set(found), new Set(expected), `value ${value}`);
    assert.equal(found.length, expected.length, "each range once");
  }
}

test("range index - finds exactly the ranges holding the value (against a scan of all ranges)", () => {
  fc.assert(
    fc.property(
      fc.array(range, { maxLength: 40 }),
      fc.array(fc.oneof(fc.integer({ min: -22, max: 22 }), fc.constantFrom(0.5, 1e9, -1e9)), { minLength: 1, maxLength: 10 }),
      assertSearchesAgreeWithScan,
    ),
    { numRuns: 1500 },
  );
});

test("range index - one wide range among many narrow ones does not make a search read them all", () => {
  const index = new RangeIndex<number>();
  const wide = 0;
  index.add(-Infinity, true, Infinity, true, wide);
  const narrow = Array.from({ length: 10_000 }, (_, i) => {
    const state = 1 + i;
    index.add(i * 10, true, i * 10 + 5, false, state);
    return state;
  });
  index.seal();
  const found: number[] = [];
  index.search(12_342, found);
  assert.deepEqual(found.sort((a, b) => Number(a === wide) - Number(b === wide)), [narrow[1234]!, wide]);
  found.length = 0;
  index.search(12_347, found);
  assert.deepEqual(found, [wide]);
});

test("range index - a sealed index takes no more ranges", () => {
  const index = new RangeIndex<number>();
  index.seal();
  assert.throws(() => index.add(0, true, 1, true, 0), /sealed/);
});

test("range index - many barely overlapping ranges (kept flat) find exactly the ranges holding the value", () => {
  // Narrow ranges, each near its own spot with a little overlap: more than the handful scanned
  // one by one and few enough memberships for the flat form; a few open-sided ones too.
  const narrow = fc.tuple(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 3 }), fc.boolean(), fc.boolean());
  fc.assert(
    fc.property(
      fc.array(narrow, { minLength: 9, maxLength: 60 }),
      fc.constantFrom(0, 1, 2),
      fc.array(fc.oneof(fc.integer({ min: -2, max: 130 }), fc.constant(0.5)), { minLength: 1, maxLength: 20 }),
      (spots, openSided, values) => {
        const ranges: Bounds[] = spots.map(([spot, width, lowInclusive, highInclusive]) => ({
          low: spot * 2,
          lowInclusive,
          high: spot * 2 + width,
          highInclusive,
        }));
        for (let i = 0; i < openSided; i++) {
          ranges.push(
            i === 0
              ? { low: 100, lowInclusive: false, high: Infinity, highInclusive: true }
              : { low: -Infinity, lowInclusive: true, high: 3, highInclusive: false },
          );
        }
        assertSearchesAgreeWithScan(ranges, values);
      },
    ),
    { numRuns: 1500 },
  );
});

test("range index - ranges that never overlap (packed with their states) find exactly the range holding the value", () => {
  // Disjoint ranges, as tenants' id ranges and /24 blocks are: no region has two of them, so
  // the index packs each block of bounds with its regions' states. Points, touching ends,
  // gaps, open sides, and values on, between, below and above every bound.
  const piece = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }), fc.boolean(), fc.boolean());
  fc.assert(
    fc.property(
      fc.array(piece, { minLength: 9, maxLength: 80 }),
      fc.boolean(),
      fc.boolean(),
      fc.array(fc.oneof(fc.integer({ min: -3, max: 330 }), fc.constantFrom(0.5, 7.5, -Infinity, Infinity)), { minLength: 1, maxLength: 30 }),
      (pieces, openBelow, openAbove, values) => {
        const ranges: Bounds[] = [];
        let at = 0;
        for (const [gap, width, lowInclusive, highInclusive] of pieces) {
          const low = at + gap;
          // A point must include both ends to hold anything; wider ranges may exclude either.
          ranges.push(width === 0 ? { low, lowInclusive: true, high: low, highInclusive: true } : { low, lowInclusive, high: low + width, highInclusive });
          // The next range starts after this one's high end, or on it when this one excludes it.
          at = low + width + (width === 0 || highInclusive ? 1 : 0);
        }
        if (openBelow) ranges.push({ low: -Infinity, lowInclusive: true, high: -1, highInclusive: false });
        if (openAbove) ranges.push({ low: at + 1, lowInclusive: true, high: Infinity, highInclusive: true });
        assertSearchesAgreeWithScan(ranges, values);
      },
    ),
    { numRuns: 1500 },
  );
});
