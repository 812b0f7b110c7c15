// Our own corpus (test/fixtures/patterns/corpus.json5) through every matcher: the reference
// matcher, the compiled matcher, a pattern machine of each case's pattern alone, and one
// machine holding every corpus pattern at once, which must find for each corpus event exactly
// the patterns the reference finds. The recorded EventBridge answers run in
// test/conformance/eventbridge-patterns.test.ts; this corpus adds the tricky semantics they
// leave out, each answer with its source in the case's `why`.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import JSON5 from "json5";
import { compileEventPattern } from "../../src/patterns/compile-pattern.js";
import { parseEventPattern } from "../../src/patterns/parse-pattern.js";
import { buildPatternMachine } from "../../src/patterns/pattern-machine.js";
import type { EventPattern } from "../../src/patterns/pattern-types.js";
import { matchesEventPattern } from "../../src/patterns/reference-matcher.js";

interface CorpusCase {
  readonly name: string;
  readonly why: string;
  readonly pattern: unknown;
  readonly event: unknown;
  readonly matches: boolean;
  /** Set when event-ruler is believed to answer `matches` and Relaybus does not: a to-do, not a failure. */
  readonly divergence?: string;
}

const CASE_KEYS = new Set(["name", "why", "pattern", "event", "matches", "divergence"]);

function readCorpus(): CorpusCase[] {
  const raw: unknown = JSON5.parse(readFileSync(new URL("../fixtures/patterns/corpus.json5", import.meta.url), "utf8"));
  assert.ok(Array.isArray(raw), "the corpus is an array of cases");
  return raw.map((item: unknown, index) => {
    const at = `corpus case ${index}`;
    assert.ok(typeof item === "object" && item !== null && !Array.isArray(item), `${at} is an object`);
    const record = item as Record<string, unknown>;
    for (const key of Object.keys(record)) assert.ok(CASE_KEYS.has(key), `${at} has an unknown key ${JSON.stringify(key)}`);
    assert.equal(typeof record.name, "string", `${at}.name is a string`);
    assert.ok(typeof record.why === "string" && record.why.length > 0, `${at}.why says where the answer comes from`);
    assert.equal(typeof record.matches, "boolean", `${at}.matches is a boolean`);
    assert.ok("pattern" in record && "event" in record, `${at} has a pattern and an event`);
    assert.ok(record.divergence === undefined || typeof record.divergence === "string", `${at}.divergence is a string`);
    return record as unknown as CorpusCase;
  });
}

const corpus = readCorpus();
const parsed: EventPattern[] = corpus.map((entry) => parseEventPattern(entry.pattern));

test("patterns corpus - names are unique and both answers are well represented", () => {
  const names = corpus.map((entry) => entry.name);
  assert.deepEqual(names.filter((name, i) => names.indexOf(name) !== i), [], "duplicate case names");
  assert.ok(corpus.length >= 60, `at least 60 cases, got ${corpus.length}`);
  const matching = corpus.filter((entry) => entry.matches).length;
  assert.ok(matching >= 20 && corpus.length - matching >= 20, `at least 20 matching and 20 non-matching cases, got ${matching} and ${corpus.length - matching}`);
});

corpus.forEach((entry, index) => {
  const options = entry.divergence === undefined ? {} : { todo: `differs from event-ruler: ${entry.divergence}` };
  test(`patterns corpus - ${entry.name}`, options, () => {
    const pattern = parsed[index]!;
    const label = `${JSON.stringify(entry.pattern)} on ${JSON.stringify(entry.event)} (${entry.why})`;
    assert.equal(matchesEventPattern(pattern, entry.event), entry.matches, `reference: ${label}`);
    assert.equal(compileEventPattern(pattern).matches(entry.event), entry.matches, `compiled: ${label}`);
    const machine = buildPatternMachine([{ key: entry.name, pattern }]);
    assert.equal(machine.size, 1);
    assert.deepEqual(machine.match(entry.event), entry.matches ? [entry.name] : [], `machine of one: ${label}`);
  });
});

test("patterns corpus - one machine of every corpus pattern finds, for each event, the patterns the reference finds", () => {
  // Keys are case indexes. Many cases share a pattern (the same pattern on a matching and a
  // non-matching event), so the machine also holds equal patterns under different keys.
  const machine = buildPatternMachine(parsed.map((pattern, key) => ({ key, pattern })));
  assert.equal(machine.size, corpus.length);
  const describe = (keys: readonly number[]): string[] => keys.map((key) => corpus[key]!.name);
  let nonEmpty = 0;
  for (const entry of corpus) {
    const expected = parsed.flatMap((pattern, key) => (matchesEventPattern(pattern, entry.event) ? [key] : []));
    const actual = machine.match(entry.event);
    if (expected.length > 1) nonEmpty++;
    assert.deepEqual(
      describe([...new Set(actual)].sort((a, b) => a - b)),
      describe(expected),
      `the set of patterns matching the event of "${entry.name}": ${JSON.stringify(entry.event)}`,
    );
    // The contract: each key once, in the order the entries were given.
    assert.deepEqual(actual, expected, `keys for the event of "${entry.name}" come once each, in entry order`);
  }
  // The check means something only if events meet more patterns than their own.
  assert.ok(nonEmpty >= 10, `at least 10 events match more than one corpus pattern, got ${nonEmpty}`);
});

test("patterns corpus - a machine with no entries matches nothing", () => {
  const machine = buildPatternMachine<number>([]);
  assert.equal(machine.size, 0);
  for (const entry of corpus) assert.deepEqual(machine.match(entry.event), []);
});
