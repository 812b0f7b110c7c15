// Array-consistent matching must stay polynomial: conditions under sibling arrays do not
// constrain each other, so a pattern over four arrays of 300 elements is 4 x 300 checks, not
// 300^4 combinations. The answers are checked by construction here (the reference matcher,
// which tries every combination, would not finish); agreement with the reference on small
// inputs is what the property tests hold it to.
import assert from "node:assert/strict";
import { test } from "node:test";
import { compileEventPattern } from "../../src/patterns/compile-pattern.js";
import { parseEventPattern } from "../../src/patterns/parse-pattern.js";
import { buildPatternMachine } from "../../src/patterns/pattern-machine.js";

// Written so that a search in field order picks an x in every array before any y.
const pattern = parseEventPattern({
  "a.x": [1], "b.x": [1], "c.x": [1], "d.x": [1],
  "a.y": [1], "b.y": [1], "c.y": [1], "d.y": [1],
});

function arrays(goodIn: readonly string[]): Record<string, unknown> {
  const event: Record<string, unknown> = {};
  for (const name of ["a", "b", "c", "d"]) {
    const items = Array.from({ length: 300 }, () => ({ x: 1, y: 0 }));
    // One element with both fields right, last, where a search meets it after all the others.
    if (goodIn.includes(name)) items.push({ x: 1, y: 1 });
    event[name] = items;
  }
  return event;
}

test("consistent choice - four sibling arrays of 300 elements: decided at once, both ways", () => {
  const compiled = compileEventPattern(pattern);
  const machine = buildPatternMachine([{ key: "p", pattern }]);
  const started = performance.now();
  assert.equal(compiled.matches(arrays(["a", "b", "c", "d"])), true);
  assert.equal(compiled.matches(arrays(["a", "b", "c"])), false, "d has no element with x and y");
  assert.deepEqual(machine.match(arrays(["a", "b", "c", "d"])), ["p"]);
  assert.deepEqual(machine.match(arrays(["b", "c", "d"])), []);
  // A guard against blow-up, not a speed test: the combinations would take hours.
  assert.ok(performance.now() - started < 5000, `${Math.round(performance.now() - started)} ms`);
});

test("consistent choice - exists: false inside an array is kept out by the element another field picks", () => {
  const absent = parseEventPattern({ "items.sku": ["x"], "items.gift": [{ exists: false }] });
  const compiled = compileEventPattern(absent);
  const items = Array.from({ length: 500 }, () => ({ sku: "y", gift: true }));
  assert.equal(compiled.matches({ items }), false, "no x at all");
  assert.equal(compiled.matches({ items: [...items, { sku: "x", gift: true }] }), false, "the x has a gift");
  assert.equal(compiled.matches({ items: [...items, { sku: "x" }] }), true, "the x has none; the others' gifts are out of the slice");
});
