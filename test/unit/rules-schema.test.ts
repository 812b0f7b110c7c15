import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  validateRuleDefinitionShape,
  validateRuleFileShape,
} from "../../src/rules/validate-rule.js";
import { ruleSchemaText } from "../../scripts/write-rule-schema.js";

const target = { id: "hook", webhook: { url: "https://example.com/hook" } };
const rule = { name: "big-orders", pattern: { source: ["shop"] }, targets: [target] };

function messages(problems: { pointer: string; message: string }[]): string[] {
  return problems.map((p) => `${p.pointer}: ${p.message}`);
}

test("rules schema - the committed rules/schema.json is the generated one", () => {
  assert.equal(
    readFileSync("rules/schema.json", "utf8"),
    ruleSchemaText(),
    "rules/schema.json is stale: run npx tsx scripts/write-rule-schema.ts",
  );
});

test("rules schema - a well-formed file and rule pass", () => {
  assert.deepEqual(validateRuleFileShape({ bus: "orders", description: "d", rules: [rule] }), []);
  assert.deepEqual(validateRuleFileShape({ bus: "orders" }), []);
  assert.deepEqual(validateRuleDefinitionShape(rule), []);
});

test("rules schema - unknown keys are refused with the allowed ones", () => {
  assert.deepEqual(messages(validateRuleFileShape({ bus: "orders", rulez: [] })), [
    '/rulez: unknown key "rulez" (expected one of: bus, description, system, rules, connections, streams, schedules)',
  ]);
  const problems = messages(
    validateRuleDefinitionShape({ ...rule, targets: [{ ...target, retries: 3 }] }),
  );
  assert.deepEqual(problems, [
    '/targets/0/retries: unknown key "retries" (expected one of: id, webhook, format, transform, retry, signing, pacing, connection)',
  ]);
});

test("rules schema - names must be 1 to 64 safe characters", () => {
  assert.match(
    messages(validateRuleFileShape({ bus: "my bus" })).join("\n"),
    /^\/bus: must be 1 to 64 letters/,
  );
  assert.equal(validateRuleDefinitionShape({ ...rule, name: "x".repeat(64) }).length, 0);
  assert.equal(validateRuleDefinitionShape({ ...rule, name: "x".repeat(65) }).length, 1);
});

test("rules schema - at most 100 targets in the shape (limits.maxTargetsPerRule is checked at compile)", () => {
  const targets = (n: number) => Array.from({ length: n }, (_, i) => ({ ...target, id: `t${i}` }));
  assert.deepEqual(validateRuleDefinitionShape({ ...rule, targets: targets(100) }), []);
  assert.deepEqual(messages(validateRuleDefinitionShape({ ...rule, targets: targets(101) })), [
    "/targets: at most 100 targets, got 101",
  ]);
});

test("rules schema - target ids are unique within a rule", () => {
  const problems = validateRuleFileShape({
    bus: "b",
    rules: [{ ...rule, targets: [target, target] }],
  });
  assert.deepEqual(messages(problems), [
    '/rules/0/targets/1/id: duplicate target id "hook" (first at /rules/0/targets/0); target ids are unique within a rule',
  ]);
});

test("rules schema - format transform requires a transform, and a transform requires that format", () => {
  assert.deepEqual(
    messages(
      validateRuleDefinitionShape({ ...rule, targets: [{ ...target, format: "transform" }] }),
    ),
    ['/targets/0/format: format "transform" needs a "transform" expression'],
  );
  assert.match(
    messages(
      validateRuleDefinitionShape({
        ...rule,
        targets: [{ ...target, format: "data", transform: "data" }],
      }),
    ).join(),
    /^\/targets\/0\/transform: a transform is only used with format "transform"/,
  );
  assert.deepEqual(
    validateRuleDefinitionShape({ ...rule, targets: [{ ...target, transform: "data" }] }),
    [],
  );
});

test("rules schema - webhook urls are http or https", () => {
  const withUrl = (url: string) =>
    validateRuleDefinitionShape({ ...rule, targets: [{ ...target, webhook: { url } }] });
  assert.deepEqual(withUrl("http://127.0.0.1:9000/"), []);
  assert.deepEqual(messages(withUrl("ftp://example.com/")), [
    '/targets/0/webhook/url: must be an http or https URL, got "ftp://example.com/"',
  ]);
  assert.equal(withUrl("https://").length, 1);
});

test("rules schema - retry bounds follow the model", () => {
  const withRetry = (retry: object) =>
    validateRuleDefinitionShape({ ...rule, targets: [{ ...target, retry }] });
  assert.deepEqual(withRetry({ maxAttempts: 1, maxAgeSeconds: 60 }), []);
  assert.deepEqual(withRetry({ maxAttempts: 185, maxAgeSeconds: 86_400 }), []);
  assert.deepEqual(messages(withRetry({ maxAttempts: 186 })), [
    "/targets/0/retry/maxAttempts: must be <= 185, got 186",
  ]);
  assert.deepEqual(messages(withRetry({ maxAgeSeconds: 59 })), [
    "/targets/0/retry/maxAgeSeconds: must be >= 60, got 59",
  ]);
  assert.equal(withRetry({ maxAttempts: 0 }).length, 1);
  assert.equal(withRetry({ factor: 0.5 }).length, 1);
});

test("rules schema - missing and mistyped fields name themselves", () => {
  assert.deepEqual(messages(validateRuleDefinitionShape({ name: "r" })), [
    ': missing required key "pattern"',
  ]);
  assert.deepEqual(messages(validateRuleDefinitionShape({ ...rule, pattern: ["x"] })), [
    "/pattern: must be object, got array",
  ]);
  assert.deepEqual(messages(validateRuleDefinitionShape({ ...rule, enabled: "yes" })), [
    '/enabled: must be boolean, got string "yes"',
  ]);
});
