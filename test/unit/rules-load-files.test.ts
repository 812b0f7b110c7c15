import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  checkRuleFiles,
  formatRuleProblem,
  loadRuleFiles,
} from "../../src/rules/load-rule-files.js";

const FIXTURES = "test/fixtures/rules";

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-rules-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function problemLines(dir: string): Promise<string[]> {
  const result = await checkRuleFiles(join(FIXTURES, dir));
  return result.problems.map(formatRuleProblem);
}

test("rules files - valid files load in path order, yaml and yml alike", async () => {
  const set = await loadRuleFiles(join(FIXTURES, "valid"));
  assert.deepEqual(set.problems, []);
  assert.deepEqual(
    set.files.map((f) => [f.file, f.bus, f.ruleCount]),
    [
      [join(FIXTURES, "valid/orders.yaml"), "orders", 2],
      [join(FIXTURES, "valid/payments.yml"), "payments", 1],
    ],
  );
  assert.deepEqual(
    set.rules.map((r) => `${r.bus}/${r.name}`),
    ["orders/big-orders", "orders/paused", "payments/failed-payments"],
  );
});

test("rules files - each rule records the file, line and pointer it came from", async () => {
  const set = await loadRuleFiles(join(FIXTURES, "valid"));
  assert.deepEqual(set.rules[0]?.origin, {
    kind: "file",
    file: join(FIXTURES, "valid/orders.yaml"),
    line: 5,
    pointer: "/rules/0",
  });
  assert.deepEqual(set.rules[1]?.origin, {
    kind: "file",
    file: join(FIXTURES, "valid/orders.yaml"),
    line: 24,
    pointer: "/rules/1",
  });
});

test("rules files - a YAML syntax error is reported at its line", async () => {
  const [line, ...rest] = await problemLines("syntax");
  assert.deepEqual(rest, []);
  assert.match(
    line ?? "",
    /^test\/fixtures\/rules\/syntax\/broken\.yaml:6: \/rules\/0\/pattern\/source\/0: YAML: Flow sequence/,
  );
});

test("rules files - schema problems are all reported, each at its key's line", async () => {
  assert.deepEqual(await problemLines("schema"), [
    `${FIXTURES}/schema/orders.yaml:6: /rules/1/name: must be 1 to 64 letters, digits, '.', '_' or '-', got "bad rule"`,
    `${FIXTURES}/schema/orders.yaml:12: /rules/1/targets/0/webhook/url: must be an http or https URL, got "ftp://example.com/"`,
    `${FIXTURES}/schema/orders.yaml:13: /rules/1/targets/0/colour: unknown key "colour" (expected one of: id, webhook, format, transform, retry, signing, pacing, connection)`,
  ]);
});

test("rules files - an invalid pattern is reported inside the pattern, as written", async () => {
  assert.deepEqual(await problemLines("pattern"), [
    `${FIXTURES}/pattern/orders.yaml:8: /rules/0/pattern/detail/total/0/numeric: numeric needs pairs of operator and number, got [">"]`,
  ]);
});

test("rules files - an invalid transform is reported at the transform with its position", async () => {
  const lines = await problemLines("transform");
  assert.equal(lines.length, 1);
  assert.match(
    lines[0] ?? "",
    /^test\/fixtures\/rules\/transform\/orders\.yaml:12: \/rules\/0\/targets\/1\/transform: transform does not compile: .*position 14/,
  );
});

test("rules files - a rule name defined twice for a bus across files is reported at the second", async () => {
  // b.yaml reuses the name on another bus, which is fine; c.yaml reuses it on the same bus.
  assert.deepEqual(await problemLines("duplicate"), [
    `${FIXTURES}/duplicate/c.yaml:6: /rules/1/name: rule "shared" of bus "orders" is already defined at ${FIXTURES}/duplicate/a.yaml:3; rule names are unique within a bus`,
  ]);
});

test("rules files - a pattern with both detail and data names both", async () => {
  const [line] = await problemLines("both-vocabularies");
  assert.match(
    line ?? "",
    /orders\.yaml:5: \/rules\/0\/pattern\/detail: pattern uses both "detail" \(at \/detail\) and "data" \(at \/data\)/,
  );
});

test("rules files - an empty file is a problem, not a silent nothing", async () => {
  assert.deepEqual(await problemLines("empty"), [
    `${FIXTURES}/empty/empty.yaml:1: /: the file is empty; expected a mapping with "bus" and "rules" (or "connections", "streams", "schedules")`,
  ]);
});

test("rules files - a missing directory is an empty set", async () => {
  assert.deepEqual(await checkRuleFiles(join(FIXTURES, "no-such-directory")), {
    files: 0,
    rules: 0,
    problems: [],
  });
});

test("rules files - subdirectories are read, hidden files and other extensions are not", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "team"));
  writeFileSync(
    join(dir, "team", "a.yaml"),
    "bus: team\nrules:\n  - name: r\n    pattern: {source: [x]}\n",
  );
  writeFileSync(join(dir, ".swap.yaml"), "not: [valid");
  writeFileSync(join(dir, "notes.txt"), "not: [valid");
  const set = await loadRuleFiles(dir);
  assert.deepEqual(set.problems, []);
  assert.deepEqual(
    set.files.map((f) => f.file),
    [join(dir, "team", "a.yaml")],
  );
});

test("rules files - duplicate YAML keys are refused", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "a.yaml"), "bus: a\nbus: b\n");
  const result = await checkRuleFiles(dir);
  assert.equal(result.problems.length, 1);
  assert.match(
    formatRuleProblem(result.problems[0]!),
    /a\.yaml:2: .*YAML: Map keys must be unique/,
  );
});

test("rules files - the shipped rules/ directory is valid", async () => {
  const result = await checkRuleFiles("rules");
  assert.deepEqual(result.problems.map(formatRuleProblem), []);
  assert.ok(result.rules >= 1, "rules/ holds at least the example rule");
});

test("rules files - a rule with shape problems still has its pattern checked", async () => {
  const dir = tempDir();
  writeFileSync(
    join(dir, "orders.yaml"),
    `bus: orders
rules:
  - name: big
    pattern:
      data:
        total: [{numeric: [">"]}]
    targets:
      - id: t
        webhook: {url: "ftp://x"}
`,
  );
  const lines = (await checkRuleFiles(dir)).problems.map(formatRuleProblem);
  assert.deepEqual(lines, [
    `${join(dir, "orders.yaml")}:6: /rules/0/pattern/data/total/0/numeric: numeric needs pairs of operator and number, got [">"]`,
    `${join(dir, "orders.yaml")}:9: /rules/0/targets/0/webhook/url: must be an http or https URL, got "ftp://x"`,
  ]);
});
