// Relaybus' operators beyond EventBridge ($and, contains, regex, wildcard ignoring case), each
// case run through the reference matcher, the compiled matcher and the bus-wide machine.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkAllMatchers } from "../helpers/pattern-cases.js";
import { compileEventPattern } from "../../src/patterns/compile-pattern.js";
import { parseEventPattern } from "../../src/patterns/parse-pattern.js";

test("patterns $and - every inner matcher must accept the same value", () => {
  const name = { detail: { name: [{ $and: [{ prefix: "prod-" }, { "anything-but": { suffix: "-test" } }] }] } };
  checkAllMatchers([
    [name, { detail: { name: "prod-api" } }, true],
    [name, { detail: { name: "prod-api-test" } }, false],
    [name, { detail: { name: "dev-api" } }, false],
    [name, { detail: { name: null } }, false], // anything-but passes null, prefix does not
    [name, { detail: {} }, false],
    // One element must satisfy both; two elements each satisfying one do not.
    [name, { detail: { name: ["prod-a-test", "dev-b"] } }, false],
    [name, { detail: { name: ["prod-a-test", "prod-b"] } }, true],
  ]);
});

test("patterns $and - numeric ranges with numeric exclusions, and literals", () => {
  const range = { n: [{ $and: [{ numeric: [">", 0, "<=", 10] }, { "anything-but": [5, 7] }] }] };
  checkAllMatchers([
    [range, { n: 3 }, true],
    [range, { n: 5 }, false],
    [range, { n: 7.0 }, false],
    [range, { n: 10 }, true],
    [range, { n: 11 }, false],
    [range, { n: "3" }, false],
    [range, { n: [5, 9] }, true],
    [{ a: [{ $and: ["x", { "equals-ignore-case": "X" }] }] }, { a: "x" }, true],
    [{ a: [{ $and: ["x", { prefix: "y" }] }] }, { a: "x" }, false],
    [{ ip: [{ $and: [{ cidr: "10.0.0.0/8" }, { "anything-but": { prefix: "10.0.0." } }] }] }, { ip: "10.1.2.3" }, true],
    [{ ip: [{ $and: [{ cidr: "10.0.0.0/8" }, { "anything-but": { prefix: "10.0.0." } }] }] }, { ip: "10.0.0.9" }, false],
  ]);
});

test("patterns $and - sits beside other values of the field, exists: false included", () => {
  const both = { $and: [{ prefix: "x" }, { suffix: "y" }] };
  checkAllMatchers([
    [{ a: ["z", both] }, { a: "z" }, true],
    [{ a: ["z", both] }, { a: "xay" }, true],
    [{ a: ["z", both] }, { a: "xa" }, false],
    [{ a: [{ exists: false }, both] }, {}, true],
    [{ a: [{ exists: false }, both] }, { a: "xy" }, true],
    [{ a: [{ exists: false }, both] }, { a: "q" }, false],
    [{ a: [both], b: [1] }, { a: "xy", b: 1 }, true],
    [{ $or: [{ a: [both] }, { b: [1] }] }, { a: "nope", b: 1 }, true],
  ]);
});

test("patterns contains - a substring of a string value, case-sensitive", () => {
  checkAllMatchers([
    [{ a: [{ contains: "err" }] }, { a: "fatal error" }, true],
    [{ a: [{ contains: "err" }] }, { a: "err" }, true],
    [{ a: [{ contains: "err" }] }, { a: "ERROR" }, false],
    [{ a: [{ contains: "err" }] }, { a: "er" }, false],
    [{ a: [{ contains: "1" }] }, { a: 12 }, false], // strings only
    [{ a: [{ contains: "null" }] }, { a: null }, false],
    [{ a: [{ contains: "😀" }] }, { a: "hi 😀!" }, true],
    [{ a: [{ contains: "b" }] }, { a: ["x", "abc"] }, true],
  ]);
});

test("patterns regex - I-Regexp matches the whole value", () => {
  checkAllMatchers([
    [{ a: [{ regex: "prod-[0-9]+" }] }, { a: "prod-12" }, true],
    [{ a: [{ regex: "prod-[0-9]+" }] }, { a: "prod-12x" }, false], // the whole value, not a part
    [{ a: [{ regex: "prod-[0-9]+" }] }, { a: "xprod-12" }, false],
    [{ a: [{ regex: "[0-9]+" }] }, { a: 12 }, false], // strings only
    [{ a: [{ regex: "a.c" }] }, { a: "abc" }, true],
    [{ a: [{ regex: "a.c" }] }, { a: "a\nc" }, false], // . is not \n or \r
    [{ a: [{ regex: "a.c" }] }, { a: "a😀c" }, true], // . is one Unicode character
    [{ a: [{ regex: "\\p{Lu}\\p{Ll}*" }] }, { a: "Émile" }, true],
    [{ a: [{ regex: "\\p{Lu}\\p{Ll}*" }] }, { a: "émile" }, false],
    [{ a: [{ regex: "[^\\P{L}]+" }] }, { a: "abc" }, true],
    [{ a: [{ regex: "^x$" }] }, { a: "^x$" }, true], // no anchors in I-Regexp: ^ and $ are characters
    [{ a: [{ regex: "^x$" }] }, { a: "x" }, false],
    [{ a: [{ regex: "(ab|a)(c|bcd)" }] }, { a: "abcd" }, true],
    [{ a: [{ regex: "x{2,3}" }] }, { a: "xxxx" }, false],
    [{ a: [{ regex: "" }] }, { a: "" }, true],
    [{ a: [{ regex: ".*" }] }, { a: "\ud800" }, false], // a lone surrogate is not a Unicode string
    [{ a: [{ regex: ".*" }] }, { a: "😀\ud83d" }, false],
    [{ a: [{ regex: ".*" }] }, { a: "😀😀" }, true],
  ]);
});

test("patterns regex - no input makes matching slow (no backtracking)", () => {
  // Each of these takes exponential time in a backtracking engine on a near miss.
  const hostile = ["(a|aa)*b", "(a*)*b", "(x+x+)+y", "(a|a)*c", "(.*a){12}"];
  const value = "a".repeat(50_000) + "!";
  const started = performance.now();
  for (const regex of hostile) {
    const compiled = compileEventPattern(parseEventPattern({ f: [{ regex }] }));
    assert.equal(compiled.matches({ f: value }), false, regex);
  }
  assert.ok(performance.now() - started < 3000, `linear time: ${Math.round(performance.now() - started)} ms`);
});

test("patterns wildcard ignoring case - stars and escapes as in wildcard, letters in any case", () => {
  const image = { f: [{ wildcard: { "equals-ignore-case": "IMG_*.PNG" } }] };
  checkAllMatchers([
    [image, { f: "img_1.png" }, true],
    [image, { f: "IMG_2024.Png" }, true],
    [image, { f: "img_1.jpg" }, false],
    [image, { f: 5 }, false],
    [{ f: [{ wildcard: { "equals-ignore-case": "A\\*B" } }] }, { f: "a*b" }, true],
    [{ f: [{ wildcard: { "equals-ignore-case": "A\\*B" } }] }, { f: "axb" }, false],
    [{ f: [{ wildcard: { "equals-ignore-case": "*ÜBER*" } }] }, { f: "x-über-y" }, true],
    [{ f: [{ wildcard: { "equals-ignore-case": "" } }] }, { f: "" }, true],
  ]);
});

test("patterns anything-but wildcard ignoring case - excludes the strings any wildcard matches", () => {
  const notFiles = { f: [{ "anything-but": { wildcard: { "equals-ignore-case": ["FILE*", "*.PNG"] } } }] };
  checkAllMatchers([
    [notFiles, { f: "File.txt" }, false],
    [notFiles, { f: "x.png" }, false],
    [notFiles, { f: "report.txt" }, true],
    [notFiles, { f: null }, true],
    [notFiles, { f: 5 }, true],
    [notFiles, {}, false],
    [{ f: [{ "anything-but": { wildcard: { "equals-ignore-case": "*-TEST" } } }] }, { f: "api-test" }, false],
    [{ f: [{ "anything-but": { wildcard: { "equals-ignore-case": "*-TEST" } } }] }, { f: "api-prod" }, true],
  ]);
});
