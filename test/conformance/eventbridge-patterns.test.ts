// Runs every recorded EventBridge answer in shared/conformance/eventbridge-patterns through
// the parser and both matchers. One test per case, so a failure names the file.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import JSON5 from "json5";
import { isRelaybusError } from "../../src/errors.js";
import { compileEventPattern } from "../../src/patterns/compile-pattern.js";
import { parseEventPattern } from "../../src/patterns/parse-pattern.js";
import { buildPatternMachine } from "../../src/patterns/pattern-machine.js";
import { matchesEventPattern } from "../../src/patterns/reference-matcher.js";

const casesDir = new URL("../../../shared/conformance/eventbridge-patterns/", import.meta.url);
const read = (name: string): unknown => JSON5.parse(readFileSync(new URL(name, casesDir), "utf8"));

const caseFiles = readdirSync(casesDir).filter((name) => name.endsWith(".json5")).sort();

function check(name: string, pattern: unknown, event: unknown): void {
  if (name.endsWith("_EXC.json5")) {
    assert.throws(() => parseEventPattern(pattern), (error) => isRelaybusError(error, "InvalidEventPattern"));
    return;
  }
  const parsed = parseEventPattern(pattern);
  const expected = !name.endsWith("_NEG.json5");
  assert.equal(matchesEventPattern(parsed, event), expected, "reference matcher");
  assert.equal(compileEventPattern(parsed).matches(event), expected, "compiled matcher");
  assert.deepEqual(buildPatternMachine([{ key: name, pattern: parsed }]).match(event), expected ? [name] : [], "machine");
}

for (const name of caseFiles) {
  test(`eventbridge conformance - ${name}`, () => {
    const { Event, EventPattern } = read(name) as { Event: unknown; EventPattern: unknown };
    check(name, EventPattern, Event);
  });
}

// One machine holding every accepted case's pattern at once: for each case's event it must
// find exactly the patterns the reference matcher finds, its own among them when expected.
test("eventbridge conformance - one machine of all case patterns finds, for every event, what the reference finds", () => {
  const cases = caseFiles
    .filter((name) => !name.endsWith("_EXC.json5"))
    .map((name) => ({ name, ...(read(name) as { Event: unknown; EventPattern: unknown }) }))
    .map(({ name, Event, EventPattern }) => ({ name, event: Event, pattern: parseEventPattern(EventPattern) }));
  const machine = buildPatternMachine(cases.map(({ name, pattern }) => ({ key: name, pattern })));
  let crossMatches = 0;
  for (const { name, event } of cases) {
    const expected = cases.filter((c) => matchesEventPattern(c.pattern, event)).map((c) => c.name);
    assert.deepEqual(machine.match(event), expected, `event of ${name}`);
    crossMatches += expected.filter((other) => other !== name).length;
  }
  // The cases share events and fields, so many events match other cases' patterns too.
  assert.ok(crossMatches > 50, `cross matches: ${crossMatches}`);
});

// The pair's pattern repeats the key "location". EventBridge's engine (event-ruler, whose
// rule compiler lets a later field overwrite an earlier one by default) keeps the last value,
// and EventBridge answered "match": the event's "eu-central-1" is anything-but "us-east" but
// not prefix "us-". JSON.parse and JSON5 also keep the last value, so the parsed pattern is
// exactly what EventBridge evaluated; the test checks that, then the match.
test("eventbridge conformance - complex_multi_key_event.json with its pattern (duplicate key keeps the last value)", () => {
  const pattern = read("complex_multi_key_event_pattern.json");
  const event = read("complex_multi_key_event.json");
  assert.deepEqual(pattern, { detail: { location: [{ "anything-but": "us-east" }] } });
  const parsed = parseEventPattern(pattern);
  assert.equal(matchesEventPattern(parsed, event), true, "reference matcher");
  assert.equal(compileEventPattern(parsed).matches(event), true, "compiled matcher");
  assert.deepEqual(buildPatternMachine([{ key: 0, pattern: parsed }]).match(event), [0], "machine");
  // Had the first value been kept, the event would not match: the last one decides.
  const firstOnly = parseEventPattern({ detail: { location: [{ prefix: "us-" }] } });
  assert.equal(matchesEventPattern(firstOnly, event), false);
});

// The README counts 157 case files: 155 single-file `.json5` cases and the two files of the
// complex_multi_key_event pair. Every one of them is run above, none skipped.
test("eventbridge conformance - all 157 case files are exercised (155 .json5 and the two-file pair)", () => {
  const readme = readFileSync(new URL("README.md", casesDir), "utf8");
  assert.match(readme, /^157 cases /m);
  const pairFiles = readdirSync(casesDir).filter((name) => name.startsWith("complex_multi_key_event"));
  assert.deepEqual(pairFiles.sort(), ["complex_multi_key_event.json", "complex_multi_key_event_pattern.json"]);
  const allCaseFiles = readdirSync(casesDir).filter((name) => name.endsWith(".json5") || name.endsWith(".json"));
  assert.equal(caseFiles.length, 155);
  assert.equal(allCaseFiles.length, 157);
});
