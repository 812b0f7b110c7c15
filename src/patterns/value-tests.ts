/**
 * Compiles one field condition's value matchers into a single test of a leaf value, for the
 * compiled matcher. Everything that does not depend on the event happens here: exact values go
 * into Sets, ignore-case operands are lower-cased, CIDR blocks become numeric bounds,
 * wildcards become segment scanners, regexes become re2js automata (linear time) and a `$and`
 * becomes the conjunction of its inner matchers' tests. A test allocates nothing for the common cases (exact
 * strings, numbers, prefixes, ASCII ignore-case, IPv4).
 *
 * @module
 */

import { compileIRegexp } from "./i-regexp.js";
import { parseIpAddress } from "./ip-address.js";
import { isComparableNumber } from "./numeric.js";
import type { IpRange, ValueMatcher } from "./pattern-types.js";
import { compileWildcard } from "./wildcard.js";

/** A compiled test of one leaf value (a string, number, boolean or null). */
export type ValueTest = (value: unknown) => boolean;

const ALWAYS: ValueTest = () => true;
const NEVER: ValueTest = () => false;

// Scratch space for parsing an event's IP address; matching is synchronous, so never shared.
const scratch = new Uint32Array(4);

interface CompiledRange {
  family: 4 | 6;
  low: Uint32Array;
  high: Uint32Array;
}

function words(value: bigint, family: 4 | 6): Uint32Array {
  const out = new Uint32Array(family === 4 ? 1 : 4);
  for (let k = out.length - 1; k >= 0; k--) {
    out[k] = Number(value & 0xffffffffn);
    value >>= 32n;
  }
  return out;
}

function compileRange(range: IpRange): CompiledRange {
  return { family: range.family, low: words(range.low, range.family), high: words(range.high, range.family) };
}

/** -1, 0 or 1 as `scratch` (first `length` words) compares to `bound`. */
function compareScratch(bound: Uint32Array): number {
  for (let k = 0; k < bound.length; k++) {
    const a = scratch[k]!;
    const b = bound[k]!;
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

function ipTest(ranges: readonly IpRange[]): ValueTest {
  const compiled = ranges.map(compileRange);
  return (value) => {
    if (typeof value !== "string") return false;
    const family = parseIpAddress(value, scratch);
    if (family === 0) return false;
    for (const range of compiled) {
      if (range.family === family && compareScratch(range.low) >= 0 && compareScratch(range.high) <= 0) return true;
    }
    return false;
  };
}

/** True for an ASCII upper-case letter or any non-ASCII code unit: those need lower-casing. */
function needsLowering(code: number): boolean {
  return (code >= 65 && code <= 90) || code >= 128;
}

/**
 * `value.toLowerCase()` without allocating when it is already lower-case ASCII, the usual case.
 */
function lowered(value: string): string {
  for (let i = 0; i < value.length; i++) {
    if (needsLowering(value.charCodeAt(i))) return value.toLowerCase();
  }
  return value;
}

/**
 * Compares `value.slice(start, start + lower.length)`, lower-cased, with `lower`, folding ASCII
 * in place. Returns -1 when a non-ASCII code unit is met: then only a full `toLowerCase` is
 * exact (it can change lengths), and the caller falls back to it.
 */
function foldedEquals(value: string, start: number, lower: string): number {
  for (let k = 0; k < lower.length; k++) {
    let code = value.charCodeAt(start + k);
    if (code >= 128) return -1;
    if (code >= 65 && code <= 90) code += 32;
    if (code !== lower.charCodeAt(k)) return 0;
  }
  return 1;
}

function prefixIgnoreCase(lower: string): ValueTest {
  return (value) => {
    if (typeof value !== "string") return false;
    if (value.length >= lower.length) {
      const folded = foldedEquals(value, 0, lower);
      if (folded >= 0) return folded === 1;
    }
    return value.toLowerCase().startsWith(lower);
  };
}

function suffixIgnoreCase(lower: string): ValueTest {
  return (value) => {
    if (typeof value !== "string") return false;
    if (value.length >= lower.length) {
      const folded = foldedEquals(value, value.length - lower.length, lower);
      if (folded >= 0) return folded === 1;
    }
    return value.toLowerCase().endsWith(lower);
  };
}

function equalsIgnoreCase(lower: string): ValueTest {
  return (value) => typeof value === "string" && lowered(value) === lower;
}

function numericTest(matcher: Extract<ValueMatcher, { kind: "numeric" }>): ValueTest {
  const low = matcher.lower?.value ?? -Infinity;
  const lowInclusive = matcher.lower?.inclusive ?? true;
  const high = matcher.upper?.value ?? Infinity;
  const highInclusive = matcher.upper?.inclusive ?? true;
  return (value) =>
    typeof value === "number" &&
    (lowInclusive ? value >= low : value > low) &&
    (highInclusive ? value <= high : value < high) &&
    isComparableNumber(value);
}

function compileOne(matcher: Exclude<ValueMatcher, { kind: "exact" }>): ValueTest {
  switch (matcher.kind) {
    case "prefix": {
      const prefix = matcher.value;
      if (matcher.ignoreCase) return prefixIgnoreCase(prefix);
      return (value) => typeof value === "string" && value.startsWith(prefix);
    }
    case "suffix": {
      const suffix = matcher.value;
      if (matcher.ignoreCase) return suffixIgnoreCase(suffix);
      return (value) => typeof value === "string" && value.endsWith(suffix);
    }
    case "equals-ignore-case":
      return equalsIgnoreCase(matcher.value);
    case "wildcard": {
      const test = compileWildcard(matcher.segments);
      return (value) => typeof value === "string" && test(value);
    }
    case "numeric":
      return numericTest(matcher);
    case "exists":
      return matcher.exists ? ALWAYS : NEVER; // absence is judged by the condition, not per value
    case "cidr":
      return ipTest([matcher.range]);
    case "anything-but": {
      const excluded = new Set<unknown>(matcher.values);
      return (value) => !excluded.has(value);
    }
    case "anything-but-prefix": {
      const prefixes = matcher.values;
      return (value) => typeof value !== "string" || !prefixes.some((prefix) => value.startsWith(prefix));
    }
    case "anything-but-suffix": {
      const suffixes = matcher.values;
      return (value) => typeof value !== "string" || !suffixes.some((suffix) => value.endsWith(suffix));
    }
    case "anything-but-ignore-case": {
      const excluded = new Set(matcher.values);
      return (value) => typeof value !== "string" || !excluded.has(lowered(value));
    }
    case "anything-but-wildcard": {
      const tests = matcher.values.map((w) => compileWildcard(w.segments));
      return (value) => typeof value !== "string" || !tests.some((test) => test(value));
    }
    // Relaybus' own operators.
    case "and":
      return allOf(matcher.matchers.map((inner) => compileValueTest([inner])));
    case "contains": {
      const needle = matcher.value;
      return (value) => typeof value === "string" && value.includes(needle);
    }
    case "regex": {
      const test = compileIRegexp(matcher.tree);
      return (value) => typeof value === "string" && test(value);
    }
    case "wildcard-ignore-case": {
      const test = compileWildcard(matcher.segments);
      return (value) => typeof value === "string" && test(lowered(value));
    }
    case "anything-but-wildcard-ignore-case": {
      const tests = matcher.values.map((w) => compileWildcard(w.segments));
      return (value) => {
        if (typeof value !== "string") return true;
        const lower = lowered(value);
        return !tests.some((test) => test(lower));
      };
    }
  }
}

/** A test that holds when every one of `tests` does (a `$and`), tried in the order written. */
function allOf(tests: readonly ValueTest[]): ValueTest {
  if (tests.length === 2) {
    const [a, b] = tests as [ValueTest, ValueTest];
    return (value) => a(value) && b(value);
  }
  return (value) => {
    for (let i = 0; i < tests.length; i++) if (!tests[i]!(value)) return false;
    return true;
  };
}

/** Folds a condition's literal values into Set lookups (plus IP ranges for IP literals). */
function exactTest(matchers: readonly Extract<ValueMatcher, { kind: "exact" }>[]): ValueTest | undefined {
  if (matchers.length === 0) return undefined;
  const plain = new Set<unknown>();
  const ips: IpRange[] = [];
  for (const matcher of matchers) {
    if (matcher.ip) ips.push(matcher.ip);
    else plain.add(matcher.value);
  }
  if (ips.length === 0) return (value) => plain.has(value);
  const ip = ipTest(ips);
  return (value) => plain.has(value) || ip(value);
}

/**
 * The test of one leaf value for a condition: true when any of its matchers accepts it.
 * `exists: false` contributes nothing here; the caller handles absence.
 */
export function compileValueTest(matchers: readonly ValueMatcher[]): ValueTest {
  const exact: Extract<ValueMatcher, { kind: "exact" }>[] = [];
  const tests: ValueTest[] = [];
  for (const matcher of matchers) {
    if (matcher.kind === "exact") exact.push(matcher);
    else if (!(matcher.kind === "exists" && !matcher.exists)) tests.push(compileOne(matcher));
  }
  const literal = exactTest(exact);
  if (literal) tests.unshift(literal);
  if (tests.includes(ALWAYS)) return ALWAYS;
  if (tests.length === 0) return NEVER;
  if (tests.length === 1) return tests[0]!;
  if (tests.length === 2) {
    const [a, b] = tests as [ValueTest, ValueTest];
    return (value) => a(value) || b(value);
  }
  return (value) => {
    for (let i = 0; i < tests.length; i++) if (tests[i]!(value)) return true;
    return false;
  };
}
