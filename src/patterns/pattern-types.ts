/**
 * The typed form of a checked EventBridge event pattern, as {@link parseEventPattern} returns it.
 *
 * The shape follows aws/event-ruler, the engine behind EventBridge: a pattern is a set of
 * alternatives (one per combination of `$or` branches), and each alternative is a set of field
 * conditions keyed by the field's flattened path (keys joined with `.`). A condition holds when
 * any of its value matchers accepts a value found at that path (or, for `exists: false`, when
 * no value is there). Keeping this flattened form, rather than the nested JSON, is what makes
 * `{"a": {"b": [1]}}` and `{"a.b": [1]}` the same pattern, as they are in EventBridge.
 *
 * @module
 */

import type { JsonObject } from "../types.js";
import type { RegexNode } from "./i-regexp.js";

/** An IP address range from a `cidr` operand (or a single address), bounds inclusive. */
export interface IpRange {
  /** 4 or 6. An IPv4-mapped IPv6 address (`::ffff:a00:1`) counts as IPv4, as Java reads it. */
  readonly family: 4 | 6;
  readonly low: bigint;
  readonly high: bigint;
}

/** One bound of a numeric range. */
export interface NumericBound {
  readonly value: number;
  readonly inclusive: boolean;
}

/** A parsed wildcard: `segments` are the literal runs between the `*`s, unescaped. */
export interface WildcardValue {
  readonly text: string;
  readonly segments: readonly string[];
}

/**
 * One value matcher: an element of a field's array in the pattern. Strings match only string
 * values, numbers only numbers, and so on, except where noted.
 *
 * The kinds up to `anything-but-wildcard` are EventBridge's. The rest are Relaybus' own
 * (`and`, `contains`, `regex`, `wildcard-ignore-case`, `anything-but-wildcard-ignore-case`):
 * each is a new kind, so code that knows only EventBridge's kinds can hand them to
 * {@link compileValueTest}, which takes every kind.
 */
export type ValueMatcher =
  /** A literal: `"x"`, `5`, `true`, `null`. A string that is an IP address matches any spelling of that address. */
  | { readonly kind: "exact"; readonly value: string | number | boolean | null; readonly ip?: IpRange }
  /** `{"prefix": "x"}` or `{"prefix": {"equals-ignore-case": "x"}}` (then `value` is lower-cased). */
  | { readonly kind: "prefix"; readonly value: string; readonly ignoreCase: boolean }
  /** `{"suffix": "x"}` or `{"suffix": {"equals-ignore-case": "x"}}` (then `value` is lower-cased). */
  | { readonly kind: "suffix"; readonly value: string; readonly ignoreCase: boolean }
  /** `{"equals-ignore-case": "x"}`; `value` is lower-cased. */
  | { readonly kind: "equals-ignore-case"; readonly value: string }
  /** `{"wildcard": "a*b"}`: `segments` are the literal runs between the `*`s, unescaped. */
  | { readonly kind: "wildcard"; readonly text: string; readonly segments: readonly string[] }
  /** `{"numeric": [...]}`; `"="` is a closed range with equal bounds. */
  | {
      readonly kind: "numeric";
      readonly lower: NumericBound | undefined;
      readonly upper: NumericBound | undefined;
    }
  /** `{"exists": true | false}`. */
  | { readonly kind: "exists"; readonly exists: boolean }
  /** `{"cidr": "10.0.0.0/24"}`. */
  | { readonly kind: "cidr"; readonly text: string; readonly range: IpRange }
  /**
   * `{"anything-but": ...}` in all its forms. `values` are all strings or all numbers for the
   * plain form; strings for the others (lower-cased for `equals-ignore-case`, parsed wildcards
   * for `wildcard`). A value of another type than the excluded ones always passes.
   */
  | { readonly kind: "anything-but"; readonly values: readonly string[] | readonly number[] }
  | { readonly kind: "anything-but-prefix"; readonly values: readonly string[] }
  | { readonly kind: "anything-but-suffix"; readonly values: readonly string[] }
  | { readonly kind: "anything-but-ignore-case"; readonly values: readonly string[] }
  | {
      readonly kind: "anything-but-wildcard";
      readonly values: readonly { readonly text: string; readonly segments: readonly string[] }[];
    }
  /**
   * `{"$and": [m1, m2, ...]}`: a leaf value every inner matcher accepts. At least 2 inner
   * matchers, none of them `exists` or another `and`.
   */
  | { readonly kind: "and"; readonly matchers: readonly ValueMatcher[] }
  /** `{"contains": "x"}`: a string with `value` (never empty) somewhere in it, case-sensitive. */
  | { readonly kind: "contains"; readonly value: string }
  /**
   * `{"regex": "..."}`: a string the I-Regexp (RFC 9485) `text` matches as a whole; `tree` is
   * its parse (see i-regexp.ts).
   */
  | { readonly kind: "regex"; readonly text: string; readonly tree: RegexNode }
  /** `{"wildcard": {"equals-ignore-case": "a*b"}}`: `text` as written, `segments` lower-cased. */
  | { readonly kind: "wildcard-ignore-case"; readonly text: string; readonly segments: readonly string[] }
  /**
   * `{"anything-but": {"wildcard": {"equals-ignore-case": ...}}}`: passes every value but
   * strings one of the wildcards matches ignoring case; `segments` lower-cased.
   */
  | { readonly kind: "anything-but-wildcard-ignore-case"; readonly values: readonly WildcardValue[] };

/** The kinds of {@link ValueMatcher}. */
export type ValueMatcherKind = ValueMatcher["kind"];

/** A condition on one flattened field path: it holds when any matcher does. */
export interface FieldCondition {
  /** Keys from the pattern's root joined with `.`, as event-ruler names fields: `detail.state`. */
  readonly path: string;
  /** `path` split at every `.`; an event key may span several of these (`"state.status"`). */
  readonly segments: readonly string[];
  readonly matchers: readonly ValueMatcher[];
}

/** One alternative of a pattern: every condition must hold, in one consistent slice of the event's arrays. */
export type PatternAlternative = readonly FieldCondition[];

/** A checked event pattern. */
export interface EventPattern {
  /** The pattern's JSON as given (after JSON parsing, so a duplicated key kept its last value). */
  readonly json: JsonObject;
  /** The alternatives, one per combination of `$or` branches; the pattern matches when any does. */
  readonly alternatives: readonly PatternAlternative[];
}
