/**
 * Guards on how much matching work one pattern may ask for. Every number here is far above
 * what the recorded EventBridge cases use (at most 19 fields, 3 values per field, 3
 * alternatives and 4 wildcard stars in a pattern), so no pattern EventBridge accepts there is
 * refused; they exist so that a pattern, which may come from an untrusted API caller, cannot
 * make every event slow. Each is a default of a `limits.maxPattern*` setting. The byte, depth
 * and `$or` limits live in parse-pattern.ts, the per-wildcard and per-regex ones in
 * wildcard.ts and i-regexp.ts.
 *
 * @module
 */

import { RelaybusError } from "../errors.js";
import { MAX_REGEX_LENGTH } from "./i-regexp.js";
import type { ValueMatcher } from "./pattern-types.js";
import { MAX_WILDCARDS_PER_VALUE } from "./wildcard.js";

/**
 * The `EventPatternTooLarge` error of a pattern whose JSON is over `maxPatternBytes` UTF-8
 * bytes (`limits.maxPatternBytes`), or undefined when it is within (or is not JSON, which
 * the parser then reports). Its own code, so that a caller can tell "too big" from "wrong".
 */
export function patternSizeError(pattern: unknown, maxPatternBytes: number): RelaybusError | undefined {
  let serialized: string;
  try {
    serialized = JSON.stringify(pattern) ?? "";
  } catch {
    return undefined;
  }
  return serializedPatternSizeError(serialized, maxPatternBytes);
}

/** {@link patternSizeError} for a pattern already serialised (the parser has its JSON at hand). */
export function serializedPatternSizeError(serialized: string, maxPatternBytes: number): RelaybusError | undefined {
  const bytes = Buffer.byteLength(serialized, "utf8");
  if (bytes <= maxPatternBytes) return undefined;
  return new RelaybusError(
    "EventPatternTooLarge",
    `the pattern is ${bytes} bytes, larger than the limit of ${maxPatternBytes} (limits.maxPatternBytes)`,
    { details: { sizeBytes: bytes, maxPatternBytes } },
  );
}

/**
 * The most fields (conditions) one pattern may hold, counting each field once however many
 * `$or` alternatives share it. Every field is a walk of the event for every event.
 */
export const MAX_PATTERN_FIELDS = 256;

/**
 * The most values in one list by default (`limits.maxPatternValuesPerField`): a field's
 * array, an `anything-but` list, a `$and`. Literal values are looked up in a set, but every
 * operator is tried one by one.
 */
export const MAX_VALUES_PER_FIELD = 1024;

/** The limits on one list or one value of a pattern, each a `limits.maxPattern*` setting. */
export interface PatternValueLimits {
  /** Most values in one list: {@link MAX_VALUES_PER_FIELD} by default (`limits.maxPatternValuesPerField`). */
  maxValuesPerField: number;
  /** Most `*` in one wildcard value: {@link MAX_WILDCARDS_PER_VALUE} by default (`limits.maxPatternWildcardStars`). */
  maxWildcardStars: number;
  /** Longest `regex` operand, in code points: {@link MAX_REGEX_LENGTH} by default (`limits.maxPatternRegexLength`). */
  maxRegexLength: number;
}

/** The value limits when none are configured. */
export const DEFAULT_VALUE_LIMITS: PatternValueLimits = {
  maxValuesPerField: MAX_VALUES_PER_FIELD,
  maxWildcardStars: MAX_WILDCARDS_PER_VALUE,
  maxRegexLength: MAX_REGEX_LENGTH,
};

/**
 * The largest wildcard complexity score of a pattern (see {@link wildcardScore}): 8 wildcards
 * at the per-value maximum of 5 stars. Each `*` is a place where a match must search (and a
 * looping state in an automaton that holds many patterns), so the total, not only the stars of
 * one value, is what bounds the work.
 */
export const MAX_WILDCARD_SCORE = 40;

/** The most `regex` operators in one pattern (each compiles to its own automaton). */
export const MAX_REGEX_PER_PATTERN = 16;

/**
 * The wildcard complexity score of one matcher: the number of `*` in each wildcard value
 * (`wildcard` and `anything-but` `wildcard`, with or without `equals-ignore-case`), 2 for a
 * `contains` (it is the wildcard `*text*`), the sum over the inner matchers of a `$and`, and 0
 * for every other operator. A pattern's score is the sum over its fields, each counted once.
 */
export function wildcardScore(matcher: ValueMatcher): number {
  switch (matcher.kind) {
    case "wildcard":
    case "wildcard-ignore-case":
      return matcher.segments.length - 1;
    case "anything-but-wildcard":
    case "anything-but-wildcard-ignore-case":
      return matcher.values.reduce((sum, value) => sum + value.segments.length - 1, 0);
    case "contains":
      return 2;
    case "and":
      return matcher.matchers.reduce((sum, inner) => sum + wildcardScore(inner), 0);
    default:
      return 0;
  }
}

function regexCount(matcher: ValueMatcher): number {
  if (matcher.kind === "regex") return 1;
  if (matcher.kind === "and") return matcher.matchers.reduce((sum, inner) => sum + regexCount(inner), 0);
  return 0;
}

/** What a pattern has used of its per-pattern limits so far, as the parser counts it. */
export interface PatternTally {
  fields: number;
  wildcardScore: number;
  regexes: number;
}

/** An empty {@link PatternTally}. */
export function emptyTally(): PatternTally {
  return { fields: 0, wildcardScore: 0, regexes: 0 };
}

/**
 * Adds one field's matchers to `tally` and says why the pattern is now over a per-pattern
 * limit ({@link MAX_PATTERN_FIELDS}, {@link MAX_WILDCARD_SCORE}, {@link MAX_REGEX_PER_PATTERN}),
 * or returns undefined. The parser calls it once per field written in the pattern, so a field
 * that `$or` shares between alternatives counts once.
 */
export function addField(
  tally: PatternTally,
  matchers: readonly ValueMatcher[],
  limits: PatternComplexityLimits = DEFAULT_COMPLEXITY_LIMITS,
): string | undefined {
  tally.fields++;
  for (const matcher of matchers) {
    tally.wildcardScore += wildcardScore(matcher);
    tally.regexes += regexCount(matcher);
  }
  if (tally.fields > limits.maxFields) {
    return `the pattern has more than ${limits.maxFields} fields, the limit (limits.maxPatternFields)`;
  }
  if (tally.wildcardScore > limits.maxWildcardScore) {
    return (
      `the pattern's wildcard complexity score reaches ${tally.wildcardScore} here, more than the limit of ` +
      `${limits.maxWildcardScore} (limits.maxPatternWildcardScore; each * of a wildcard counts 1, each contains 2); ` +
      "use fewer wildcards or fewer stars"
    );
  }
  if (tally.regexes > limits.maxRegexes) {
    return `the pattern has more than ${limits.maxRegexes} regex operators, the limit (limits.maxPatternRegexes)`;
  }
  return undefined;
}

/** The per-pattern complexity limits, each a `limits.maxPattern*` setting. */
export interface PatternComplexityLimits {
  /** Most fields: {@link MAX_PATTERN_FIELDS} by default (`limits.maxPatternFields`). */
  maxFields: number;
  /** Largest wildcard score: {@link MAX_WILDCARD_SCORE} by default (`limits.maxPatternWildcardScore`). */
  maxWildcardScore: number;
  /** Most `regex` operators: {@link MAX_REGEX_PER_PATTERN} by default (`limits.maxPatternRegexes`). */
  maxRegexes: number;
}

/** The complexity limits when none are configured. */
export const DEFAULT_COMPLEXITY_LIMITS: PatternComplexityLimits = {
  maxFields: MAX_PATTERN_FIELDS,
  maxWildcardScore: MAX_WILDCARD_SCORE,
  maxRegexes: MAX_REGEX_PER_PATTERN,
};
