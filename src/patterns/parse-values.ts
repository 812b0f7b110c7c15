/**
 * `parseValues`: checks the array a pattern gives one field (literals and operator objects)
 * and returns its typed matchers. The operand rules are aws/event-ruler's (`JsonRuleCompiler`)
 * for EventBridge's operators, checked against the recorded EventBridge answers; Relaybus'
 * own operators (`$and`, `contains`, `regex`, `wildcard` with `equals-ignore-case`) follow the
 * same habits: one operator per object, operands of one documented type, errors naming the
 * path.
 *
 * @module
 */

import { parseIRegexp, RegexTooLong } from "./i-regexp.js";
import { ipAddressRange, parseCidr } from "./ip-address.js";
import { whyNotComparable } from "./numeric.js";
import { child, describe, fail, failTooComplex, failTooLarge, isObject, show } from "./parse-errors.js";
import { DEFAULT_VALUE_LIMITS, type PatternValueLimits } from "./pattern-limits.js";
import type { NumericBound, ValueMatcher, WildcardValue } from "./pattern-types.js";
import { parseWildcard } from "./wildcard.js";

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
  "contains",
  "regex",
  "$and",
] as const;

const ANYTHING_BUT_FORMS = "equals-ignore-case, prefix, suffix, wildcard";

const NUMERIC_OPERATORS = new Set(["=", "<", "<=", ">", ">="]);

function checkCount(count: number, at: string, limits: PatternValueLimits): void {
  if (count > limits.maxValuesPerField) {
    failTooComplex(
      at,
      `the list has ${count} values, more than the limit of ${limits.maxValuesPerField} (limits.maxPatternValuesPerField)`,
    );
  }
}

/**
 * Checks a field's array of values (`at` is the field's path) and returns its matchers.
 * `limits` bounds each list and value (default {@link DEFAULT_VALUE_LIMITS}).
 */
export function parseValues(
  values: unknown[],
  at: string,
  limits: PatternValueLimits = DEFAULT_VALUE_LIMITS,
): ValueMatcher[] {
  if (values.length === 0) fail(at, "empty arrays are not allowed; list at least one value");
  checkCount(values.length, at, limits);
  return values.map((value, index) => parseValue(value, `${at}[${index}]`, limits));
}

function parseValue(value: unknown, here: string, limits: PatternValueLimits): ValueMatcher {
  if (typeof value === "string") {
    const ip = ipAddressRange(value);
    return ip ? { kind: "exact", value, ip } : { kind: "exact", value };
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) fail(here, `numbers must be finite, got ${value}`);
    return { kind: "exact", value };
  }
  if (typeof value === "boolean" || value === null) return { kind: "exact", value };
  if (isObject(value)) return parseOperator(value, here, limits);
  return fail(here, `a value must be a string, number, true, false, null or an operator object, got ${describe(value)}`);
}

function parseOperator(node: Record<string, unknown>, at: string, limits: PatternValueLimits): ValueMatcher {
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
        return { kind: operator, value: ignoreCaseOperand(operand, here, operator).toLowerCase(), ignoreCase: true };
      }
      return fail(here, `${operator} needs a string, got ${describe(operand)}`);
    }
    case "equals-ignore-case":
      if (typeof operand !== "string") fail(here, `equals-ignore-case needs a string, got ${describe(operand)}`);
      return { kind: "equals-ignore-case", value: operand.toLowerCase() };
    case "wildcard":
      if (typeof operand === "string") {
        return { kind: "wildcard", text: operand, segments: wildcardSegments(operand, here, limits) };
      }
      if (isObject(operand)) {
        const text = ignoreCaseOperand(operand, here, operator);
        return { kind: "wildcard-ignore-case", text, segments: lowerSegments(text, child(here, "equals-ignore-case"), limits) };
      }
      return fail(here, `wildcard needs a string or {"equals-ignore-case": string}, got ${describe(operand)}`);
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
      return parseAnythingBut(operand, here, limits);
    case "contains":
      if (typeof operand !== "string") fail(here, `contains needs a string, got ${describe(operand)}`);
      if (operand === "") fail(here, `contains needs a non-empty string (every string contains ""; {"prefix": ""} matches any string)`);
      return { kind: "contains", value: operand };
    case "regex":
      if (typeof operand !== "string") fail(here, `regex needs a string (an I-Regexp, RFC 9485), got ${describe(operand)}`);
      try {
        return { kind: "regex", text: operand, tree: parseIRegexp(operand, limits.maxRegexLength) };
      } catch (error) {
        // Too long is a size, not a syntax error: its own code, as the whole pattern's size has.
        if (error instanceof RegexTooLong) return failTooLarge(here, error.message);
        return fail(here, (error as Error).message);
      }
    case "$and":
      return parseAnd(operand, here, limits);
    default:
      return fail(here, `unknown operator ${JSON.stringify(operator)}; operators are ${OPERATORS.join(", ")} (lower-case)`);
  }
}

/** The string of `{"equals-ignore-case": "x"}`, the object form of prefix, suffix and wildcard. */
function ignoreCaseOperand(operand: Record<string, unknown>, at: string, operator: string): string {
  const inner = Object.keys(operand);
  if (inner.length !== 1 || inner[0] !== "equals-ignore-case") {
    fail(at, `${operator} takes a string or {"equals-ignore-case": string}, got ${show(operand)}`);
  }
  const text = operand["equals-ignore-case"];
  if (typeof text !== "string") fail(child(at, "equals-ignore-case"), `needs a string, got ${describe(text)}`);
  return text;
}

/**
 * A `$and` operand: at least 2 value matchers, every one of which must accept the same leaf.
 * `exists` is about the field rather than a value, and a nested `$and` adds nothing, so
 * neither may be inside.
 */
function parseAnd(operand: unknown, at: string, limits: PatternValueLimits): ValueMatcher {
  if (!Array.isArray(operand)) fail(at, `$and needs an array of at least 2 value matchers, got ${describe(operand)}`);
  if (operand.length < 2) fail(at, `$and needs at least 2 value matchers, got ${operand.length}`);
  checkCount(operand.length, at, limits);
  const matchers = operand.map((item, index) => {
    const here = `${at}[${index}]`;
    const matcher = parseValue(item, here, limits);
    if (matcher.kind === "exists") {
      fail(here, "exists cannot be inside $and (a value $and tests is always there); put it beside the $and in the field's array");
    }
    if (matcher.kind === "and") fail(here, "$and cannot hold another $and; list all the matchers in one $and");
    return matcher;
  });
  return { kind: "and", matchers };
}

function wildcardSegments(text: string, at: string, limits: PatternValueLimits): string[] {
  try {
    return parseWildcard(text, limits.maxWildcardStars);
  } catch (error) {
    return fail(at, (error as Error).message);
  }
}

/**
 * A wildcard's segments lower-cased, for matching ignoring case. The segments are lowered
 * after the escapes are resolved, so `\*` stays a literal star.
 */
function lowerSegments(text: string, at: string, limits: PatternValueLimits): string[] {
  return wildcardSegments(text, at, limits).map((segment) => segment.toLowerCase());
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
function stringList(operand: unknown, at: string, what: string, limits: PatternValueLimits): string[] {
  if (typeof operand === "string") return [operand];
  if (!Array.isArray(operand)) fail(at, `${what} needs a string or a list of strings, got ${describe(operand)}`);
  if (operand.length === 0) fail(at, "empty arrays are not allowed; list at least one value");
  checkCount(operand.length, at, limits);
  return operand.map((item, index) => {
    if (typeof item !== "string") fail(`${at}[${index}]`, `${what} needs strings, got ${describe(item)}`);
    return item;
  });
}

function wildcardList(operand: unknown, at: string, lower: boolean, limits: PatternValueLimits): WildcardValue[] {
  return stringList(operand, at, "wildcard", limits).map((text, i) => {
    const here = Array.isArray(operand) ? `${at}[${i}]` : at;
    return { text, segments: lower ? lowerSegments(text, here, limits) : wildcardSegments(text, here, limits) };
  });
}

function parseAnythingBut(operand: unknown, at: string, limits: PatternValueLimits): ValueMatcher {
  if (typeof operand === "string") return { kind: "anything-but", values: [operand] };
  if (typeof operand === "number") return { kind: "anything-but", values: [comparable(operand, at, "anything-but")] };
  if (Array.isArray(operand)) {
    if (operand.length === 0) fail(at, "empty arrays are not allowed; list at least one value");
    checkCount(operand.length, at, limits);
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
  if (keys.length !== 1) fail(at, `anything-but takes one of ${ANYTHING_BUT_FORMS}, got ${show(operand)}`);
  const form = keys[0]!;
  const here = child(at, form);
  const inner = operand[form];
  switch (form) {
    case "equals-ignore-case":
      return { kind: "anything-but-ignore-case", values: stringList(inner, here, form, limits).map((s) => s.toLowerCase()) };
    case "prefix":
    case "suffix": {
      if (isObject(inner)) {
        // EventBridge refuses this form (a recorded answer), so Relaybus does too, and says what works.
        const example = form === "prefix" ? "x*" : "*x";
        fail(here, `anything-but ${form} needs a string or a list of strings, got an object; to exclude a ${form} ignoring ` +
          `case write {"anything-but": {"wildcard": {"equals-ignore-case": "${example}"}}} (escape * and \\ in the text as \\* and \\\\)`);
      }
      const values = stringList(inner, here, form, limits);
      // event-ruler: "Null prefix/suffix not allowed" (an empty one would exclude every string).
      if (values.includes("")) fail(here, `anything-but ${form} cannot be empty`);
      return { kind: form === "prefix" ? "anything-but-prefix" : "anything-but-suffix", values };
    }
    case "wildcard":
      if (isObject(inner)) {
        const texts = ignoreCaseList(inner, here);
        return { kind: "anything-but-wildcard-ignore-case", values: wildcardList(texts, child(here, "equals-ignore-case"), true, limits) };
      }
      return { kind: "anything-but-wildcard", values: wildcardList(inner, here, false, limits) };
    default:
      return fail(here, `anything-but takes one of ${ANYTHING_BUT_FORMS}, got ${JSON.stringify(form)}`);
  }
}

/** The operand inside `{"equals-ignore-case": ...}` of an anything-but wildcard: a string or a list. */
function ignoreCaseList(operand: Record<string, unknown>, at: string): unknown {
  const inner = Object.keys(operand);
  if (inner.length !== 1 || inner[0] !== "equals-ignore-case") {
    fail(at, `wildcard takes a string, a list of strings or {"equals-ignore-case": ...}, got ${show(operand)}`);
  }
  return operand["equals-ignore-case"];
}
