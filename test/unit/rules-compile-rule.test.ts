import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { isRelaybusError } from "../../src/errors.js";
import {
  checkRule,
  compileRule,
  resolveDottedPath,
  resolveRetryPolicy,
} from "../../src/rules/compile-rule.js";
import type { RuleDefinition } from "../../src/rules/model.js";
import type { CloudEvent } from "../../src/types.js";

const options = { config: DEFAULT_CONFIG, origin: { kind: "api" } as const };
const target = { id: "t", webhook: { url: "http://127.0.0.1:9000/" } };

function event(fields: Partial<CloudEvent>): CloudEvent {
  return { specversion: "1.0", id: "e", source: "shop", type: "order.created", ...fields };
}

function compile(pattern: object) {
  return compileRule("orders", { name: "r", pattern, targets: [target] }, options);
}

test("rules compile - AWS-style patterns match the CloudEvent's type and data", () => {
  const rule = compile({
    "detail-type": ["order.created"],
    detail: { total: [{ numeric: [">", 100] }] },
  });
  assert.equal(rule.matches(event({ data: { total: 150 } })), true);
  assert.equal(rule.matches(event({ data: { total: 50 } })), false);
  assert.equal(rule.matches(event({ type: "order.paid", data: { total: 150 } })), false);
  // The AWS names are not matched literally on a bus: a CloudEvent has no `detail`.
  assert.equal(rule.matches({ ...event({}), detail: { total: 150 } } as CloudEvent), false);
});

test("rules compile - CloudEvents-style patterns match as written", () => {
  const rule = compile({ type: ["order.created"], data: { total: [{ numeric: [">", 100] }] } });
  assert.equal(rule.matches(event({ data: { total: 150 } })), true);
  assert.equal(rule.matches(event({ data: { total: 5 } })), false);
});

test("rules compile - translation reaches top-level $or alternatives", () => {
  const rule = compile({
    source: ["shop"],
    $or: [{ "detail-type": ["order.paid"] }, { detail: { vip: [true] } }],
  });
  assert.equal(rule.matches(event({ type: "order.paid" })), true);
  assert.equal(rule.matches(event({ data: { vip: true } })), true);
  assert.equal(rule.matches(event({ data: { vip: false } })), false);
});

test("rules compile - a pattern naming both detail and data is refused with both names", () => {
  assert.throws(
    () => compile({ detail: { a: [1] }, data: { b: [2] } }),
    (error: unknown) =>
      isRelaybusError(error, "InvalidEventPattern") &&
      /^\/pattern\/detail: pattern uses both "detail".*"data"/.test(error.message),
  );
});

test("rules compile - retry and timeout resolve against the configured defaults", () => {
  const defaults = { ...DEFAULT_CONFIG.delivery.retry, maxAttempts: 7 };
  assert.deepEqual(resolveRetryPolicy(undefined, defaults), defaults);
  assert.deepEqual(resolveRetryPolicy({ maxAgeSeconds: 120, factor: 3 }, defaults), {
    ...defaults,
    maxAgeSeconds: 120,
    factor: 3,
  });
  const config = {
    ...DEFAULT_CONFIG,
    delivery: { ...DEFAULT_CONFIG.delivery, timeoutMs: 1234, retry: defaults },
  };
  const result = checkRule(
    "b",
    { name: "r", pattern: { source: ["x"] }, targets: [target] },
    { config, origin: { kind: "api" } },
  );
  assert.equal(result.rule?.targets[0]?.timeoutMs, 1234);
  assert.deepEqual(result.rule?.targets[0]?.retry, defaults);
});

test("rules compile - a transform without a format delivers as transform; no transform means structured", () => {
  const rule = compileRule(
    "b",
    {
      name: "r",
      pattern: { source: ["x"] },
      targets: [
        { ...target, transform: "data" },
        { ...target, id: "u" },
      ],
    },
    options,
  );
  assert.deepEqual(
    rule.targets.map((t) => [t.targetId, t.format, t.transform?.expression]),
    [
      ["t", "transform", "data"],
      ["u", "cloudevents-structured", undefined],
    ],
  );
});

test("rules compile - every problem of a rule is collected, not only the first", () => {
  const definition: RuleDefinition = {
    name: "r",
    pattern: { source: ["x"] },
    targets: [
      { ...target, transform: "(" },
      { ...target, id: "u", transform: "{" },
    ],
  };
  const result = checkRule("b", definition, options);
  assert.deepEqual(
    result.problems.map((p) => [p.pointer, p.code]),
    [
      ["/targets/0/transform", "InvalidTransform"],
      ["/targets/1/transform", "InvalidTransform"],
    ],
  );
});

test("rules compile - compiled rules and targets are frozen", () => {
  const rule = compile({ source: ["x"] });
  assert.equal(Object.isFrozen(rule), true);
  assert.equal(Object.isFrozen(rule.targets), true);
  assert.equal(Object.isFrozen(rule.targets[0]), true);
});

test("rules compile - dotted pattern paths resolve against keys that hold dots", () => {
  const pattern = { "detail.total": [{ numeric: [">"] }], detail: { a: { b: [1] } } };
  assert.deepEqual(resolveDottedPath(pattern, "detail.total[0].numeric"), [
    "detail.total",
    0,
    "numeric",
  ]);
  assert.deepEqual(resolveDottedPath(pattern, "detail.a.b[0]"), ["detail", "a", "b", 0]);
  assert.deepEqual(resolveDottedPath(pattern, "detail.zzz"), ["detail", "zzz"]);
  assert.deepEqual(resolveDottedPath(pattern, ""), []);
});

test("compile rule - retry.delaysMs resolves into the target's policy; a bad list names the field", () => {
  const rule = compileRule(
    "default",
    { name: "listed", pattern: { source: ["s"] }, targets: [{ id: "t", webhook: { url: "https://example.com/h" }, retry: { delaysMs: [100, 2000] } }] },
    { config: DEFAULT_CONFIG, origin: { kind: "api" } },
  );
  assert.deepEqual(rule.targets[0]!.retry.delaysMs, [100, 2000]);
  assert.throws(
    () =>
      compileRule(
        "default",
        { name: "bad", pattern: { source: ["s"] }, targets: [{ id: "t", webhook: { url: "https://example.com/h" }, retry: { delaysMs: [] } }] },
        { config: DEFAULT_CONFIG, origin: { kind: "api" } },
      ),
    /delaysMs/,
  );
});
