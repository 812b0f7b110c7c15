import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { isStringifyForm } from "../../src/events/stringify-form.js";

/** The question isStringifyForm answers, the slow way. */
function reserializesUnchanged(text: string): boolean {
  return JSON.stringify(JSON.parse(text)) === text;
}

/** Asserts the one thing that must hold: a yes is never wrong (a no only costs a serialization). */
function assertNoFalseYes(text: string): void {
  try {
    JSON.parse(text);
  } catch {
    return; // only defined for text JSON.parse accepts
  }
  if (isStringifyForm(text)) {
    assert.ok(reserializesUnchanged(text), `said yes to ${JSON.stringify(text)}`);
  }
}

test("stringify form - yes to what JSON.stringify writes for typical event data", () => {
  for (const value of [
    { orderId: "o-12345", total: 129.5, items: [{ sku: "a1", qty: 2 }], note: "x".repeat(700) },
    { a: null, b: true, c: false, d: [], e: {}, f: -12, g: 0, h: 0.001, i: 1e21, j: -1.5e-7 },
    {
      text: 'quote " backslash \\ newline \n tab \t',
      "key with spaces": "café €😀",
      __proto__x: 1,
    },
    { nested: { a: { b: { c: [1, [2, [3]]] } } }, same: { a: 1 }, other: { a: 2 } },
    { "\u2028": "\u2029", del: "\u007f" },
  ]) {
    const text = JSON.stringify(value);
    assert.equal(isStringifyForm(text), true, text);
  }
});

test("stringify form - no to each way re-serializing would change the text", () => {
  for (const text of [
    '{ "a":1}', // whitespace
    '{"a":1}\n',
    '{"a":"\\/"}', // an escape JSON.stringify does not write
    '{"a":"\\u0041"}',
    '{"a":"\ud800"}', // a raw lone surrogate, which JSON.stringify escapes
    '{"a":1.0}', // numbers not in their shortest form
    '{"a":1e2}',
    '{"a":-0}',
    '{"a":0.10}',
    '{"a":12345678901234567890}',
    '{"a":1e400}', // Infinity, written as null
    '{"a":1,"a":2}', // a duplicate key
    '{"b":{"x":1,"y":2,"x":3}}',
    '{"b":1,"1":2}', // an array-index key, which V8 orders first
  ]) {
    assert.equal(reserializesUnchanged(text), false, `the case ${text} should differ`);
    assert.equal(isStringifyForm(text), false, text);
  }
  // JSON.stringify writes a lone surrogate as \ud800, but the scan says no to every \u: safe.
  assert.equal(isStringifyForm('{"a":"\\ud800"}'), false);
  // Keys of sibling objects are not duplicates of each other.
  assert.equal(isStringifyForm('{"a":{"k":1},"b":{"k":2},"k":3}'), true);
});

test("stringify form - never yes when re-serializing would change the text, on random JSON", () => {
  // Changes that break the form, applied to JSON.stringify output at a random place.
  const breakers: ((text: string, at: number) => string)[] = [
    (text, at) => text.slice(0, at) + " " + text.slice(at),
    (text) => text.replace(/(\d)(?=[,\]}])/, "$1.0"),
    (text) => text.replace(/"([^"\\]*)":/, '"$1":1,"$1":'),
    (text) => text.replace(/"([a-z])/, '"\\u0061$1'),
    (text) => text.replace(/,"/, ',"7":0,"'),
  ];
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 5 }), fc.nat(), (value, seed) => {
      const text = JSON.stringify(value);
      assertNoFalseYes(text);
      assertNoFalseYes(breakers[seed % breakers.length]!(text, seed % (text.length + 1)));
    }),
    { numRuns: 3_000 },
  );
  fc.assert(
    fc.property(fc.json({ maxDepth: 4 }), (text) => assertNoFalseYes(text)),
    { numRuns: 3_000 },
  );
  const alphabet = [...'{}[]":,0123456789.-eE+ \\/untrlab\u0001\ud800\udc00'];
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...alphabet), { maxLength: 24 }), (chars) =>
      assertNoFalseYes(chars.join("")),
    ),
    { numRuns: 30_000 },
  );
});
