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

import type { JsonObject } from "../types.js";
import { MAX_REGEX_LENGTH } from "./i-regexp.js";
import { child, describe, fail, failTooComplex, isObject, show } from "./parse-errors.js";
import { parseValues } from "./parse-values.js";
import {
  addField,
  emptyTally,
  MAX_PATTERN_FIELDS,
  MAX_REGEX_PER_PATTERN,
  MAX_VALUES_PER_FIELD,
  MAX_WILDCARD_SCORE,
  serializedPatternSizeError,
  type PatternComplexityLimits,
  type PatternTally,
  type PatternValueLimits,
} from "./pattern-limits.js";
import type { EventPattern, FieldCondition } from "./pattern-types.js";
import { MAX_WILDCARDS_PER_VALUE } from "./wildcard.js";

/** Size and shape limits for one pattern. */
export interface PatternLimits {
  /** Largest pattern, as UTF-8 bytes of its JSON. Default {@link DEFAULT_MAX_PATTERN_BYTES}. */
  maxPatternBytes?: number;
  /** Deepest nesting of objects, the root being 1 (`limits.maxPatternDepth`). Default {@link DEFAULT_MAX_PATTERN_DEPTH}. */
  maxDepth?: number;
  /** Most fields (`limits.maxPatternFields`). Default {@link MAX_PATTERN_FIELDS}. */
  maxFields?: number;
  /** Most alternatives `$or` may fork into (`limits.maxPatternAlternatives`). Default {@link MAX_PATTERN_ALTERNATIVES}. */
  maxAlternatives?: number;
  /** Largest wildcard score (`limits.maxPatternWildcardScore`). Default {@link MAX_WILDCARD_SCORE}. */
  maxWildcardScore?: number;
  /** Most `regex` operators (`limits.maxPatternRegexes`). Default {@link MAX_REGEX_PER_PATTERN}. */
  maxRegexes?: number;
  /** Most values in one list (`limits.maxPatternValuesPerField`). Default {@link MAX_VALUES_PER_FIELD}. */
  maxValuesPerField?: number;
  /** Most `*` in one wildcard value (`limits.maxPatternWildcardStars`). Default {@link MAX_WILDCARDS_PER_VALUE}. */
  maxWildcardStars?: number;
  /** Longest `regex` operand, in code points (`limits.maxPatternRegexLength`). Default {@link MAX_REGEX_LENGTH}. */
  maxRegexLength?: number;
}

/** Default largest pattern: 4096 bytes, EventBridge's limit on `EventPattern`. */
export const DEFAULT_MAX_PATTERN_BYTES = 4096;

/** Default deepest nesting of a pattern's objects (`limits.maxPatternDepth`). */
export const DEFAULT_MAX_PATTERN_DEPTH = 32;

/**
 * The most alternatives `$or` may fork a pattern into. Nested `$or`s multiply, and every
 * alternative costs matching time, so a pattern past this is rejected rather than slow.
 */
export const MAX_PATTERN_ALTERNATIVES = 1024;

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

type Rules = Map<string, FieldCondition>[];

interface Context {
  maxDepth: number;
  maxAlternatives: number;
  complexity: PatternComplexityLimits;
  values: PatternValueLimits;
  /** The per-pattern limits used so far (fields, wildcard score, regexes). */
  tally: PatternTally;
}

/**
 * Checks `input` (parsed JSON from an untrusted source) as an EventBridge event pattern.
 *
 * @param input the pattern, already parsed from JSON/JSON5/YAML.
 * @param limits size and complexity limits, each defaulting as {@link PatternLimits} says.
 * @returns the typed pattern, ready for {@link matchesEventPattern} or {@link compileEventPattern}.
 * @throws RelaybusError `InvalidEventPattern`, with the offending part's path in the message and in `details.path`;
 *   past a limit `EventPatternTooLarge` (size: the pattern's bytes, a regex's length) or `EventPatternTooComplex`
 *   (the others), the message naming the part and the limit's `limits.*` setting.
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
  const tooLarge = serializedPatternSizeError(serialized, maxBytes);
  if (tooLarge !== undefined) throw tooLarge;

  const rules: Rules = [];
  const complexity: PatternComplexityLimits = {
    maxFields: limits.maxFields ?? MAX_PATTERN_FIELDS,
    maxWildcardScore: limits.maxWildcardScore ?? MAX_WILDCARD_SCORE,
    maxRegexes: limits.maxRegexes ?? MAX_REGEX_PER_PATTERN,
  };
  const maxAlternatives = limits.maxAlternatives ?? MAX_PATTERN_ALTERNATIVES;
  const values: PatternValueLimits = {
    maxValuesPerField: limits.maxValuesPerField ?? MAX_VALUES_PER_FIELD,
    maxWildcardStars: limits.maxWildcardStars ?? MAX_WILDCARDS_PER_VALUE,
    maxRegexLength: limits.maxRegexLength ?? MAX_REGEX_LENGTH,
  };
  parseObject({ maxDepth, maxAlternatives, complexity, values, tally: emptyTally() }, input, "", "", 1, false, rules);
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
  if (depth > context.maxDepth) {
    failTooComplex(at, `the pattern nests deeper than ${context.maxDepth} levels (limits.maxPatternDepth)`);
  }
  const keys = Object.keys(node);
  if (keys.length === 0) fail(at, "empty objects are not allowed; give each field an array of values");
  for (const key of keys) {
    const value = node[key];
    const here = child(at, key);
    if (key === "$or") {
      parseOr(context, value, prefix, here, depth, rules);
      continue;
    }
    if (key === "$and") {
      // A field named "$and" would be legal EventBridge, but here it is almost surely $and misplaced.
      fail(here, `$and combines matchers on one value and goes in a field's array: {"field": [{"$and": [...]}]}`);
    }
    if (insideOr && RESERVED_INSIDE_OR.has(key)) {
      fail(here, `"${key}" is a reserved word and cannot be a field name inside $or`);
    }
    // Keys join with "." into event-ruler's field names; the root's prefix is "".
    const path = prefix + key;
    if (isObject(value)) {
      parseObject(context, value, `${path}.`, here, depth + 1, insideOr, rules);
    } else if (Array.isArray(value)) {
      const condition: FieldCondition = { path, segments: path.split("."), matchers: parseValues(value, here, context.values) };
      const tooMuch = addField(context.tally, condition.matchers, context.complexity);
      if (tooMuch) failTooComplex(here, tooMuch);
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
    if (rules.length > context.maxAlternatives) {
      failTooComplex(
        at,
        `$or combinations fork the pattern into more than ${context.maxAlternatives} alternatives (limits.maxPatternAlternatives)`,
      );
    }
  });
}
