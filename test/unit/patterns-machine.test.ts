// The bus-wide pattern machine must give, for every event, exactly the patterns the reference
// matcher finds when run on each pattern alone. Random sets of patterns over a small shared
// vocabulary make the machine share states between patterns, fork on lists, meet arrays of
// objects and `exists: false` in arrays (its hand-over to the per-pattern matcher): the cases
// where a machine can go wrong while every pattern alone is right.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { parseEventPattern } from "../../src/patterns/parse-pattern.js";
import { buildPatternMachine, buildPatternMachineAside } from "../../src/patterns/pattern-machine.js";
import type { EventPattern } from "../../src/patterns/pattern-types.js";
import { matchesEventPattern } from "../../src/patterns/reference-matcher.js";

const field = fc.constantFrom("source", "type", "data", "data.a", "data.b", "data.a.b", "resources");
const leafKey = fc.constantFrom("source", "type", "a", "b", "a.b");
const text = fc.constantFrom("", "x", "X", "xa", "ax", "xab", "abx", "ÉTÉ", "été", "10.0.0.1", "10.0.0.300");
const number = fc.oneof(fc.integer({ min: -2, max: 2 }), fc.constantFrom(0.5, 1.25, 7e9));
const scalar = fc.oneof(text, number, fc.boolean(), fc.constant(null));

const matcher = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: text.map((t) => ({ prefix: t })) },
  { weight: 1, arbitrary: text.map((t) => ({ suffix: t })) },
  { weight: 1, arbitrary: text.map((t) => ({ prefix: { "equals-ignore-case": t } })) },
  { weight: 1, arbitrary: text.map((t) => ({ suffix: { "equals-ignore-case": t } })) },
  { weight: 1, arbitrary: text.map((t) => ({ "equals-ignore-case": t })) },
  { weight: 1, arbitrary: fc.constantFrom("x*", "*b", "*a*").map((w) => ({ wildcard: w })) },
  { weight: 1, arbitrary: fc.constantFrom<unknown[]>([">", 0], ["<=", 1.25], ["=", 0.5]).map((n) => ({ numeric: n })) },
  { weight: 3, arbitrary: fc.boolean().map((e) => ({ exists: e })) },
  { weight: 1, arbitrary: fc.constantFrom("10.0.0.0/8").map((c) => ({ cidr: c })) },
  { weight: 1, arbitrary: fc.array(text, { minLength: 1, maxLength: 2 }).map((v) => ({ "anything-but": v })) },
  { weight: 1, arbitrary: fc.constantFrom("x", "a").map((v) => ({ "anything-but": { prefix: v } })) },
  // Relaybus' own operators, which the machine tries one by one.
  { weight: 1, arbitrary: fc.constantFrom("a", "b", "X").map((v) => ({ contains: v })) },
  { weight: 1, arbitrary: fc.constantFrom("x.*", "[a-z]+", "(x|a)b?x?", "\\p{Lu}.*").map((r) => ({ regex: r })) },
  { weight: 1, arbitrary: fc.constantFrom("X*", "*B", "*É*").map((w) => ({ wildcard: { "equals-ignore-case": w } })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom({ prefix: "x" }, { suffix: "b" }), fc.constantFrom({ contains: "a" }, { "anything-but": "xab" }))
      .map((inner) => ({ $and: inner })),
  },
);
const values = fc.array(matcher, { minLength: 1, maxLength: 3 });

/** Flat patterns (fields named with dots, which is legal) plus, sometimes, one `$or`. */
const pattern = fc.oneof(
  { weight: 4, arbitrary: fc.dictionary(field, values, { minKeys: 1, maxKeys: 3 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.dictionary(field, values, { minKeys: 0, maxKeys: 2 }),
        fc.array(fc.dictionary(field, values, { minKeys: 1, maxKeys: 2 }), { minLength: 2, maxLength: 3 }),
      )
      .map(([fields, branches]) => ({ ...fields, $or: branches })),
  },
);

const { event } = fc.letrec((tie) => ({
  event: fc.dictionary(fc.oneof(field, leafKey), tie("value"), { minKeys: 0, maxKeys: 4 }),
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 3, arbitrary: scalar },
    { weight: 1, arbitrary: fc.array(tie("value"), { maxLength: 3 }) },
    { weight: 1, arbitrary: tie("event") },
  ),
}));

function parseAll(jsons: readonly unknown[]): EventPattern[] {
  const parsed: EventPattern[] = [];
  for (const json of jsons) {
    try {
      parsed.push(parseEventPattern(json));
    } catch {
      // generated something EventBridge rejects; leave it out
    }
  }
  return parsed;
}

function expectedKeys(patterns: readonly EventPattern[], event: unknown): number[] {
  return patterns.flatMap((p, index) => (matchesEventPattern(p, event) ? [index] : []));
}

test("pattern machine - finds exactly the patterns the reference matcher finds, on random pattern sets", () => {
  let checked = 0;
  let withMatches = 0;
  let partial = 0;
  fc.assert(
    fc.property(fc.array(pattern, { minLength: 1, maxLength: 8 }), fc.array(event, { minLength: 1, maxLength: 6 }), (jsons, events) => {
      const patterns = parseAll(jsons);
      const machine = buildPatternMachine(patterns.map((p, key) => ({ key, pattern: p })));
      for (const e of events) {
        const expected = expectedKeys(patterns, e);
        assert.deepEqual(machine.match(e), expected, `${JSON.stringify(jsons)} on ${JSON.stringify(e)}`);
        checked++;
        if (expected.length > 0) withMatches++;
        if (expected.length > 0 && expected.length < patterns.length) partial++;
      }
    }),
    { numRuns: 2500 },
  );
  // The property means something only if events matched some, all and none of the patterns.
  assert.ok(withMatches > checked / 10, `events with a match: ${withMatches} of ${checked}`);
  assert.ok(withMatches < checked - checked / 10, `events with no match: ${checked - withMatches} of ${checked}`);
  assert.ok(partial > checked / 20, `events matching some but not all: ${partial} of ${checked}`);
});

test("pattern machine - arrays of objects: fields under one array come from one element", () => {
  const patterns = parseAll([
    { data: { a: { b: ["x"] }, b: ["y"] } },
    { "data.a.b": ["x"], "data.b": [{ exists: false }] },
    { data: { a: [{ exists: false }], b: ["y"] } },
  ]);
  const machine = buildPatternMachine(patterns.map((p, key) => ({ key, pattern: p })));
  const sameElement = { data: [{ a: { b: "x" }, b: "y" }] };
  const differentElements = { data: [{ a: { b: "x" } }, { b: "y" }] };
  for (const e of [sameElement, differentElements, { data: [{ a: { b: "x" } }, { b: null }] }]) {
    assert.deepEqual(machine.match(e), expectedKeys(patterns, e), JSON.stringify(e));
  }
  // data.a is an object, never a leaf, so `exists: false` on it holds wherever data.b is "y".
  assert.deepEqual(machine.match(sameElement), [0, 2]);
  assert.deepEqual(machine.match(differentElements), [1, 2]);
});

test("pattern machine - every kind of way may end a pattern, in a group's record or in its index", () => {
  // A pattern whose last condition is one way leads to a state with nothing but a terminal,
  // which the laid-out machine keeps in the way itself (no record). Each kind of way is tried
  // alone (kept in the group's record) and beside a wildcard (the group's ways then go to an
  // index object, which the walk reads another way).
  const ways: unknown[] = [
    "xa",
    { prefix: "x" },
    { suffix: "a" },
    { "equals-ignore-case": "XA" },
    { prefix: { "equals-ignore-case": "X" } },
    { suffix: { "equals-ignore-case": "A" } },
    { numeric: [">", 0, "<=", 2] },
    1.5,
    { exists: true },
    true,
    false,
    null,
    { cidr: "10.0.0.0/8" },
    { "anything-but": "xa" },
    { contains: "a" },
    { wildcard: "xa" },
    { wildcard: "x*a" },
    { wildcard: "*a*" },
    { wildcard: "x*a*b" },
  ];
  const events = ["xa", "XA", "ya", "xb", "xab", "xaab", "xba", 1, 1.5, 3, true, false, null, "10.1.2.3", "b"].map((data) => ({ data }));
  for (const way of ways) {
    for (const list of [[way], [way, { wildcard: "*b" }]]) {
      const patterns = parseAll([{ data: list }, { data: ["xa", "xb"], source: [{ exists: false }] }]);
      const machine = buildPatternMachine(patterns.map((pattern, key) => ({ key, pattern })));
      for (const event of events) {
        assert.deepEqual(machine.match(event), expectedKeys(patterns, event), `${JSON.stringify(list)} on ${JSON.stringify(event)}`);
      }
    }
  }
});

test("pattern machine - keys come back in entry order, each once, however many alternatives match", () => {
  const patterns = parseAll([
    { source: ["a", "b", "a"] },
    { $or: [{ source: ["a"] }, { type: ["t"] }] },
    { source: [{ prefix: "" }], type: [{ exists: true }] },
  ]);
  const machine = buildPatternMachine(patterns.map((pattern, index) => ({ key: `rule-${index}`, pattern })));
  assert.deepEqual(machine.match({ source: "a", type: "t" }), ["rule-0", "rule-1", "rule-2"]);
  assert.deepEqual(machine.match({ source: "b" }), ["rule-0"]);
  assert.deepEqual(machine.match({ type: "t" }), ["rule-1"]);
  assert.deepEqual(machine.match("not an object"), []);
  assert.equal(machine.size, 3);
});

test("pattern machine - a field with many values is indexed, not tried one by one, and stays exact", () => {
  const many = Array.from({ length: 300 }, (_, i) => `value-${i}`);
  const patterns = parseAll([{ source: many, type: many.slice(0, 2) }, { source: ["value-7"] }]);
  const machine = buildPatternMachine(patterns.map((p, key) => ({ key, pattern: p })));
  assert.deepEqual(machine.match({ source: "value-299", type: "value-1" }), [0]);
  assert.deepEqual(machine.match({ source: "value-7", type: "value-0" }), [0, 1]);
  assert.deepEqual(machine.match({ source: "value-7", type: "value-2" }), [1]);
});

test("pattern machine - a hostile event (large arrays under many conditions) still gets the exact answer", () => {
  const patterns = parseAll([{ data: { a: ["x"], b: ["y"], c: [{ exists: true }] } }]);
  const machine = buildPatternMachine(patterns.map((p, key) => ({ key, pattern: p })));
  const items = Array.from({ length: 2000 }, () => ({ a: "x", b: "z", c: 1 }));
  items.push({ a: "x", b: "y", c: 2 });
  const started = performance.now();
  assert.deepEqual(machine.match({ data: items }), [0]);
  items.pop();
  assert.deepEqual(machine.match({ data: items }), []);
  // Not a timing assertion of speed, a guard against blow-up: quadratic would be seconds.
  assert.ok(performance.now() - started < 5000);
});

test("pattern machine - built aside in slices gives the same machine", async () => {
  const jsons = Array.from({ length: 3000 }, (_, i) => ({ source: [`s${i % 50}`], type: [`t${i % 7}`, `u${i}`] }));
  const patterns = parseAll(jsons);
  const entries = patterns.map((p, key) => ({ key, pattern: p }));
  let yielded = 0;
  const ticker = setInterval(() => yielded++, 0);
  const aside = await buildPatternMachineAside(entries, { sliceMs: 1 });
  clearInterval(ticker);
  const direct = buildPatternMachine(entries);
  for (const e of [{ source: "s3", type: "t3" }, { source: "s3", type: "u53" }, { source: "s4", type: "u53" }]) {
    assert.deepEqual(aside.match(e), direct.match(e));
    assert.deepEqual(direct.match(e), expectedKeys(patterns, e));
  }
  assert.equal(aside.stateCount, direct.stateCount);
  assert.ok(yielded >= 0);
});

test("pattern machine - large indexes (filtered before their maps) still find exactly the reference's patterns", () => {
  // Hundreds of values per kind put every index past the size where it gets a key filter
  // (key-filter.ts); events carry values that are in the indexes, near misses, and values
  // under dotted keys and inherited names, which the compiled leaf collection must handle.
  const kinds = [
    (i: number) => [`v-${i}`],
    (i: number) => [{ prefix: `p-${i}-` }],
    (i: number) => [{ suffix: `-s${i}` }],
    (i: number) => [{ "equals-ignore-case": `I-${i}` }],
    (i: number) => [{ prefix: { "equals-ignore-case": `IP-${i}:` } }],
    (i: number) => [{ suffix: { "equals-ignore-case": `:IS-${i}` } }],
    (i: number) => [{ wildcard: `w-${i}-*-x` }],
    (i: number) => [{ wildcard: `*-y-${i}` }],
    (i: number) => [{ wildcard: `z-${i}` }],
    (i: number) => [{ numeric: [">=", i * 10, "<", i * 10 + 5] }],
    (i: number) => [{ cidr: `10.${i >> 8}.${i & 255}.0/24` }],
  ];
  const entries: { key: number; pattern: EventPattern }[] = [];
  for (let i = 0; i < 120; i++) {
    kinds.forEach((kind, k) => {
      const field = k === 9 ? "n" : k === 10 ? "ip" : k === 0 ? "constructor" : "s";
      entries.push({ key: entries.length, pattern: parseEventPattern({ source: [`src-${i % 7}`], detail: { [field]: kind(i) } }) });
    });
  }
  const machine = buildPatternMachine(entries);
  const values = (i: number): unknown[] => [
    `v-${i}`, `v-${i}x`, `p-${i}-rest`, `p-${i}`, `tail-s${i}`, `tail-s${i}0`, `i-${i}`, `ip-${i}:more`, `x:is-${i}`, `X:IS-${i}`,
    `w-${i}-mid-x`, `w-${i}-mid-y`, `a-y-${i}`, `z-${i}`, `z-${i}-y-${i}`, i * 10 + 2, i * 10 + 5, `10.${i >> 8}.${i & 255}.7`, `10.${i >> 8}.${(i + 1) & 255}.7`,
  ];
  let matched = 0;
  for (let i = 0; i < 130; i++) {
    for (const value of values(i)) {
      for (const detail of [{ s: value, n: value, ip: value, constructor: value }, { "s": [value, "other"] }, { "n": value }]) {
        for (const event of [
          { source: `src-${i % 7}`, detail },
          { source: `src-${i % 7}`, "detail.s": value, "detail.constructor": value },
        ]) {
          const expected = entries.filter((entry) => matchesEventPattern(entry.pattern, event)).map((entry) => entry.key);
          assert.deepEqual(machine.match(event), expected, JSON.stringify(event));
          matched += expected.length;
        }
      }
    }
  }
  assert.ok(matched > 1000, `the events matched ${matched} times: the test must exercise the indexes`);
});
