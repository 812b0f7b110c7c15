// The explanation of a pattern against an event: its verdict is the reference matcher's on
// every recorded EventBridge case and on random inputs, and each kind of failure reads as
// documented (the messages are part of what people and the CLI see, so they are pinned).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import fc from "fast-check";
import JSON5 from "json5";
import {
  explainEventPattern,
  formatPatternExplanation,
  matcherJson,
  type AlternativeExplanation,
  type PatternExplanation,
} from "../../src/patterns/explain-pattern.js";
import { parseEventPattern } from "../../src/patterns/parse-pattern.js";
import { matchesEventPattern, valueMatches } from "../../src/patterns/reference-matcher.js";

const explain = (pattern: unknown, event: unknown): PatternExplanation =>
  explainEventPattern(parseEventPattern(pattern), event);

/** The one alternative of a pattern without `$or`. */
function only(explanation: PatternExplanation): AlternativeExplanation {
  assert.equal(explanation.alternatives.length, 1);
  return explanation.alternatives[0]!;
}

function fieldsOf(alternative: AlternativeExplanation) {
  assert.equal(alternative.match, true, JSON.stringify(alternative));
  return alternative.match ? alternative.fields : [];
}

function failuresOf(alternative: AlternativeExplanation) {
  assert.equal(alternative.match, false, JSON.stringify(alternative));
  return alternative.match ? [] : alternative.failures;
}

/**
 * What every explanation must satisfy whatever the input: the verdict is the reference
 * matcher's, a matching alternative accounts for every field with a leaf its matcher really
 * accepts, and a failing one names at least one field of its own.
 */
function assertCoherent(pattern: unknown, event: unknown): PatternExplanation {
  const parsed = parseEventPattern(pattern);
  const explanation = explainEventPattern(parsed, event);
  const where = `${JSON.stringify(pattern)} on ${JSON.stringify(event)}`;
  assert.equal(explanation.match, matchesEventPattern(parsed, event), `verdict: ${where}`);
  assert.equal(explanation.alternatives.length, parsed.alternatives.length, where);
  assert.equal(
    explanation.matchedAlternative,
    explanation.alternatives.find((a) => a.match)?.index,
    where,
  );
  explanation.alternatives.forEach((alternative, index) => {
    const conditions = parsed.alternatives[index]!;
    assert.equal(alternative.index, index);
    assert.deepEqual(
      Object.keys(alternative.pattern),
      conditions.map((c) => c.path),
      where,
    );
    if (alternative.match) {
      assert.deepEqual(
        alternative.fields.map((f) => f.path),
        conditions.map((c) => c.path),
        where,
      );
      alternative.fields.forEach((field, i) => {
        if (field.result !== "value") return;
        const accepting = conditions[i]!.matchers.filter((m) => valueMatches(m, field.value));
        assert.ok(
          accepting.length > 0,
          `${field.path} picked a value no matcher accepts: ${where}`,
        );
        assert.deepEqual(field.matchedBy, matcherJson(accepting[0]!), where);
      });
    } else {
      assert.ok(
        alternative.failures.length > 0,
        `a failed alternative names its failure: ${where}`,
      );
      const paths = conditions.map((c) => c.path);
      for (const failure of alternative.failures) {
        assert.ok(
          paths.includes(failure.path),
          `${failure.path} is a field of the alternative: ${where}`,
        );
        assert.ok(failure.message.startsWith(`${failure.path}: `), failure.message);
      }
    }
  });
  return explanation;
}

// ---- The recorded EventBridge answers, read where they live (as the conformance test does).

const casesDir = new URL("../../../shared/conformance/eventbridge-patterns/", import.meta.url);
const readCase = (name: string): unknown =>
  JSON5.parse(readFileSync(new URL(name, casesDir), "utf8"));
const caseFiles = readdirSync(casesDir)
  .filter((name) => name.endsWith(".json5") && !name.endsWith("_EXC.json5"))
  .sort();

test("patterns explain - agrees with the reference matcher and EventBridge on every recorded case", () => {
  assert.ok(caseFiles.length >= 100, `case files found: ${caseFiles.length}`);
  let matched = 0;
  for (const name of caseFiles) {
    const { Event, EventPattern } = readCase(name) as { Event: unknown; EventPattern: unknown };
    const explanation = assertCoherent(EventPattern, Event);
    assert.equal(explanation.match, !name.endsWith("_NEG.json5"), name);
    if (explanation.match) matched++;
  }
  assert.ok(matched > 0 && matched < caseFiles.length, "both outcomes are among the cases");
  // The two-file pair (a pattern with a duplicated key, which EventBridge matched).
  const pair = assertCoherent(
    readCase("complex_multi_key_event_pattern.json"),
    readCase("complex_multi_key_event.json"),
  );
  assert.equal(pair.match, true);
});

// ---- Random patterns and events.

const key = fc.constantFrom("a", "b", "a.b");
const scalar = fc.constantFrom<unknown>(null, "", "x", "X", "xy", 0, -1, 2.5, true, "10.0.0.1");
const matcher = fc.oneof(
  { weight: 3, arbitrary: fc.boolean().map((exists) => ({ exists })) },
  { weight: 3, arbitrary: scalar },
  {
    weight: 2,
    arbitrary: fc.constantFrom<unknown>(
      { prefix: "x" },
      { suffix: { "equals-ignore-case": "Y" } },
      { "equals-ignore-case": "x" },
      { wildcard: "x*" },
      { numeric: [">", 0, "<=", 2.5] },
      { numeric: ["=", -1] },
      { cidr: "10.0.0.0/8" },
      { "anything-but": [0, 2.5] },
      { "anything-but": "x" },
      { "anything-but": { prefix: "x" } },
      { "anything-but": { suffix: ["y", "z"] } },
      { "anything-but": { "equals-ignore-case": "X" } },
      { "anything-but": { wildcard: "*y" } },
      // Relaybus' own operators.
      { $and: [{ prefix: "x" }, { "anything-but": "xy" }] },
      { contains: "y" },
      { regex: "x.?" },
      { wildcard: { "equals-ignore-case": "X*" } },
      { "anything-but": { wildcard: { "equals-ignore-case": ["*Y", "1*"] } } },
    ),
  },
);
const { pattern } = fc.letrec((tie) => ({
  pattern: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.dictionary(
      key,
      fc.oneof(
        { weight: 3, arbitrary: fc.array(matcher, { minLength: 1, maxLength: 2 }) },
        { weight: 1, arbitrary: tie("pattern") },
      ),
      { minKeys: 1, maxKeys: 3 },
    ),
    fc
      .tuple(
        fc.dictionary(key, fc.array(matcher, { minLength: 1, maxLength: 2 }), { maxKeys: 2 }),
        fc.array(tie("pattern"), { minLength: 2, maxLength: 3 }),
      )
      .map(([fields, branches]) => ({ ...fields, $or: branches })),
  ),
}));
const { event } = fc.letrec((tie) => ({
  event: fc.dictionary(key, tie("value"), { minKeys: 0, maxKeys: 3 }),
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 2, arbitrary: scalar },
    { weight: 2, arbitrary: fc.array(tie("value"), { maxLength: 3 }) },
    { weight: 1, arbitrary: tie("event") },
  ),
}));

test("patterns explain - property: the verdict is the reference matcher's, and the explanation accounts for it", () => {
  const tally = { checked: 0, matched: 0, reasons: new Set<string>() };
  fc.assert(
    fc.property(pattern, fc.array(event, { minLength: 1, maxLength: 4 }), (json, events) => {
      try {
        parseEventPattern(json);
      } catch {
        return; // generated something EventBridge rejects (a reserved name inside $or)
      }
      for (const e of events) {
        const explanation = assertCoherent(json, e);
        tally.checked++;
        if (explanation.match) tally.matched++;
        for (const a of explanation.alternatives) {
          if (!a.match) for (const f of a.failures) tally.reasons.add(f.reason);
        }
      }
    }),
    { numRuns: 2500 },
  );
  assert.ok(tally.matched > tally.checked / 20, `matches: ${tally.matched} of ${tally.checked}`);
  assert.ok(tally.matched < tally.checked - tally.checked / 20, `non-matches of ${tally.checked}`);
  assert.deepEqual(
    [...tally.reasons].sort(),
    ["array-consistency", "missing", "no-match", "present"],
    "every kind of failure came up",
  );
});

test("patterns explain - property: each matcher is named in pattern syntax that parses back to it", () => {
  fc.assert(
    fc.property(matcher, (json) => {
      const parsed = parseEventPattern({ f: [json] });
      const original = parsed.alternatives[0]![0]!.matchers[0]!;
      const again = parseEventPattern({ f: [matcherJson(original)] });
      assert.deepEqual(again.alternatives[0]![0]!.matchers[0], original);
    }),
    { numRuns: 300 },
  );
});

// ---- Each kind of answer, as people read it.

test("patterns explain - a match names the leaf each field picked, with its place and matcher", () => {
  const explanation = explain(
    {
      source: ["shop.orders"],
      detail: { items: { sku: [{ prefix: "b-" }] }, gone: [{ exists: false }] },
    },
    { source: "shop.orders", detail: { items: [{ sku: "a-1" }, { sku: "b-2" }] } },
  );
  assert.equal(explanation.match, true);
  assert.equal(explanation.matchedAlternative, 0);
  assert.equal(explanation.summary, "match");
  assert.deepEqual(only(explanation), {
    index: 0,
    pattern: {
      source: ["shop.orders"],
      "detail.items.sku": [{ prefix: "b-" }],
      "detail.gone": [{ exists: false }],
    },
    match: true,
    fields: [
      {
        path: "source",
        result: "value",
        value: "shop.orders",
        at: "source",
        matchedBy: "shop.orders",
      },
      {
        path: "detail.items.sku",
        result: "value",
        value: "b-2",
        at: "detail.items[1].sku",
        matchedBy: { prefix: "b-" },
      },
      { path: "detail.gone", result: "absent" },
    ],
  });
});

test("patterns explain - missing: no value at the path", () => {
  const explanation = explain({ detail: { total: [{ numeric: [">", 100] }] } }, { detail: {} });
  assert.deepEqual(failuresOf(only(explanation)), [
    {
      path: "detail.total",
      reason: "missing",
      message: 'detail.total: no value at this path, and [{"numeric":[">",100]}] needs one',
      found: [],
      picked: [],
    },
  ]);
  assert.equal(explanation.summary, `no match: ${failuresOf(only(explanation))[0]!.message}`);
});

test("patterns explain - no-match: the values found, and the matchers none of them passed", () => {
  const explanation = explain(
    { source: ["shop.orders"], detail: { total: [{ numeric: [">", 100] }, 7] } },
    { source: "shop.orders", detail: { total: [50, "300"] } },
  );
  assert.deepEqual(failuresOf(only(explanation)), [
    {
      path: "detail.total",
      reason: "no-match",
      message:
        'detail.total: found 50 (at detail.total[0]), "300" (at detail.total[1]); none passed [{"numeric":[">",100]},7]',
      found: [
        { value: 50, at: "detail.total[0]" },
        { value: "300", at: "detail.total[1]" },
      ],
      picked: [],
    },
  ]);
});

test("patterns explain - Relaybus' own operators are named in their pattern syntax", () => {
  const explanation = explain(
    { detail: { sku: [{ $and: [{ prefix: "b-" }, { contains: "7" }] }, { regex: "a-[0-9]+" }] } },
    { detail: { sku: "b-123" } },
  );
  assert.deepEqual(
    failuresOf(only(explanation)).map((f) => f.message),
    [
      'detail.sku: found "b-123"; none passed [{"$and":[{"prefix":"b-"},{"contains":"7"}]},{"regex":"a-[0-9]+"}]',
    ],
  );
  const matched = explain({ sku: [{ wildcard: { "equals-ignore-case": "B-*" } }] }, { sku: "b-1" });
  assert.deepEqual(fieldsOf(only(matched)), [
    {
      path: "sku",
      result: "value",
      value: "b-1",
      at: "sku",
      matchedBy: { wildcard: { "equals-ignore-case": "B-*" } },
    },
  ]);
});

test("patterns explain - every field that fails on its own is named, in pattern order", () => {
  const explanation = explain(
    { source: ["a"], type: ["t"], detail: { x: [{ exists: true }] } },
    { source: "b", type: "t" },
  );
  assert.deepEqual(
    failuresOf(only(explanation)).map((f) => [f.path, f.reason]),
    [
      ["source", "no-match"],
      ["detail.x", "missing"],
    ],
  );
});

test("patterns explain - present: exists: false, but a value is there", () => {
  const explanation = explain(
    { detail: { error: [{ exists: false }] } },
    { detail: { error: null } },
  );
  assert.deepEqual(failuresOf(only(explanation)), [
    {
      path: "detail.error",
      reason: "present",
      message: 'detail.error: {"exists":false} needs no value here, but found null',
      found: [{ value: null, at: "detail.error" }],
      picked: [],
    },
  ]);
});

test("patterns explain - present in the array element the other fields picked", () => {
  const explanation = explain(
    { a: { b: [1], c: [{ exists: false }] } },
    { a: [{ b: 1, c: 2 }, { b: 3 }] },
  );
  assert.deepEqual(failuresOf(only(explanation)), [
    {
      path: "a.c",
      reason: "present",
      message: `a.c: {"exists":false} needs no value here, but found 2 (at a[0].c) in the same array element as a.b's 1 (at a[0].b)`,
      found: [{ value: 2, at: "a[0].c" }],
      picked: [{ path: "a.b", value: 1, at: "a[0].b" }],
    },
  ]);
  // The same value in another element than the picked one is outside the slice: a match.
  const elsewhere = explain({ a: { b: [1], c: [{ exists: false }] } }, { a: [{ b: 1 }, { c: 2 }] });
  assert.equal(elsewhere.match, true);
  assert.deepEqual(fieldsOf(only(elsewhere)), [
    { path: "a.b", result: "value", value: 1, at: "a[0].b", matchedBy: 1 },
    { path: "a.c", result: "absent" },
  ]);
});

test("patterns explain - array-consistency: leaves found only in different elements of one array", () => {
  const explanation = explain(
    { detail: { items: { sku: ["x"], qty: [{ numeric: [">=", 3] }] } } },
    {
      detail: {
        items: [
          { sku: "x", qty: 1 },
          { sku: "y", qty: 3 },
        ],
      },
    },
  );
  assert.deepEqual(failuresOf(only(explanation)), [
    {
      path: "detail.items.qty",
      reason: "array-consistency",
      message:
        "detail.items.qty: 3 (at detail.items[1].qty) passed, but in a different element of detail.items " +
        `than detail.items.sku's "x" (at detail.items[0].sku); fields under one array must come from the same element`,
      found: [{ value: 3, at: "detail.items[1].qty" }],
      picked: [{ path: "detail.items.sku", value: "x", at: "detail.items[0].sku" }],
    },
  ]);
  // The matchers alone would pass: it is the combination that fails.
  assert.equal(
    matchesEventPattern(parseEventPattern({ detail: { items: { qty: [3] } } }), {
      detail: { items: [{ qty: 3 }] },
    }),
    true,
  );
});

test("patterns explain - $or: each alternative is explained, and the first that matched is named", () => {
  const pattern = {
    source: ["shop"],
    $or: [{ type: ["a"] }, { detail: { n: [{ numeric: [">", 1] }] } }],
  };
  const no = explain(pattern, { source: "shop", type: "b", detail: { n: 0 } });
  assert.equal(no.match, false);
  assert.equal(no.matchedAlternative, undefined);
  assert.equal(no.summary, "no match: none of the 2 alternatives matched");
  assert.deepEqual(
    no.alternatives.map((a) => [a.pattern, a.match ? [] : a.failures.map((f) => f.message)]),
    [
      [{ source: ["shop"], type: ["a"] }, ['type: found "b"; none passed ["a"]']],
      [
        { source: ["shop"], "detail.n": [{ numeric: [">", 1] }] },
        ['detail.n: found 0; none passed [{"numeric":[">",1]}]'],
      ],
    ],
  );
  const yes = explain(pattern, { source: "shop", type: "b", detail: { n: 2 } });
  assert.equal(yes.match, true);
  assert.equal(yes.matchedAlternative, 1);
  assert.equal(yes.summary, "match: alternative #1 of 2 matched");
  assert.deepEqual(
    yes.alternatives.map((a) => a.match),
    [false, true],
  );
});

test("patterns explain - the same input gives the same explanation, and an event that is not an object has no fields", () => {
  const pattern = { a: [{ exists: true }], b: [{ "anything-but": "x" }] };
  const event = { a: [1, 2], b: ["x", "y"] };
  assert.deepEqual(explain(pattern, event), explain(pattern, event));
  for (const notAnObject of [null, 3, "text", [{ a: 1 }]]) {
    assert.deepEqual(
      failuresOf(only(explain({ a: [{ exists: true }] }, notAnObject))).map((f) => f.reason),
      ["missing"],
    );
  }
});

test("patterns explain - formatPatternExplanation prints one line per alternative and field", () => {
  const text = formatPatternExplanation(
    explain(
      {
        $or: [{ source: ["a"] }, { detail: { items: { sku: ["x"] }, gone: [{ exists: false }] } }],
      },
      { source: "b", detail: { items: [{ sku: "y" }, { sku: "x" }] } },
    ),
  );
  assert.equal(
    text,
    [
      "match",
      'alternative #0 {"source":["a"]}: no match',
      '  - source: found "b"; none passed ["a"]',
      'alternative #1 {"detail.items.sku":["x"],"detail.gone":[{"exists":false}]}: match',
      '  - detail.items.sku: "x" (at detail.items[1].sku) passed "x"',
      '  - detail.gone: no value, as {"exists":false} asks',
    ].join("\n"),
  );
});

test("patterns explain - relaybus pattern test --explain prints the explanation, exit status as without", () => {
  const entry = new URL("../../src/cli/run.ts", import.meta.url).pathname;
  const run = (...args: string[]) =>
    spawnSync(process.execPath, ["--import", "tsx", entry, "pattern", "test", ...args], {
      encoding: "utf8",
    });
  const pattern = JSON.stringify({
    source: ["shop"],
    detail: { total: [{ numeric: [">", 100] }] },
  });
  const no = run(
    "--explain",
    "--pattern",
    pattern,
    "--event",
    JSON.stringify({ source: "shop", detail: { total: 5 } }),
  );
  assert.equal(no.status, 1, no.stderr);
  assert.equal(
    no.stdout,
    [
      "no match",
      'alternative #0 {"source":["shop"],"detail.total":[{"numeric":[">",100]}]}: no match',
      '  - detail.total: found 5; none passed [{"numeric":[">",100]}]',
      "",
    ].join("\n"),
  );
  const yes = run(
    "--explain",
    "--pattern",
    pattern,
    "--event",
    JSON.stringify({ source: "shop", detail: { total: 500 } }),
  );
  assert.equal(yes.status, 0, yes.stderr);
  assert.match(
    yes.stdout,
    /^match\n.*\n {2}- source: "shop" passed "shop"\n {2}- detail\.total: 500 passed \{"numeric":\[">",100\]\}\n$/,
  );
  const plain = run(
    "--pattern",
    pattern,
    "--event",
    JSON.stringify({ source: "shop", detail: { total: 500 } }),
  );
  assert.equal(plain.stdout, "match\n", "without --explain the output is unchanged");
});
