// The per-pattern guards: each limit is reached exactly at its named constant, and the error
// names the path where the pattern passed it and the limit.
import assert from "node:assert/strict";
import { test } from "node:test";
import { isRelaybusError } from "../../src/errors.js";
import { parseEventPattern } from "../../src/patterns/parse-pattern.js";
import {
  MAX_PATTERN_FIELDS,
  MAX_REGEX_PER_PATTERN,
  MAX_VALUES_PER_FIELD,
  MAX_WILDCARD_SCORE,
  wildcardScore,
} from "../../src/patterns/pattern-limits.js";
import { MAX_WILDCARDS_PER_VALUE } from "../../src/patterns/wildcard.js";

const unlimited = { maxPatternBytes: 10_000_000 };

/**
 * The limits on a whole pattern (fields, values per list, wildcard score, regexes) answer
 * `EventPatternTooComplex`; a single value that is too complex is a wrong value,
 * `InvalidEventPattern`.
 */
function rejects(
  pattern: unknown,
  path: string,
  message: RegExp,
  code: "EventPatternTooComplex" | "InvalidEventPattern" = "EventPatternTooComplex",
): void {
  assert.throws(
    () => parseEventPattern(pattern, unlimited),
    (error) => {
      assert.ok(isRelaybusError(error, code), `${code}, got ${String(error)}`);
      assert.equal(error.details?.["path"], path);
      assert.match(error.message, message);
      return true;
    },
  );
}

function fields(count: number, values: (i: number) => unknown[]): Record<string, unknown[]> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`f${i}`, values(i)]));
}

test("patterns limits - fields per pattern", () => {
  assert.doesNotThrow(() => parseEventPattern(fields(MAX_PATTERN_FIELDS, () => ["x"]), unlimited));
  rejects(fields(MAX_PATTERN_FIELDS + 1, () => ["x"]), `f${MAX_PATTERN_FIELDS}`, /more than 256 fields, the limit/);
  // A field $or shares between alternatives counts once; each branch's own fields count.
  const shared = { ...fields(MAX_PATTERN_FIELDS - 2, () => ["x"]), $or: [{ a: ["1"] }, { b: ["2"] }] };
  assert.equal(parseEventPattern(shared, unlimited).alternatives.length, 2);
});

test("patterns limits - values per field, per anything-but list and per $and", () => {
  const many = (n: number): string[] => Array.from({ length: n }, (_, i) => `v${i}`);
  assert.doesNotThrow(() => parseEventPattern({ a: many(MAX_VALUES_PER_FIELD) }, unlimited));
  rejects({ a: many(MAX_VALUES_PER_FIELD + 1) }, "a", /1025 values, more than the limit of 1024/);
  rejects({ a: [{ "anything-but": many(MAX_VALUES_PER_FIELD + 1) }] }, "a[0].anything-but", /limit of 1024/);
  rejects({ a: [{ "anything-but": { prefix: many(MAX_VALUES_PER_FIELD + 1) } }] }, "a[0].anything-but.prefix", /limit of 1024/);
  rejects({ a: [{ $and: many(MAX_VALUES_PER_FIELD + 1) }] }, "a[0].$and", /limit of 1024/);
});

test("patterns limits - the wildcard complexity score: stars per value, and their total per pattern", () => {
  const stars = (n: number): string => `a${"*a".repeat(n)}`;
  assert.equal(MAX_WILDCARDS_PER_VALUE, 5);
  rejects({ a: [{ wildcard: stars(6) }] }, "a[0].wildcard", /too complex: 6 wildcard characters, at most 5/, "InvalidEventPattern");
  // 8 values of 5 stars reach the limit of 40 exactly; one more star is over, at the field that adds it.
  const eight = fields(8, () => [{ wildcard: stars(5) }]);
  assert.equal(MAX_WILDCARD_SCORE, 40);
  assert.doesNotThrow(() => parseEventPattern(eight, unlimited));
  rejects({ ...eight, z: [{ "anything-but": { wildcard: "x*" } }] }, "z", /score reaches 41 here, more than the limit of 40/);
  rejects({ ...eight, z: [{ contains: "x" }] }, "z", /score reaches 42/);
  rejects({ ...eight, z: [{ $and: [{ wildcard: { "equals-ignore-case": "*x" } }, "y"] }] }, "z", /score reaches 41/);
  assert.equal(wildcardScore({ kind: "contains", value: "x" }), 2);
  assert.equal(wildcardScore({ kind: "prefix", value: "x", ignoreCase: false }), 0);
});

test("patterns limits - each complexity limit is configurable", () => {
  const three = fields(3, () => ["x"]);
  assert.doesNotThrow(() => parseEventPattern(three, { ...unlimited, maxFields: 3 }));
  assert.throws(
    () => parseEventPattern(three, { ...unlimited, maxFields: 2 }),
    (error) => isRelaybusError(error, "EventPatternTooComplex") && /more than 2 fields.*limits.maxPatternFields/.test(error.message),
  );
  const wide = [{ a: ["1"] }, { b: ["2"] }, { c: ["3"] }];
  assert.throws(
    () => parseEventPattern({ $or: wide }, { ...unlimited, maxAlternatives: 2 }),
    (error) => isRelaybusError(error, "EventPatternTooComplex") && /more than 2 alternatives/.test(error.message),
  );
  assert.throws(
    () => parseEventPattern({ a: [{ wildcard: "x*y*z" }] }, { ...unlimited, maxWildcardScore: 1 }),
    (error) => isRelaybusError(error, "EventPatternTooComplex") && /limit of 1/.test(error.message),
  );
  assert.throws(
    () => parseEventPattern({ a: [{ regex: "a" }] }, { ...unlimited, maxRegexes: 0 }),
    (error) => isRelaybusError(error, "EventPatternTooComplex") && /more than 0 regex/.test(error.message),
  );
});

test("patterns limits - regex operators per pattern", () => {
  const regexes = (n: number) => fields(n, () => [{ regex: "[a-z]+" }]);
  assert.doesNotThrow(() => parseEventPattern(regexes(MAX_REGEX_PER_PATTERN), unlimited));
  rejects(regexes(MAX_REGEX_PER_PATTERN + 1), `f${MAX_REGEX_PER_PATTERN}`, /more than 16 regex operators, the limit/);
  rejects(
    { ...regexes(MAX_REGEX_PER_PATTERN - 1), z: [{ $and: [{ regex: "a" }, { regex: "b" }] }] },
    "z",
    /more than 16 regex operators/,
  );
});

test("patterns limits - values per list, nesting, stars per wildcard and regex length are configurable, each naming its setting", () => {
  const refusedAs = (code: "EventPatternTooComplex" | "EventPatternTooLarge" | "InvalidEventPattern", path: string, message: RegExp) =>
    (error: unknown) => {
      assert.ok(isRelaybusError(error, code), `${code}, got ${String(error)}`);
      assert.equal(error.details?.["path"], path);
      assert.match(error.message, message);
      return true;
    };
  assert.doesNotThrow(() => parseEventPattern({ a: ["1", "2"] }, { ...unlimited, maxValuesPerField: 2 }));
  assert.throws(
    () => parseEventPattern({ a: [{ "anything-but": ["1", "2", "3"] }] }, { ...unlimited, maxValuesPerField: 2 }),
    refusedAs("EventPatternTooComplex", "a[0].anything-but", /3 values, more than the limit of 2 \(limits\.maxPatternValuesPerField\)/),
  );
  assert.doesNotThrow(() => parseEventPattern({ a: { b: ["1"] } }, { ...unlimited, maxDepth: 2 }));
  assert.throws(
    () => parseEventPattern({ a: { b: { c: ["1"] } } }, { ...unlimited, maxDepth: 2 }),
    refusedAs("EventPatternTooComplex", "a.b", /deeper than 2 levels \(limits\.maxPatternDepth\)/),
  );
  // Stars per wildcard stay EventBridge's refusal of a wrong value, in every wildcard form.
  assert.doesNotThrow(() => parseEventPattern({ a: [{ wildcard: "a*b*c" }] }, { ...unlimited, maxWildcardStars: 2 }));
  for (const [value, path] of [
    [{ wildcard: "a*b*c*d" }, "a[0].wildcard"],
    [{ wildcard: { "equals-ignore-case": "a*b*c*d" } }, "a[0].wildcard.equals-ignore-case"],
    [{ "anything-but": { wildcard: ["x", "a*b*c*d"] } }, "a[0].anything-but.wildcard[1]"],
  ] as const) {
    assert.throws(
      () => parseEventPattern({ a: [value] }, { ...unlimited, maxWildcardStars: 2 }),
      refusedAs("InvalidEventPattern", path, /3 wildcard characters, at most 2 \(limits\.maxPatternWildcardStars\)/),
    );
  }
  assert.doesNotThrow(() => parseEventPattern({ a: [{ regex: "[a-z]+" }] }, { ...unlimited, maxRegexLength: 6 }));
  assert.throws(
    () => parseEventPattern({ a: [{ $and: [{ regex: "[a-z]+x" }, "y"] }] }, { ...unlimited, maxRegexLength: 6 }),
    refusedAs("EventPatternTooLarge", "a[0].$and[0].regex", /7 characters, more than the limit of 6 \(limits\.maxPatternRegexLength\)/),
  );
});
