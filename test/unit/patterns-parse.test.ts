// parseEventPattern: what it rejects, and that every message names the offending part by path.
import assert from "node:assert/strict";
import { test } from "node:test";
import { isRelaybusError } from "../../src/errors.js";
import { parseEventPattern } from "../../src/patterns/parse-pattern.js";

function rejects(
  pattern: unknown,
  path: string,
  message: RegExp,
  limits = {},
  code: "InvalidEventPattern" | "EventPatternTooComplex" | "EventPatternTooLarge" = "InvalidEventPattern",
): void {
  assert.throws(
    () => parseEventPattern(pattern, limits),
    (error) => {
      assert.ok(isRelaybusError(error, code), `${code} for ${JSON.stringify(pattern)}`);
      assert.equal(error.details?.["path"], path);
      assert.ok(error.message.startsWith(`${path === "" ? "pattern" : path}: `), error.message);
      assert.match(error.message, message);
      return true;
    },
  );
}

test("patterns parse - numeric errors name the operator's path and show the operand", () => {
  rejects({ detail: { total: [{ numeric: [">"] }] } }, "detail.total[0].numeric",
    /^detail\.total\[0\]\.numeric: numeric needs pairs of operator and number, got \[">"\]$/);
  rejects({ a: [{ numeric: [">", 0, ">", 5] }] }, "a[0].numeric", /second operator/);
  rejects({ a: [{ numeric: ["=", 5, "<", 6] }] }, "a[0].numeric", /cannot be combined/);
  rejects({ a: [{ numeric: ["<", 5, ">", 1] }] }, "a[0].numeric", /lower bound/);
  rejects({ a: [{ numeric: [">", 5, "<", 5] }] }, "a[0].numeric", /less than the upper bound/);
  rejects({ a: [{ numeric: ["~", 5] }] }, "a[0].numeric[0]", /one of =, <, <=, >, >=/);
  rejects({ a: [{ numeric: [">", "5"] }] }, "a[0].numeric[1]", /must be a number/);
  rejects({ a: [{ numeric: [">", 6e9] }] }, "a[0].numeric[1]", /between -5e9 and 5e9/);
  rejects({ a: [{ numeric: [">", 0.1234567] }] }, "a[0].numeric[1]", /6 decimal places/);
  rejects({ a: [{ numeric: 10 }] }, "a[0].numeric", /pairs of operator and number/);
});

test("patterns parse - shapes EventBridge rejects", () => {
  rejects("source", "", /must be a JSON object/);
  rejects([], "", /must be a JSON object/);
  rejects({}, "", /empty objects/);
  rejects({ detail: {} }, "detail", /empty objects/);
  rejects({ source: "aws.ec2" }, "source", /array of values or an object.*\["aws.ec2"\]/);
  rejects({ n: 42 }, "n", /array of values or an object/);
  rejects({ resources: [] }, "resources", /empty arrays/);
  rejects({ a: [["x"]] }, "a[0]", /a value must be/);
  rejects({ a: [Number.NaN] }, "a[0]", /finite/);
  rejects({ a: [{}] }, "a[0]", /empty operator object/);
  rejects({ a: [{ prefix: "x", suffix: "y" }] }, "a[0]", /only one operator/);
  rejects({ a: [{ EXISTS: true }] }, "a[0].EXISTS", /unknown operator "EXISTS"/);
});

test("patterns parse - operand types", () => {
  rejects({ a: [{ prefix: 1 }] }, "a[0].prefix", /needs a string/);
  rejects({ a: [{ prefix: ["x"] }] }, "a[0].prefix", /needs a string/);
  rejects({ a: [{ suffix: { "equals-ignore-case": 1 } }] }, "a[0].suffix.equals-ignore-case", /needs a string/);
  rejects({ a: [{ prefix: { other: "x" } }] }, "a[0].prefix", /equals-ignore-case/);
  rejects({ a: [{ "equals-ignore-case": ["x"] }] }, "a[0].equals-ignore-case", /needs a string/);
  rejects({ a: [{ exists: "yes" }] }, "a[0].exists", /true or false/);
  rejects({ a: [{ cidr: ["10.0.0.0/8"] }] }, "a[0].cidr", /needs a string/);
});

test("patterns parse - anything-but forms", () => {
  rejects({ a: [{ "anything-but": null }] }, "a[0].anything-but", /needs a string, a number/);
  rejects({ a: [{ "anything-but": ["x", null] }] }, "a[0].anything-but[1]", /strings or numbers/);
  rejects({ a: [{ "anything-but": ["x", 1] }] }, "a[0].anything-but", /not both/);
  rejects({ a: [{ "anything-but": [] }] }, "a[0].anything-but", /empty arrays/);
  rejects({ a: [{ "anything-but": { prefix: "" } }] }, "a[0].anything-but.prefix", /cannot be empty/);
  rejects({ a: [{ "anything-but": { suffix: [".x", 1] } }] }, "a[0].anything-but.suffix[1]", /needs strings/);
  rejects({ a: [{ "anything-but": { prefix: { "equals-ignore-case": "x" } } }] }, "a[0].anything-but.prefix", /string or a list/);
  rejects({ a: [{ "anything-but": { numeric: [">", 1] } }] }, "a[0].anything-but.numeric", /one of equals-ignore-case/);
  rejects({ a: [{ "anything-but": { wildcard: ["ok*", "a**"] } }] }, "a[0].anything-but.wildcard[1]", /consecutive/);
});

test("patterns parse - wildcard and cidr operands", () => {
  rejects({ a: [{ wildcard: "a**b" }] }, "a[0].wildcard", /consecutive wildcard characters at position 1/);
  rejects({ a: [{ wildcard: "a\\b" }] }, "a[0].wildcard", /invalid escape/);
  rejects({ a: [{ wildcard: "*:*:*:*:*:x/*" }] }, "a[0].wildcard", /too complex/);
  rejects({ a: [{ cidr: "10.0.0.0" }] }, "a[0].cidr", /one '\/' required/);
  rejects({ a: [{ cidr: "10.0.0.0/x" }] }, "a[0].cidr", /must be an integer/);
  rejects({ a: [{ cidr: "10.0.0.0/32" }] }, "a[0].cidr", /mask bits must be < 32/);
  rejects({ a: [{ cidr: "2001:db8::/128" }] }, "a[0].cidr", /mask bits must be < 128/);
  rejects({ a: [{ cidr: "300.0.0.0/8" }] }, "a[0].cidr", /invalid IP address/);
  rejects({ a: [{ cidr: "1:2:3:4:5:6:7:8:9/64" }] }, "a[0].cidr", /invalid IP address/);
});

test("patterns parse - $or needs at least two objects and reserves operator names", () => {
  rejects({ $or: [{ a: ["x"] }] }, "$or", /at least 2/);
  rejects({ $or: { a: ["x"] } }, "$or", /array/);
  rejects({ d: { $or: [{ a: ["x"] }, "b"] } }, "d.$or[1]", /must be an object/);
  rejects({ $or: [{ a: ["x"] }, { prefix: ["y"] }] }, "$or[1].prefix", /reserved/);
  rejects({ $or: [{ a: ["x"] }, { b: { numeric: ["y"] } }] }, "$or[1].b.numeric", /reserved/);
  const wide = Array.from({ length: 40 }, (_, i) => ({ [`k${i}`]: ["v"] }));
  rejects({ $or: wide, x: { $or: wide } }, "x.$or", /more than 1024 alternatives/, {}, "EventPatternTooComplex");
});

test("patterns parse - size and depth limits", () => {
  assert.throws(
    () => parseEventPattern({ a: ["x".repeat(100)] }, { maxPatternBytes: 50 }),
    (error) => isRelaybusError(error, "EventPatternTooLarge") && /larger than the limit of 50/.test(error.message),
    "a size of its own code",
  );
  let deep: Record<string, unknown> = { leaf: ["x"] };
  for (let i = 0; i < 5; i++) deep = { n: deep };
  rejects(deep, "n.n.n.n", /deeper than 4 levels/, { maxDepth: 4 }, "EventPatternTooComplex");
  assert.doesNotThrow(() => parseEventPattern(deep, { maxDepth: 6 }));
});

test("patterns parse - the typed pattern keeps the JSON and flattens fields into alternatives", () => {
  const parsed = parseEventPattern({ source: ["shop"], detail: { $or: [{ a: [1] }, { "b.c": [{ exists: true }] }] } });
  assert.deepEqual(parsed.json, { source: ["shop"], detail: { $or: [{ a: [1] }, { "b.c": [{ exists: true }] }] } });
  assert.deepEqual(
    parsed.alternatives.map((alternative) => alternative.map((condition) => condition.path)),
    [["source", "detail.a"], ["source", "detail.b.c"]],
  );
  assert.deepEqual(parsed.alternatives[1]?.[1]?.segments, ["detail", "b", "c"]);
});

test("patterns parse - $and needs at least two value matchers, none of them exists or $and", () => {
  rejects({ a: [{ $and: { prefix: "x" } }] }, "a[0].$and", /array of at least 2/);
  rejects({ a: [{ $and: [{ prefix: "x" }] }] }, "a[0].$and", /at least 2 value matchers, got 1/);
  rejects({ a: [{ $and: [{ prefix: "x" }, { exists: true }] }] }, "a[0].$and[1]", /exists cannot be inside \$and/);
  rejects({ a: [{ $and: [{ prefix: "x" }, { $and: ["a", "b"] }] }] }, "a[0].$and[1]", /cannot hold another \$and/);
  rejects({ a: [{ $and: [{ prefix: "x" }, { suffix: 1 }] }] }, "a[0].$and[1].suffix", /needs a string/);
  rejects({ a: [{ $and: [{ prefix: "x" }, { numeric: [">", 1e-7] }] }] }, "a[0].$and[1].numeric[1]", /6 decimal places/);
  rejects({ a: { $and: [{ b: ["x"] }, { c: ["y"] }] } }, "a.$and", /goes in a field's array/);
  rejects({ a: [{ $and: ["x", "y"], prefix: "z" }] }, "a[0]", /only one operator/);
});

test("patterns parse - contains and regex operands", () => {
  rejects({ a: [{ contains: 1 }] }, "a[0].contains", /needs a string/);
  rejects({ a: [{ contains: "" }] }, "a[0].contains", /non-empty/);
  rejects({ a: [{ regex: ["x"] }] }, "a[0].regex", /needs a string \(an I-Regexp, RFC 9485\)/);
  rejects({ a: [{ regex: "\\d+" }] }, "a[0].regex", /at position 0: \\d is not I-Regexp; write \[0-9\]/);
  rejects({ a: [{ regex: "x(?:y)" }] }, "a[0].regex", /at position 2: \(\? groups .* are not I-Regexp/);
  rejects({ a: [{ regex: "a*?" }] }, "a[0].regex", /cannot follow another quantifier/);
  rejects({ a: [{ regex: "(a" }] }, "a[0].regex", /unclosed \(/);
  rejects({ a: [{ regex: "a{3,2}" }] }, "a[0].regex", /maximum below its minimum/);
  rejects({ a: [{ regex: "\\p{IsBasicLatin}" }] }, "a[0].regex", /general category/);
  rejects({ a: [{ regex: "(a)\\1" }] }, "a[0].regex", /backreferences/);
  rejects({ a: [{ regex: "x\ud800" }] }, "a[0].regex", /lone surrogate U\+D800/);
});

test("patterns parse - regex size limits, with the limit in the message", () => {
  // Too long is a size (EventPatternTooLarge); the other regex limits make a wrong regex.
  rejects({ a: [{ regex: "x".repeat(257) }] }, "a[0].regex", /257 characters, more than the limit of 256 \(limits\.maxPatternRegexLength\)/, {}, "EventPatternTooLarge");
  assert.doesNotThrow(() => parseEventPattern({ a: [{ regex: "x".repeat(256) }] }));
  rejects({ a: [{ regex: "a{1001}" }] }, "a[0].regex", /repetition count 1001 is more than 1000/);
  rejects({ a: [{ regex: "(a{100}){100}" }] }, "a[0].regex", /nested repetition counts multiply to more than 1000/);
  rejects({ a: [{ regex: "[a-z]{0,1000}" }] }, "a[0].regex", /compiles to \d+ instructions, more than the limit of 1000/);
  assert.doesNotThrow(() => parseEventPattern({ a: [{ regex: "[a-z]{0,400}" }] }));
});

test("patterns parse - wildcard ignoring case, and the anything-but forms EventBridge refuses", () => {
  rejects({ a: [{ wildcard: { "equals-ignore-case": 1 } }] }, "a[0].wildcard.equals-ignore-case", /needs a string/);
  rejects({ a: [{ wildcard: { other: "x" } }] }, "a[0].wildcard", /equals-ignore-case/);
  rejects({ a: [{ wildcard: { "equals-ignore-case": "a**" } }] }, "a[0].wildcard.equals-ignore-case", /consecutive/);
  rejects({ a: [{ wildcard: ["x*"] }] }, "a[0].wildcard", /needs a string or \{"equals-ignore-case": string\}/);
  rejects(
    { a: [{ "anything-but": { wildcard: { "equals-ignore-case": ["ok*", "a\\b"] } } }] },
    "a[0].anything-but.wildcard.equals-ignore-case[1]",
    /invalid escape/,
  );
  rejects({ a: [{ "anything-but": { wildcard: { prefix: "x" } } }] }, "a[0].anything-but.wildcard", /equals-ignore-case/);
  // Recorded EventBridge answers refuse these; the message shows the form that works.
  rejects(
    { a: [{ "anything-but": { suffix: { "equals-ignore-case": ".png" } } }] },
    "a[0].anything-but.suffix",
    /\{"anything-but": \{"wildcard": \{"equals-ignore-case": "\*x"\}\}\}/,
  );
});
