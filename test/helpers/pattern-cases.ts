// Runs (pattern, event, expected) cases through every matcher: the reference definition,
// the per-pattern compiled matcher and the bus-wide machine, which must all agree.
import assert from "node:assert/strict";
import { compileEventPattern } from "../../src/patterns/compile-pattern.js";
import { parseEventPattern } from "../../src/patterns/parse-pattern.js";
import { buildPatternMachine } from "../../src/patterns/pattern-machine.js";
import { matchesEventPattern } from "../../src/patterns/reference-matcher.js";

export type PatternCase = readonly [pattern: object, event: unknown, expected: boolean];

export function checkAllMatchers(cases: readonly PatternCase[]): void {
  for (const [pattern, event, expected] of cases) {
    const parsed = parseEventPattern(pattern);
    const label = `${JSON.stringify(pattern)} on ${JSON.stringify(event)}`;
    assert.equal(matchesEventPattern(parsed, event), expected, `reference: ${label}`);
    assert.equal(compileEventPattern(parsed).matches(event), expected, `compiled: ${label}`);
    const machine = buildPatternMachine([{ key: "p", pattern: parsed }]);
    assert.deepEqual(machine.match(event), expected ? ["p"] : [], `machine: ${label}`);
  }
}
