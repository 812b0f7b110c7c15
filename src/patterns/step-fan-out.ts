/**
 * How wide each step of a pattern machine is likely to be: for a condition (a path and one
 * matcher), about how many alternatives of the machine's patterns would also hold for an
 * event value this condition accepts. The machine puts each alternative's narrowest
 * conditions first, so that an event's first lookups land on the few patterns particular to it.
 *
 * The estimate reads only the patterns, never events:
 * - an exact value (or equals-ignore-case): the alternatives with that same value;
 * - a prefix (suffix): the alternatives whose prefix (suffix) on the path is a prefix (suffix)
 *   of it, itself included — an event starting with `bkt-38929-` also starts with `bkt-`;
 * - a wildcard: the same, on its first (or last) literal segment, which is what indexes it;
 * - a numeric range or IPv4 block: the ranges on the path that overlap it: a tenant's id range
 *   overlaps itself and the thresholds below it, a threshold like `> 1000` every range above.
 * - anything else: how many alternatives hold that very condition.
 *
 * @module
 */

import type { PatternAlternative, ValueMatcher } from "./pattern-types.js";

/** Fan-out estimate by `stepKey(path, matcherKey)`. */
export type StepFanOut = ReadonlyMap<string, number>;

export function stepKey(path: string, matcherKey: string): string {
  return `${path}\u0000${matcherKey}`;
}

interface PathStats {
  readonly exact: Map<string, number>;
  /** Prefix texts (plain and ignore-case apart, ignore-case ones lower-cased) to their use count. */
  readonly prefixes: Map<string, number>;
  readonly suffixes: Map<string, number>;
  readonly numeric: { lows: number[]; highs: number[] };
  readonly ipv4: { lows: number[]; highs: number[] };
}

function newStats(): PathStats {
  return {
    exact: new Map(),
    prefixes: new Map(),
    suffixes: new Map(),
    numeric: { lows: [], highs: [] },
    ipv4: { lows: [], highs: [] },
  };
}

/** The text an affix matcher is found by, tagged so plain and ignore-case ones never mix; undefined for others. */
function affixOf(matcher: ValueMatcher): { side: "prefix" | "suffix"; text: string } | undefined {
  switch (matcher.kind) {
    case "prefix":
      return { side: "prefix", text: (matcher.ignoreCase ? "i" : "s") + matcher.value };
    case "suffix":
      return { side: "suffix", text: (matcher.ignoreCase ? "i" : "s") + matcher.value };
    case "wildcard": {
      const first = matcher.segments[0]!;
      if (first !== "") return { side: "prefix", text: `s${first}` };
      const last = matcher.segments[matcher.segments.length - 1]!;
      return last === "" ? undefined : { side: "suffix", text: `s${last}` };
    }
    default:
      return undefined;
  }
}

function rangeOf(matcher: ValueMatcher): { ipv4: boolean; low: number; high: number } | undefined {
  if (matcher.kind === "numeric") {
    return { ipv4: false, low: matcher.lower?.value ?? -Infinity, high: matcher.upper?.value ?? Infinity };
  }
  const range = matcher.kind === "cidr" ? matcher.range : matcher.kind === "exact" ? matcher.ip : undefined;
  if (range === undefined || range.family !== 4) return undefined;
  return { ipv4: true, low: Number(range.low), high: Number(range.high) };
}

/** How many of the sorted `lows`/`highs` ranges overlap [low, high]: all but those wholly below or above it. */
function overlapping(sortedLows: readonly number[], sortedHighs: readonly number[], low: number, high: number): number {
  const whollyBelow = countBelow(sortedHighs, low);
  const whollyAbove = sortedLows.length - countAtMost(sortedLows, high);
  return sortedLows.length - whollyBelow - whollyAbove;
}

function countAtMost(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function countBelow(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Sums the counts of every prefix (or suffix) of `text` that `counts` holds, `text` itself included. */
function affixFanOut(counts: ReadonlyMap<string, number>, text: string, side: "prefix" | "suffix"): number {
  // text[0] is the plain/ignore-case tag, kept on every piece.
  const tag = text[0]!;
  const body = text.slice(1);
  let total = 0;
  for (let length = 0; length <= body.length; length++) {
    const piece = side === "prefix" ? body.slice(0, length) : body.slice(body.length - length);
    total += counts.get(tag + piece) ?? 0;
  }
  return total;
}

/**
 * Estimates every step's fan-out over `alternatives` (each of a machine's patterns').
 * `keyOf` gives a matcher's identifying key, as the machine's steps use.
 */
export function estimateStepFanOut(
  alternatives: readonly PatternAlternative[],
  keyOf: (matcher: ValueMatcher) => string,
): StepFanOut {
  const stats = new Map<string, PathStats>();
  const uses = new Map<string, number>();
  const steps: { path: string; matcher: ValueMatcher; key: string }[] = [];
  const seenSteps = new Set<string>();
  for (const alternative of alternatives) {
    for (const condition of alternative) {
      let pathStats = stats.get(condition.path);
      if (pathStats === undefined) stats.set(condition.path, (pathStats = newStats()));
      for (const matcher of condition.matchers) {
        const key = stepKey(condition.path, keyOf(matcher));
        uses.set(key, (uses.get(key) ?? 0) + 1);
        if (!seenSteps.has(key)) {
          seenSteps.add(key);
          steps.push({ path: condition.path, matcher, key });
        }
        const affix = affixOf(matcher);
        if (affix !== undefined) {
          const counts = affix.side === "prefix" ? pathStats.prefixes : pathStats.suffixes;
          counts.set(affix.text, (counts.get(affix.text) ?? 0) + 1);
        }
        const range = rangeOf(matcher);
        if (range !== undefined) {
          const list = range.ipv4 ? pathStats.ipv4 : pathStats.numeric;
          list.lows.push(range.low);
          list.highs.push(range.high);
        }
      }
    }
  }
  for (const pathStats of stats.values()) {
    for (const list of [pathStats.numeric, pathStats.ipv4]) {
      list.lows.sort((a, b) => a - b);
      list.highs.sort((a, b) => a - b);
    }
  }
  const fanOut = new Map<string, number>();
  for (const { path, matcher, key } of steps) {
    const pathStats = stats.get(path)!;
    const affix = affixOf(matcher);
    const range = rangeOf(matcher);
    if (affix !== undefined) {
      fanOut.set(key, affixFanOut(affix.side === "prefix" ? pathStats.prefixes : pathStats.suffixes, affix.text, affix.side));
    } else if (range !== undefined) {
      const list = range.ipv4 ? pathStats.ipv4 : pathStats.numeric;
      fanOut.set(key, overlapping(list.lows, list.highs, range.low, range.high));
    } else {
      fanOut.set(key, uses.get(key)!);
    }
  }
  return fanOut;
}
