// The fan-out estimate decides which condition of a pattern the machine looks up first. It
// must rank a tenant's own id, prefix or id range as narrow and a shared source, a short
// prefix or an open threshold as wide, from the patterns alone.
import assert from "node:assert/strict";
import { test } from "node:test";
import { matcherKey } from "../../src/patterns/machine-states.js";
import { parseEventPattern } from "../../src/patterns/parse-pattern.js";
import { estimateStepFanOut, stepKey } from "../../src/patterns/step-fan-out.js";

function fanOutOf(patterns: object[]) {
  const alternatives = patterns.flatMap((p) => parseEventPattern(p).alternatives);
  const fanOut = estimateStepFanOut(alternatives, matcherKey);
  return (path: string, json: object) => {
    const matcher = parseEventPattern({ [path]: [json] }).alternatives[0]![0]!.matchers[0]!;
    return fanOut.get(stepKey(path, matcherKey(matcher)));
  };
}

test("step fan-out - exact values count the alternatives sharing them", () => {
  const patterns = [{ source: ["shop"], tenant: ["t-1"] }, { source: ["shop"], tenant: ["t-2"] }, { source: ["shop", "billing"] }];
  const alternatives = patterns.flatMap((p) => parseEventPattern(p).alternatives);
  const fanOut = estimateStepFanOut(alternatives, matcherKey);
  const exact = (path: string, value: string) => {
    const condition = parseEventPattern({ [path]: [value] }).alternatives[0]![0]!;
    return fanOut.get(stepKey(path, matcherKey(condition.matchers[0]!)));
  };
  assert.equal(exact("source", "shop"), 3);
  assert.equal(exact("source", "billing"), 1);
  assert.equal(exact("tenant", "t-1"), 1);
  assert.equal(exact("tenant", "t-9"), undefined, "a step no pattern holds has no estimate");
});

test("step fan-out - a prefix counts every prefix of it on the path, itself included", () => {
  const of = fanOutOf([
    { bucket: [{ prefix: "bkt-" }] },
    { bucket: [{ prefix: "bkt-1-" }] },
    { bucket: [{ prefix: "bkt-2-" }] },
    { bucket: [{ prefix: "bkt-1-logs" }] },
    { bucket: [{ wildcard: "bkt-*-logs" }] },
  ]);
  assert.equal(of("bucket", { prefix: "bkt-" }), 2, "itself and the wildcard indexed by bkt-");
  assert.equal(of("bucket", { prefix: "bkt-1-" }), 3);
  assert.equal(of("bucket", { prefix: "bkt-1-logs" }), 4);
  assert.equal(of("bucket", { wildcard: "bkt-*-logs" }), 2);
});

test("step fan-out - a range counts the ranges that overlap it", () => {
  const tenants = Array.from({ length: 20 }, (_, i) => ({ id: [{ numeric: [">=", i * 100, "<", i * 100 + 100] }] }));
  const thresholds = Array.from({ length: 20 }, (_, i) => ({ id: [{ numeric: [">", i * 100] }] }));
  const of = fanOutOf([...tenants, ...thresholds]);
  // Itself, its two neighbours (the estimate counts touching bounds: it ignores whether a bound
  // is inclusive) and the 7 thresholds at or below 600 (> 0 ... > 600).
  assert.equal(of("id", { numeric: [">=", 500, "<", 600] }), 10);
  // Every threshold, and every tenant range above 0.
  assert.equal(of("id", { numeric: [">", 0] }), 40);
  const narrow = of("id", { numeric: [">=", 1900, "<", 2000] })!;
  const open = of("id", { numeric: [">", 1000] })!;
  assert.ok(narrow < open, `tenant range ${narrow} narrower than threshold ${open}`);
  const blocks = fanOutOf([{ ip: [{ cidr: "10.0.0.0/8" }] }, { ip: [{ cidr: "10.1.0.0/16" }] }, { ip: [{ cidr: "10.2.0.0/16" }] }]);
  assert.equal(blocks("ip", { cidr: "10.1.0.0/16" }), 2, "its own block and the /8 around it");
  assert.equal(blocks("ip", { cidr: "10.0.0.0/8" }), 3, "the /8 holds both /16s");
});
