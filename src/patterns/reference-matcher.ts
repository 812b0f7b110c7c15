/**
 * `matchesEventPattern`: the plain, readable definition of EventBridge matching. It is
 * written for correctness and clarity, not speed; {@link compileEventPattern} must agree
 * with it on every pattern and event, and the tests hold it to that.
 *
 * The definition, after aws/event-ruler's array-consistent finder (`ACFinder`):
 *
 * 1. The event is flattened into leaves: every string, number, boolean or null, named by the
 *    keys leading to it joined with `.` (array positions are not part of the name). Each leaf
 *    remembers which element of which array it sits in. Empty arrays and objects yield no leaf.
 * 2. A pattern matches when one of its alternatives does (`$or` forks alternatives).
 * 3. An alternative matches when its conditions can be met together: each condition picks a
 *    leaf with its path that one of its matchers accepts — all picked leaves taken from the same
 *    element of any array they share — or, for a condition with `exists: false`, finds no leaf
 *    with its path in that same slice of the event.
 *
 * @module
 */

import { iRegexpMatches } from "./i-regexp-reference.js";
import { ipAddressToBigInt } from "./ip-address.js";
import { isComparableNumber } from "./numeric.js";
import type { EventPattern, FieldCondition, IpRange, PatternAlternative, ValueMatcher } from "./pattern-types.js";

/** A leaf value of an event. */
type Scalar = string | number | boolean | null;

/** A leaf of the flattened event: its path, its value, and the array elements it sits in. */
interface Leaf {
  readonly path: string;
  readonly value: Scalar;
  /** Array id (numbered in the order arrays are met) to the element index the leaf is in. */
  readonly elements: ReadonlyMap<number, number>;
}

/**
 * True when `event` matches `pattern`. The pattern is applied to the JSON exactly as given:
 * field names are not translated (the rules layer maps `detail` to `data` and so on).
 * An event that is not a JSON object has no fields.
 */
export function matchesEventPattern(pattern: EventPattern, event: unknown): boolean {
  const leaves = flatten(event);
  return pattern.alternatives.some((alternative) => alternativeMatches(alternative, leaves));
}

function flatten(event: unknown): Leaf[] {
  const leaves: Leaf[] = [];
  let nextArrayId = 0;
  const visit = (value: unknown, path: string, elements: ReadonlyMap<number, number>): void => {
    if (Array.isArray(value)) {
      const id = nextArrayId++;
      value.forEach((item, index) => visit(item, path, new Map(elements).set(id, index)));
    } else if (typeof value === "object" && value !== null) {
      for (const [key, item] of Object.entries(value)) visit(item, `${path}.${key}`, elements);
    } else if (typeof value === "string" || typeof value === "number" || typeof value === "boolean" || value === null) {
      leaves.push({ path, value, elements });
    }
    // Anything else (undefined, functions) is not JSON and counts as absent.
  };
  if (typeof event === "object" && event !== null && !Array.isArray(event)) {
    for (const [key, item] of Object.entries(event)) visit(item, key, new Map());
  }
  return leaves;
}

/** True when no array holds `a` and `b` in different elements. */
function consistent(a: Leaf, b: Leaf): boolean {
  for (const [id, index] of a.elements) {
    const other = b.elements.get(id);
    if (other !== undefined && other !== index) return false;
  }
  return true;
}

function alternativeMatches(alternative: PatternAlternative, leaves: readonly Leaf[]): boolean {
  const candidates = alternative.map((condition) =>
    leaves.filter((leaf) => leaf.path === condition.path && leafMatches(condition, leaf.value)),
  );
  const picked: Leaf[] = [];
  const absent: FieldCondition[] = [];
  const search = (index: number): boolean => {
    if (index === alternative.length) {
      // Absence is judged last, against every picked leaf, so the order of fields does not matter.
      return absent.every((condition) =>
        !leaves.some((leaf) => leaf.path === condition.path && picked.every((p) => consistent(p, leaf))),
      );
    }
    const condition = alternative[index]!;
    for (const leaf of candidates[index]!) {
      if (!picked.every((p) => consistent(p, leaf))) continue;
      picked.push(leaf);
      const found = search(index + 1);
      picked.pop();
      if (found) return true;
    }
    if (condition.matchers.some((m) => m.kind === "exists" && !m.exists)) {
      absent.push(condition);
      const found = search(index + 1);
      absent.pop();
      if (found) return true;
    }
    return false;
  };
  return search(0);
}

function leafMatches(condition: FieldCondition, value: Scalar): boolean {
  return condition.matchers.some((matcher) => valueMatches(matcher, value));
}

/** True when one matcher accepts one leaf value. `exists: false` accepts no leaf. */
export function valueMatches(matcher: ValueMatcher, value: Scalar): boolean {
  const text = typeof value === "string" ? value : undefined;
  switch (matcher.kind) {
    case "exact":
      // An IP literal in a pattern matches the address however the event spells it.
      if (matcher.ip) return text !== undefined && inRange(text, matcher.ip);
      return value === matcher.value;
    case "prefix":
      return text !== undefined && (matcher.ignoreCase ? text.toLowerCase() : text).startsWith(matcher.value);
    case "suffix":
      return text !== undefined && (matcher.ignoreCase ? text.toLowerCase() : text).endsWith(matcher.value);
    case "equals-ignore-case":
      return text !== undefined && text.toLowerCase() === matcher.value;
    case "wildcard":
      return text !== undefined && wildcardMatches(matcher.segments, text);
    case "numeric": {
      if (typeof value !== "number" || !isComparableNumber(value)) return false;
      const { lower, upper } = matcher;
      if (lower && !(lower.inclusive ? value >= lower.value : value > lower.value)) return false;
      if (upper && !(upper.inclusive ? value <= upper.value : value < upper.value)) return false;
      return true;
    }
    case "exists":
      return matcher.exists;
    case "cidr":
      return text !== undefined && inRange(text, matcher.range);
    // anything-but passes every value except the excluded ones of its own type, null included.
    case "anything-but":
      return !(matcher.values as readonly Scalar[]).includes(value);
    case "anything-but-prefix":
      return !(text !== undefined && matcher.values.some((prefix) => text.startsWith(prefix)));
    case "anything-but-suffix":
      return !(text !== undefined && matcher.values.some((suffix) => text.endsWith(suffix)));
    case "anything-but-ignore-case":
      return !(text !== undefined && matcher.values.includes(text.toLowerCase()));
    case "anything-but-wildcard":
      return !(text !== undefined && matcher.values.some((w) => wildcardMatches(w.segments, text)));
    // Relaybus' own operators.
    case "and":
      return matcher.matchers.every((inner) => valueMatches(inner, value));
    case "contains":
      return text !== undefined && text.includes(matcher.value);
    case "regex":
      return text !== undefined && iRegexpMatches(matcher.tree, text);
    case "wildcard-ignore-case":
      return text !== undefined && wildcardMatches(matcher.segments, text.toLowerCase());
    case "anything-but-wildcard-ignore-case":
      return !(text !== undefined && matcher.values.some((w) => wildcardMatches(w.segments, text.toLowerCase())));
  }
}

function inRange(text: string, range: IpRange): boolean {
  const address = ipAddressToBigInt(text);
  return address !== undefined && address.family === range.family && address.value >= range.low && address.value <= range.high;
}

/**
 * The textbook definition of `*` matching: track every pattern position reachable after each
 * character of the value. Quadratic, obviously right, and independent of the compiled matcher.
 */
function wildcardMatches(segments: readonly string[], value: string): boolean {
  const tokens: (string | null)[] = [];
  segments.forEach((segment, index) => {
    if (index > 0) tokens.push(null);
    for (let i = 0; i < segment.length; i++) tokens.push(segment[i]!);
  });
  const close = (positions: Set<number>): Set<number> => {
    for (const position of [...positions]) {
      for (let p = position; tokens[p] === null; p++) positions.add(p + 1);
    }
    return positions;
  };
  let current = close(new Set([0]));
  for (let i = 0; i < value.length; i++) {
    const next = new Set<number>();
    for (const position of current) {
      const token = tokens[position];
      if (token === null) next.add(position);
      else if (token === value[i]) next.add(position + 1);
    }
    current = close(next);
    if (current.size === 0) return false;
  }
  return current.has(tokens.length);
}
