import assert from "node:assert/strict";
import { test } from "node:test";
import { toBusPattern } from "../../src/rules/bus-pattern.js";

test("rules bus pattern - detail-type and detail mean type and data", () => {
  const result = toBusPattern({
    source: ["shop"],
    "detail-type": ["order.created"],
    detail: { total: [{ numeric: [">", 100] }] },
  });
  assert.deepEqual(result, {
    pattern: {
      source: ["shop"],
      type: ["order.created"],
      data: { total: [{ numeric: [">", 100] }] },
    },
    problems: [],
  });
});

test("rules bus pattern - CloudEvents names pass through unchanged", () => {
  const pattern = { type: ["a"], data: { x: [1] }, subject: [{ prefix: "s" }] };
  assert.deepEqual(toBusPattern(pattern).pattern, pattern);
});

test("rules bus pattern - flattened keys are translated by their first segment", () => {
  assert.deepEqual(toBusPattern({ "detail.total": [5], detailed: ["x"] }).pattern, {
    "data.total": [5],
    detailed: ["x"],
  });
});

test("rules bus pattern - only top-level keys are translated, nested detail stays", () => {
  assert.deepEqual(toBusPattern({ data: { detail: ["x"] } }).pattern, { data: { detail: ["x"] } });
});

test("rules bus pattern - top-level $or alternatives are translated", () => {
  const result = toBusPattern({
    source: ["s"],
    $or: [{ "detail-type": ["a"] }, { detail: { n: [1] }, $or: [{ "detail.m": [2] }] }],
  });
  assert.deepEqual(result.pattern, {
    source: ["s"],
    $or: [{ type: ["a"] }, { data: { n: [1] }, $or: [{ "data.m": [2] }] }],
  });
});

test("rules bus pattern - both detail and data is an error naming both", () => {
  const result = toBusPattern({ detail: { a: [1] }, data: { b: [2] } });
  assert.equal(result.pattern, undefined);
  assert.equal(result.problems.length, 1);
  assert.equal(result.problems[0]?.pointer, "/detail");
  assert.equal(result.problems[0]?.code, "InvalidEventPattern");
  assert.match(
    result.problems[0]?.message ?? "",
    /"detail" \(at \/detail\) and "data" \(at \/data\)/,
  );
});

test("rules bus pattern - mixing vocabularies across $or alternatives is refused too", () => {
  const result = toBusPattern({ $or: [{ type: ["a"] }, { "detail-type": ["b"] }] });
  assert.equal(result.problems.length, 1);
  assert.equal(result.problems[0]?.pointer, "/$or/1/detail-type");
  assert.match(result.problems[0]?.message ?? "", /"detail-type".*"type" \(at \/\$or\/0\/type\)/);
});
