import assert from "node:assert/strict";
import { test } from "node:test";
import { isRelaybusError } from "../../src/errors.js";
import { parseJsonBody } from "../../src/events/json-body.js";

const limits = { maxJsonDepth: 4 };

function nested(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}

test("json body - parses a Buffer and a string to the same value", () => {
  const text = '{"a":[1,{"b":"é"}],"c":null}';
  assert.deepEqual(parseJsonBody(Buffer.from(text), limits), { a: [1, { b: "é" }], c: null });
  assert.deepEqual(parseJsonBody(text, limits), { a: [1, { b: "é" }], c: null });
});

test("json body - accepts nesting exactly at the limit and rejects one level more", () => {
  assert.deepEqual(parseJsonBody(nested(4), limits), [[[[]]]]);
  assert.deepEqual(parseJsonBody(Buffer.from(nested(4)), limits), [[[[]]]]);
  for (const body of [nested(5), Buffer.from(nested(5))]) {
    assert.throws(
      () => parseJsonBody(body, limits),
      (error: unknown) => isRelaybusError(error, "JsonTooDeep") && /limit of 4 levels/.test(error.message),
    );
  }
});

test("json body - brackets and escaped quotes inside strings do not count as depth", () => {
  const text = '{"a":"[[[[[[[[\\"[[[[[[","b":["\\\\",{"c":"{{{{{{{{"}]}';
  assert.deepEqual(parseJsonBody(text, limits), { a: '[[[[[[[["[[[[[[', b: ["\\", { c: "{{{{{{{{" }] });
  assert.deepEqual(parseJsonBody(Buffer.from(text), limits), parseJsonBody(text, limits));
});

test("json body - a 100,000-deep array is rejected fast without a stack overflow", () => {
  const deep = Buffer.from(nested(100_000));
  const started = performance.now();
  assert.throws(() => parseJsonBody(deep, { maxJsonDepth: 64 }), (error: unknown) => isRelaybusError(error, "JsonTooDeep"));
  assert.throws(() => parseJsonBody(deep.toString(), { maxJsonDepth: 64 }), (error: unknown) => isRelaybusError(error, "JsonTooDeep"));
  assert.ok(performance.now() - started < 200, "depth check took too long");
});

test("json body - invalid JSON names the position, line and column when V8 gives one", () => {
  assert.throws(
    () => parseJsonBody(Buffer.from('{\n  "a": 1'), limits),
    (error: unknown) =>
      isRelaybusError(error, "InvalidJson") &&
      /^invalid JSON at position 10 \(line 2, column 9\): Expected ',' or '}'/.test(error.message) &&
      error.details?.["position"] === 10,
  );
});

test("json body - invalid JSON without a position gives V8's reason without echoing the input", () => {
  assert.throws(
    () => parseJsonBody('{"secret":}', limits),
    (error: unknown) =>
      isRelaybusError(error, "InvalidJson") &&
      error.message === "invalid JSON: Unexpected token '}'" &&
      !error.message.includes("secret"),
  );
});

test("json body - an empty or blank body is InvalidJson saying so", () => {
  for (const body of [Buffer.alloc(0), "   \n"]) {
    assert.throws(
      () => parseJsonBody(body, limits),
      (error: unknown) => isRelaybusError(error, "InvalidJson") && /the body is empty/.test(error.message),
    );
  }
});

test("json body - an unterminated string is InvalidJson, not a depth error", () => {
  assert.throws(
    () => parseJsonBody('["abc', limits),
    (error: unknown) => isRelaybusError(error, "InvalidJson"),
  );
});
