/**
 * `parseEventPattern`: checks an untrusted EventBridge event pattern and returns it typed.
 *
 * The rules are aws/event-ruler's (`JsonRuleCompiler`), the engine EventBridge runs, checked
 * against the recorded EventBridge answers in shared/conformance/eventbridge-patterns:
 * every field's value is a non-empty array (or a nested object), `$or` takes at least two
 * objects and forks the pattern into alternatives, operators are lower-case and one per
 * object, and operands have the types EventBridge documents. Errors name the offending part
 * by its path in the pattern: `detail.total[0].numeric: numeric needs pairs of ...`.
 *
 * @module
 */

import { RelaybusError } from "../errors.js";
import type { JsonObject } from "../types.js";
import { ipAddressRange, parseCidr } from "./ip-address.js";
import { whyNotComparable } from "./numeric.js";
import type {
  EventPattern,
  FieldCondition,
  NumericBound,
  ValueMatcher,
} from "./pattern-types.js";
import { parseWildcard } from "./wildcard.js";

/** Size and shape limits for one pattern. */
export interface PatternLimits {
  /** Largest pattern, as UTF-8 bytes of its JSON. Default {@link DEFAULT_MAX_PATTERN_BYTES}. */
  maxPatternBytes?: number;
  /** Deepest nesting of objects (the root is 1). Default {@link DEFAULT_MAX_PATTERN_DEPTH}. */
  maxDepth?: number;
}

/** Default largest pattern: 4096 bytes, EventBridge's limit on `EventPattern`. */
export const DEFAULT_MAX_PATTERN_BYTES = 4096;

/** Default deepest nesting of a pattern's objects. */
export const DEFAULT_MAX_PATTERN_DEPTH = 32;

/**
 * The most alternatives `$or` may fork a pattern into. Nested `$or`s multiply, and every
 * alternative costs matching time, so a pattern past this is rejected rather than slow.
 */
export const MAX_PATTERN_ALTERNATIVES = 1024;

/** The operators a match object may hold, for error messages. */
const OPERATORS = [
  "prefix",
  "suffix",
  "equals-ignore-case",
  "wildcard",
  "anything-but",
  "numeric",
  "exists",
  "cidr",
] as const;

/**
 * Names event-ruler reserves inside `$or` (operators, comparison signs and words kept for
 * later), so that a branch cannot be mistaken for a match expression.
 */
const RESERVED_INSIDE_OR = new Set<string>([
  "exactly", "equals-ignore-case", "prefix", "suffix", "anything-but", "exists", "wildcard",
  "numeric", "cidr", "html", "=", "<", "<=", ">", ">=", "regex", "not-wildcard",
  "not-equals-ignore-case", "date-after", "date-on-or-after", "date-before",
  "date-on-or-before", "in-date-range", "ip-address-in-range", "ip-address-not-in-range",
]);

const NUMERIC_OPERATORS = new Set(["=", "<", "<=", ">", ">="]);

type Rules = Map<string, FieldCondition>[];

interface Context {
  maxDepth: number;
}

function fail(at: string, message: string): never {
  throw new RelaybusError("InvalidEventPattern", `${at === "" ? "pattern" : at}: ${message}`, {
    details: { path: at },
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return `${typeof value} ${JSON.stringify(value)}`;
}

function show(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function child(at: string, key: string): string {
  return at === "" ? key : `${at}.${key}`;
}

/**
 * Checks `input` (parsed JSON from an untrusted source) as an EventBridge event pattern.
 *
 * @param input the pattern, already parsed from JSON/JSON5/YAML.
 * @param limits size limits; defaults {@link DEFAULT_MAX_PATTERN_BYTES} and {@link DEFAULT_MAX_PATTERN_DEPTH}.
 * @returns the typed pattern, ready for {@link matchesEventPattern} or {@link compileEventPattern}.
 * @throws RelaybusError `InvalidEventPattern`, with the offending part's path in the message and in `details.path`.
 */
export function parseEventPattern(input: unknown, limits: PatternLimits = {}): EventPattern {
  const maxBytes = limits.maxPatternBytes ?? DEFAULT_MAX_PATTERN_BYTES;
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_PATTERN_DEPTH;
  if (!isObject(input)) fail("", `an event pattern must be a JSON object, got ${describe(input)}`);
  let serialized: string;
  try {
    serialized = JSON.stringify(input);
  } catch (error) {
    fail("", `the pattern is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const bytes = Buffer.byteLength(serialized, "utf8");
  if (bytes > maxBytes) fail("", `the pattern is ${bytes} bytes, larger than the limit of ${maxBytes}`);

  const rules: Rules = [];
  parseObject({ maxDepth }, input, "", "", 1, false, rules);
  return {
    json: JSON.parse(serialized) as JsonObject,
    alternatives: rules.map((rule) => [...rule.values()]),
  };
}

/**
 * Walks one object of the pattern. `rules` is the list of alternatives built so far, changed
 * in place as event-ruler does: a field is written into every alternative (a later field with
 * the same path replaces an earlier one, as a duplicated JSON key does), and `$or` replaces
 * the list by one copy per branch.
 */
function parseObject(
  context: Context,
  node: Record<string, unknown>,
  prefix: string,
  at: string,
  depth: number,
  insideOr: boolean,
  rules: Rules,
): void {
  if (depth > context.maxDepth) fail(at, `the pattern nests deeper than ${context.maxDepth} levels`);
  const keys = Object.keys(node);
  if (keys.length === 0) fail(at, "empty objects are not allowed; give each field an array of values");
  for (const key of keys) {
    const value = node[key];
    const here = child(at, key);
    if (key === "$or") {
      parseOr(context, value, prefix, here, depth, rules);
      continue;
    }
    if (insideOr && RESERVED_INSIDE_OR.has(key)) {
      fail(here, `"${key}" is a reserved word and cannot be a field name inside $or`);
    }
    // Keys join with "." into event-ruler's field names; the root's prefix is "".
    const path = prefix + key;
    if (isObject(value)) {
      parseObject(context, value, `${path}.`, here, depth + 1, insideOr, rules);
    } else if (Array.isArray(value)) {
      const condition: FieldCondition = { path, segments: path.split("."), matchers: parseValues(value, here) };
      if (rules.length === 0) rules.push(new Map());
      for (const rule of rules) rule.set(path, condition);
    } else {
      fail(here, `must be an array of values or an object, got ${describe(value)}; write [${show(value)}]`);
    }
  }
}

function parseOr(context: Context, value: unknown, prefix: string, at: string, depth: number, rules: Rules): void {
  if (!Array.isArray(value)) fail(at, `$or needs an array of at least 2 objects, got ${describe(value)}`);
  if (value.length < 2) fail(at, `$or needs at least 2 objects, got ${value.length}`);
  const before = rules.map((rule) => new Map(rule));
  rules.length = 0;
  value.forEach((branch, index) => {
    const here = `${at}[${index}]`;
    if (!isObject(branch)) fail(here, `each $or branch must be an object, got ${describe(branch)}`);
    const forked = before.length === 0 ? [new Map<string, FieldCondition>()] : before.map((rule) => new Map(rule));
    parseObject(context, branch, prefix, here, depth + 1, true, forked);
    rules.push(...forked);
    if (rules.length > MAX_PATTERN_ALTERNATIVES) {
      fail(at, `$or combinations fork the pattern into more than ${MAX_PATTERN_ALTERNATIVES} alternatives`);
    }
  });
}

function parseValues(values: unknown[], at: string): ValueMatcher[] {
  if (values.length === 0) fail(at, "empty arrays are not allowed; list at least one value");
  return values.map((value, index) => {
    const here = `${at}[${index}]`;
    if (typeof value === "string") {
      const ip = ipAddressRange(value);
      return ip ? { kind: "exact", value, ip } : { kind: "exact", value };
    }
    if (typeof value === "number") {
      if (!Number.isFinite(value)) fail(here, `numbers must be finite, got ${value}`);
      return { kind: "exact", value };
    }
    if (typeof value === "boolean" || value === null) return { kind: "exact", value };
    if (isObject(value)) return parseOperator(value, here);
    return fail(here, `a value must be a string, number, true, false, null or an operator object, got ${describe(value)}`);
  });
}

function parseOperator(node: Record<string, unknown>, at: string): ValueMatcher {
  const keys = Object.keys(node);
  if (keys.length !== 1) {
    fail(at, keys.length === 0
      ? `empty operator object; use one of ${OPERATORS.join(", ")}`
      : `only one operator per object, got ${keys.map((k) => JSON.stringify(k)).join(", ")}`);
  }
  const operator = keys[0]!;
  const operand = node[operator];
  const here = child(at, operator);
  switch (operator) {
    case "prefix":
    case "suffix": {
      if (typeof operand === "string") return { kind: operator, value: operand, ignoreCase: false };
      if (isObject(operand)) {
        const inner = Object.keys(operand);
        if (inner.length !== 1 || inner[0] !== "equals-ignore-case") {
          fail(here, `${operator} takes a string or {"equals-ignore-case": string}, got ${show(operand)}`);
        }
        const text = operand["equals-ignore-case"];
        if (typeof text !== "string") fail(child(here, "equals-ignore-case"), `needs a string, got ${describe(text)}`);
        return { kind: operator, value: text.toLowerCase(), ignoreCase: true };
      }
      return fail(here, `${operator} needs a string, got ${describe(operand)}`);
    }
    case "equals-ignore-case":
      if (typeof operand !== "string") fail(here, `equals-ignore-case needs a string, got ${describe(operand)}`);
      return { kind: "equals-ignore-case", value: operand.toLowerCase() };
    case "wildcard":
      if (typeof operand !== "string") fail(here, `wildcard needs a string, got ${describe(operand)}`);
      return { kind: "wildcard", text: operand, segments: wildcardSegments(operand, here) };
    case "numeric":
      return parseNumeric(operand, here);
    case "exists":
      if (typeof operand !== "boolean") fail(here, `exists needs true or false, got ${describe(operand)}`);
      return { kind: "exists", exists: operand };
    case "cidr":
      if (typeof operand !== "string") fail(here, `cidr needs a string such as "10.0.0.0/24", got ${describe(operand)}`);
      try {
        return { kind: "cidr", text: operand, range: parseCidr(operand) };
      } catch (error) {
        return fail(here, (error as Error).message);
      }
    case "anything-but":
      return parseAnythingBut(operand, here);
    default:
      return fail(here, `unknown operator ${JSON.stringify(operator)}; operators are ${OPERATORS.join(", ")} (lower-case)`);
  }
}

function wildcardSegments(text: string, at: string): string[] {
  try {
    return parseWildcard(text);
  } catch (error) {
    return fail(at, (error as Error).message);
  }
}

function comparable(value: unknown, at: string, what: string): number {
  if (typeof value !== "number") fail(at, `${what} must be a number, got ${describe(value)}`);
  const why = whyNotComparable(value);
  if (why) fail(at, `${what} ${why}`);
  return value;
}

function parseNumeric(operand: unknown, at: string): ValueMatcher {
  const usage = `numeric needs pairs of operator and number, got ${show(operand)}`;
  if (!Array.isArray(operand) || operand.length === 0 || operand.length % 2 !== 0) fail(at, usage);
  if (operand.length > 4) fail(at, `numeric takes at most two pairs (a lower and an upper bound), got ${show(operand)}`);
  const pairs: { operator: string; value: number }[] = [];
  for (let i = 0; i < operand.length; i += 2) {
    const operator = operand[i];
    if (typeof operator !== "string" || !NUMERIC_OPERATORS.has(operator)) {
      fail(`${at}[${i}]`, `expected one of =, <, <=, >, >=, got ${describe(operator)}`);
    }
    pairs.push({ operator, value: comparable(operand[i + 1], `${at}[${i + 1}]`, `the value of ${operator}`) });
  }
  const [first, second] = pairs as [{ operator: string; value: number }, { operator: string; value: number } | undefined];
  const bound = (pair: { operator: string; value: number }): NumericBound => ({
    value: pair.value,
    inclusive: pair.operator.length === 2,
  });
  if (first.operator === "=") {
    if (second) fail(at, `"=" cannot be combined with another operator, got ${show(operand)}`);
    return { kind: "numeric", lower: { value: first.value, inclusive: true }, upper: { value: first.value, inclusive: true } };
  }
  if (first.operator.startsWith("<")) {
    if (second) fail(at, `a range starts with its lower bound (> or >=), then its upper bound, got ${show(operand)}`);
    return { kind: "numeric", lower: undefined, upper: bound(first) };
  }
  if (!second) return { kind: "numeric", lower: bound(first), upper: undefined };
  if (!second.operator.startsWith("<")) {
    fail(at, `the second operator of a range must be < or <=, got ${show(operand)}`);
  }
  if (second.value <= first.value) fail(at, `the lower bound must be less than the upper bound, got ${show(operand)}`);
  return { kind: "numeric", lower: bound(first), upper: bound(second) };
}

/** The operand of a string-only anything-but form: one string or a non-empty list of them. */
function stringList(operand: unknown, at: string, what: string): string[] {
  if (typeof operand === "string") return [operand];
  if (!Array.isArray(operand)) fail(at, `${what} needs a string or a list of strings, got ${describe(operand)}`);
  if (operand.length === 0) fail(at, "empty arrays are not allowed; list at least one value");
  return operand.map((item, index) => {
    if (typeof item !== "string") fail(`${at}[${index}]`, `${what} needs strings, got ${describe(item)}`);
    return item;
  });
}

function parseAnythingBut(operand: unknown, at: string): ValueMatcher {
  if (typeof operand === "string") return { kind: "anything-but", values: [operand] };
  if (typeof operand === "number") return { kind: "anything-but", values: [comparable(operand, at, "anything-but")] };
  if (Array.isArray(operand)) {
    if (operand.length === 0) fail(at, "empty arrays are not allowed; list at least one value");
    if (operand.every((item) => typeof item === "string")) return { kind: "anything-but", values: operand as string[] };
    if (operand.every((item) => typeof item === "number")) {
      return { kind: "anything-but", values: operand.map((item, i) => comparable(item, `${at}[${i}]`, "anything-but")) };
    }
    const bad = operand.findIndex((item) => typeof item !== "string" && typeof item !== "number");
    if (bad >= 0) fail(`${at}[${bad}]`, `anything-but lists hold strings or numbers, got ${describe(operand[bad])}`);
    return fail(at, `anything-but lists hold all strings or all numbers, not both: ${show(operand)}`);
  }
  if (!isObject(operand)) {
    return fail(at, `anything-but needs a string, a number, a list of them, or an operator object, got ${describe(operand)}`);
  }
  const keys = Object.keys(operand);
  if (keys.length !== 1) {
    fail(at, `anything-but takes one of equals-ignore-case, prefix, suffix, wildcard, got ${show(operand)}`);
  }
  const form = keys[0]!;
  const here = child(at, form);
  const inner = operand[form];
  switch (form) {
    case "equals-ignore-case":
      return { kind: "anything-but-ignore-case", values: stringList(inner, here, form).map((s) => s.toLowerCase()) };
    case "prefix":
    case "suffix": {
      const values = stringList(inner, here, form);
      // event-ruler: "Null prefix/suffix not allowed" (an empty one would exclude every string).
      if (values.includes("")) fail(here, `anything-but ${form} cannot be empty`);
      return { kind: form === "prefix" ? "anything-but-prefix" : "anything-but-suffix", values };
    }
    case "wildcard":
      return {
        kind: "anything-but-wildcard",
        values: stringList(inner, here, form).map((text, i) => ({
          text,
          segments: wildcardSegments(text, Array.isArray(inner) ? `${here}[${i}]` : here),
        })),
      };
    default:
      return fail(here, `anything-but takes one of equals-ignore-case, prefix, suffix, wildcard, got ${JSON.stringify(form)}`);
  }
}
