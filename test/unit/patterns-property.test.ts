// Property: the compiled matcher agrees with the reference matcher on random patterns and
// events. The vocabulary is small on purpose (few keys, values that operators care about), so
// that matches, near-misses, arrays of objects and dotted keys all come up often.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { compileEventPattern } from "../../src/patterns/compile-pattern.js";
import { parseEventPattern } from "../../src/patterns/parse-pattern.js";
import { matchesEventPattern } from "../../src/patterns/reference-matcher.js";

const key = fc.constantFrom("a", "b", "c", "a.b");
const text = fc.constantFrom("", "x", "X", "xy", "yx", "xay", "Straße", "10.0.0.1", "10.0.0.300", "::ffff:a00:1", "2001:db8::1");
const number = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(0.5, 2.25, 1e10, 0.1234567, -0));
const scalar = fc.oneof(text, number, fc.boolean(), fc.constant(null));

const wildcardText = fc.constantFrom("*", "x*", "*y", "x*y", "", "\\*", "*a*", "x*a*y");
const numeric = fc.constantFrom<unknown[]>(["<", 0], [">", 0, "<=", 2.25], [">=", -3, "<", 3], ["=", 0.5], [">", 1e9]);
const matcher = fc.oneof(
  { weight: 3, arbitrary: scalar },
  { weight: 1, arbitrary: text.map((t) => ({ prefix: t })) },
  { weight: 1, arbitrary: text.map((t) => ({ suffix: t })) },
  { weight: 1, arbitrary: text.map((t) => ({ prefix: { "equals-ignore-case": t } })) },
  { weight: 1, arbitrary: text.map((t) => ({ suffix: { "equals-ignore-case": t } })) },
  { weight: 1, arbitrary: text.map((t) => ({ "equals-ignore-case": t })) },
  { weight: 1, arbitrary: wildcardText.map((w) => ({ wildcard: w })) },
  { weight: 1, arbitrary: numeric.map((n) => ({ numeric: n })) },
  { weight: 2, arbitrary: fc.boolean().map((e) => ({ exists: e })) },
  { weight: 1, arbitrary: fc.constantFrom("10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0").map((c) => ({ cidr: c })) },
  { weight: 1, arbitrary: fc.oneof(text, fc.array(text, { minLength: 1, maxLength: 2 })).map((v) => ({ "anything-but": v })) },
  { weight: 1, arbitrary: fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 1, maxLength: 2 }).map((v) => ({ "anything-but": v })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom("prefix", "suffix", "equals-ignore-case", "wildcard"), fc.constantFrom("x", "y", "X", "x*"))
      .map(([form, value]) => ({ "anything-but": { [form]: form === "wildcard" ? value : value.replace("*", "") } })),
  },
);
const values = fc.array(matcher, { minLength: 1, maxLength: 3 });

const { pattern } = fc.letrec((tie) => ({
  pattern: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.dictionary(key, fc.oneof({ weight: 3, arbitrary: values }, { weight: 1, arbitrary: tie("pattern") }), { minKeys: 1, maxKeys: 3 }),
    fc.tuple(
      fc.dictionary(key, values, { minKeys: 0, maxKeys: 2 }),
      fc.array(tie("pattern"), { minLength: 2, maxLength: 3 }),
    ).map(([fields, branches]) => ({ ...fields, $or: branches })),
  ),
}));

const { event } = fc.letrec((tie) => ({
  event: fc.dictionary(key, tie("value"), { minKeys: 0, maxKeys: 4 }),
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("value"), { maxLength: 3 }),
    tie("event"),
  ),
}));

test("patterns property - compiled and reference matchers agree on random patterns and events", () => {
  let checked = 0;
  let matched = 0;
  fc.assert(
    fc.property(pattern, fc.array(event, { minLength: 1, maxLength: 5 }), (json, events) => {
      let parsed;
      try {
        parsed = parseEventPattern(json);
      } catch {
        return; // generated something EventBridge rejects (e.g. a reserved name inside $or)
      }
      const compiled = compileEventPattern(parsed);
      for (const e of events) {
        const expected = matchesEventPattern(parsed, e);
        assert.equal(compiled.matches(e), expected, `${JSON.stringify(json)} on ${JSON.stringify(e)}`);
        checked++;
        if (expected) matched++;
      }
    }),
    { numRuns: 3000 },
  );
  // The property only means something if both outcomes came up often enough.
  assert.ok(matched > checked / 20, `matches: ${matched} of ${checked}`);
  assert.ok(matched < checked - checked / 20, `non-matches: ${checked - matched} of ${checked}`);
});
