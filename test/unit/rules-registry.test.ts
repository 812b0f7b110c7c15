import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { isRelaybusError, type ErrorCode } from "../../src/errors.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/log/sqlite/index.js";
import { createRuleRegistry, type RuleRegistry } from "../../src/rules/rule-registry.js";
import type { RuleProblem } from "../../src/rules/rule-problem.js";
import type { CloudEvent, Logger } from "../../src/types.js";

const FIXTURES = "test/fixtures/rules";

interface Setup {
  dir: string;
  rulesDir: string;
  storage: SqliteStorage;
  registry: RuleRegistry;
  logs: { level: string; message: string; fields?: Record<string, unknown> }[];
}

/** A registry over a real SQLite file and a copy of a fixture directory, closed after the test. */
async function setup(fixture?: string, options: { watchDebounceMs?: number; syncBuildMaxRules?: number } = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-registry-"));
  const rulesDir = join(dir, "rules");
  if (fixture !== undefined) cpSync(join(FIXTURES, fixture), rulesDir, { recursive: true });
  const storage = openSqliteStorage({
    dataDir: join(dir, "data"),
    durability: "fsync-wal-only",
  });
  const logs: Setup["logs"] = [];
  const logger: Logger = {
    info: (message, fields) => logs.push({ level: "info", message, ...(fields ? { fields } : {}) }),
    warn: (message, fields) => logs.push({ level: "warn", message, ...(fields ? { fields } : {}) }),
    error: (message, fields) =>
      logs.push({ level: "error", message, ...(fields ? { fields } : {}) }),
  };
  let registry: RuleRegistry;
  try {
    registry = await createRuleRegistry({
      catalog: storage.catalog,
      rulesDir,
      config: DEFAULT_CONFIG,
      logger,
      ...options,
    });
  } catch (error) {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  after(async () => {
    await registry.close();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, rulesDir, storage, registry, logs };
}

function event(fields: Partial<CloudEvent>): CloudEvent {
  return { specversion: "1.0", id: "e-1", source: "shop.orders", type: "order.created", ...fields };
}

function failsWith(code: ErrorCode, pattern?: RegExp) {
  return (error: unknown) => {
    assert.ok(isRelaybusError(error, code), `expected ${code}, got ${String(error)}`);
    if (pattern !== undefined) assert.match(error.message, pattern);
    return true;
  };
}

const apiRule = {
  name: "api-rule",
  pattern: { source: ["shop.orders"] },
  targets: [{ id: "hook", webhook: { url: "http://127.0.0.1:9100/" } }],
};

test("rules registry - routes file rules with detail-type and detail translated", async () => {
  const { registry } = await setup("valid");
  const big = registry.route("orders", event({ data: { id: "o-1", total: 150 } }));
  assert.deepEqual(
    big.map((t) => `${t.rule}/${t.targetId}`),
    ["big-orders/fulfilment", "big-orders/audit"],
  );
  assert.deepEqual(registry.route("orders", event({ data: { id: "o-2", total: 50 } })), []);
  assert.deepEqual(
    registry.route("orders", event({ type: "order.cancelled", data: { total: 150 } })),
    [],
  );
});

test("rules registry - routed targets carry resolved defaults and compiled transforms", async () => {
  const { registry } = await setup("valid");
  const [fulfilment, audit] = registry.route("orders", event({ data: { id: "o-1", total: 150 } }));
  assert.equal(fulfilment?.format, "transform");
  assert.deepEqual(fulfilment?.headers, { "x-team": "fulfilment" });
  assert.equal(fulfilment?.timeoutMs, DEFAULT_CONFIG.delivery.timeoutMs);
  assert.deepEqual(fulfilment?.retry, {
    ...DEFAULT_CONFIG.delivery.retry,
    maxAttempts: 10,
    maxAgeSeconds: 3600,
  });
  assert.deepEqual(
    await fulfilment?.transform?.evaluate(event({ data: { id: "o-1", total: 150 } }), 100),
    {
      orderId: "o-1",
      amount: 150,
    },
  );
  assert.equal(audit?.format, "cloudevents-structured");
  assert.equal(audit?.timeoutMs, 2000);
  assert.equal(audit?.transform, undefined);
  assert.deepEqual(audit?.retry, DEFAULT_CONFIG.delivery.retry);
});

test("rules registry - a disabled rule and an unknown bus route nowhere", async () => {
  const { registry } = await setup("valid");
  // `paused` matches any shop.orders event but is disabled.
  assert.deepEqual(registry.route("orders", event({ data: { total: 1 } })), []);
  assert.deepEqual(registry.route("no-such-bus", event({})), []);
});

test("rules registry - buses come from files, the catalog and default", async () => {
  const { registry, storage } = await setup("valid");
  // Another writer of the catalog (another process, say): the registry sees it after reloadCatalog.
  storage.catalog.createBus({ name: "made-by-api", description: "from the API", createdAtMs: 5 });
  registry.reloadCatalog();
  assert.equal(registry.busExists("default"), true);
  assert.equal(registry.busExists("orders"), true);
  assert.equal(registry.busExists("made-by-api"), true);
  assert.equal(registry.busExists("nothing"), false);
  const buses = registry.listBuses();
  assert.deepEqual(
    buses.map((b) => [b.name, b.origins, b.rules]),
    [
      ["default", ["default"], 0],
      ["made-by-api", ["catalog"], 0],
      ["orders", ["file"], 2],
      ["payments", ["file"], 1],
    ],
  );
  assert.equal(
    buses.find((b) => b.name === "orders")?.description,
    "Orders and what follows from them",
  );
  assert.equal(buses.find((b) => b.name === "made-by-api")?.createdAtMs, 5);
});

test("rules registry - a start with a broken rule file is refused with its problems", async () => {
  await assert.rejects(setup("pattern"), (error: unknown) => {
    assert.ok(isRelaybusError(error, "RulesReloadFailed"));
    const problems = error.details?.problems as RuleProblem[];
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.pointer, "/rules/0/pattern/detail/total/0/numeric");
    assert.match(
      error.message,
      /orders\.yaml:8: \/rules\/0\/pattern\/detail\/total\/0\/numeric: numeric needs pairs/,
    );
    return true;
  });
});

test("rules registry - a refused reload keeps the running rules whole", async () => {
  const { registry, rulesDir } = await setup("valid");
  const matching = event({ data: { id: "o-1", total: 150 } });
  assert.equal(registry.route("orders", matching).length, 2);
  // One good change and one bad file: neither may be applied.
  writeFileSync(join(rulesDir, "orders.yaml"), "bus: orders\nrules: []\n");
  writeFileSync(
    join(rulesDir, "zz-bad.yaml"),
    "bus: orders\nrules:\n  - name: x\n    pattern: {source: 5}\n",
  );
  await assert.rejects(registry.reloadFiles(), (error: unknown) => {
    assert.ok(isRelaybusError(error, "RulesReloadFailed"));
    const problems = error.details?.problems as RuleProblem[];
    assert.deepEqual(
      problems.map((p) => [p.file, p.line, p.pointer]),
      [[join(rulesDir, "zz-bad.yaml"), 4, "/rules/0/pattern/source"]],
    );
    return true;
  });
  assert.equal(registry.route("orders", matching).length, 2);
  assert.deepEqual(
    registry.listRules("orders").map((r) => r.name),
    ["big-orders", "paused"],
  );
});

test("rules registry - a good reload swaps the rules in", async () => {
  const { registry, rulesDir } = await setup("valid");
  writeFileSync(
    join(rulesDir, "orders.yaml"),
    "bus: orders\nrules:\n  - name: all-orders\n    pattern: {source: [shop.orders]}\n    targets:\n      - id: t\n        webhook: {url: 'http://127.0.0.1:9/'}\n",
  );
  const summary = await registry.reloadFiles();
  assert.deepEqual(summary, { files: 2, rules: 2, buses: 2 });
  assert.deepEqual(
    registry.route("orders", event({ data: { total: 1 } })).map((t) => t.rule),
    ["all-orders"],
  );
});

test("rules registry - API rule lifecycle: create, get, replace, disable, enable, delete", async () => {
  const { registry, storage } = await setup("valid");
  const created = registry.putRule("orders", apiRule, { mode: "create" });
  assert.deepEqual(
    [created.name, created.enabled, created.origin],
    ["api-rule", true, { kind: "api" }],
  );
  assert.ok(storage.catalog.getRule("orders", "api-rule") !== undefined, "stored in the catalog");
  assert.deepEqual(
    registry.route("orders", event({ data: { total: 1 } })).map((t) => t.rule),
    ["api-rule"],
  );

  assert.throws(
    () => registry.putRule("orders", apiRule, { mode: "create" }),
    failsWith("RuleAlreadyExists"),
  );
  const replaced = registry.putRule(
    "orders",
    { ...apiRule, pattern: { source: ["elsewhere"] } },
    { mode: "replace" },
  );
  assert.deepEqual(replaced.definition.pattern, { source: ["elsewhere"] });
  assert.equal(replaced.createdAtMs, created.createdAtMs);
  assert.deepEqual(registry.route("orders", event({ data: { total: 1 } })), []);
  assert.equal(registry.route("orders", event({ source: "elsewhere" })).length, 1);

  assert.equal(registry.setEnabled("orders", "api-rule", false).enabled, false);
  assert.deepEqual(registry.route("orders", event({ source: "elsewhere" })), []);
  assert.equal(
    (storage.catalog.getRule("orders", "api-rule")?.definition as { enabled?: boolean }).enabled,
    false,
  );
  assert.equal(registry.setEnabled("orders", "api-rule", true).enabled, true);
  assert.equal(registry.route("orders", event({ source: "elsewhere" })).length, 1);

  assert.deepEqual(
    registry.listRules("orders").map((r) => [r.name, r.origin.kind]),
    [
      ["big-orders", "file"],
      ["paused", "file"],
      ["api-rule", "api"],
    ],
  );
  registry.deleteRule("orders", "api-rule");
  assert.equal(storage.catalog.getRule("orders", "api-rule"), undefined);
  assert.throws(() => registry.getRule("orders", "api-rule"), failsWith("RuleNotFound"));
  assert.throws(() => registry.deleteRule("orders", "api-rule"), failsWith("RuleNotFound"));
  assert.throws(
    () => registry.putRule("orders", apiRule, { mode: "replace" }),
    failsWith("RuleNotFound"),
  );
});

test("rules registry - file rules cannot be changed through the API", async () => {
  const { registry } = await setup("valid");
  const fileRule = { ...apiRule, name: "big-orders" };
  assert.throws(
    () => registry.putRule("orders", fileRule, { mode: "create" }),
    failsWith("RuleManagedByFile", /orders\.yaml:5/),
  );
  assert.throws(
    () => registry.setEnabled("orders", "big-orders", false),
    failsWith("RuleManagedByFile"),
  );
  assert.throws(() => registry.deleteRule("orders", "big-orders"), failsWith("RuleManagedByFile"));
  assert.deepEqual(registry.getRule("orders", "big-orders").origin, {
    kind: "file",
    file: join(registry.listBuses().find((b) => b.name === "orders")?.files[0] ?? ""),
    line: 5,
    pointer: "/rules/0",
  });
});

test("rules registry - API rules are validated like file rules", async () => {
  const { registry } = await setup();
  assert.throws(
    () => registry.putRule("default", { ...apiRule, colour: "blue" }, { mode: "create" }),
    failsWith("InvalidRule", /\/colour: unknown key/),
  );
  assert.throws(
    () =>
      registry.putRule(
        "default",
        { ...apiRule, pattern: { detail: { total: [{ numeric: [">"] }] } } },
        { mode: "create" },
      ),
    failsWith("InvalidEventPattern", /^\/pattern\/detail\/total\/0\/numeric: numeric needs pairs/),
  );
  assert.throws(
    () =>
      registry.putRule(
        "default",
        { ...apiRule, targets: [{ id: "t", webhook: { url: "http://x/" }, transform: "(" }] },
        { mode: "create" },
      ),
    failsWith("InvalidTransform", /^\/targets\/0\/transform: transform does not compile/),
  );
  assert.throws(
    () => registry.putRule("nowhere", apiRule, { mode: "create" }),
    failsWith("BusNotFound"),
  );
  assert.deepEqual(registry.listRules("default"), []);
});

test("rules registry - API rules survive a restart", async () => {
  const { registry, storage, rulesDir } = await setup("valid");
  registry.putRule("orders", apiRule, { mode: "create" });
  registry.setEnabled("orders", "api-rule", false);
  const again = await createRuleRegistry({
    catalog: storage.catalog,
    rulesDir,
    config: DEFAULT_CONFIG,
    logger: silent(),
  });
  try {
    assert.deepEqual(again.getRule("orders", "api-rule").enabled, false);
    assert.deepEqual(
      again.listRules("orders").map((r) => r.name),
      ["big-orders", "paused", "api-rule"],
    );
  } finally {
    await again.close();
  }
});

test("rules registry - a file rule clashing with an API rule refuses the reload", async () => {
  const { registry, rulesDir } = await setup("valid");
  registry.putRule("orders", apiRule, { mode: "create" });
  writeFileSync(
    join(rulesDir, "more.yaml"),
    "bus: orders\nrules:\n  - name: api-rule\n    pattern: {source: [x]}\n",
  );
  await assert.rejects(registry.reloadFiles(), (error: unknown) => {
    assert.ok(isRelaybusError(error, "RulesReloadFailed"));
    assert.match(
      error.message,
      /more\.yaml:3: \/rules\/0\/name: rule "api-rule" of bus "orders" already exists as an API rule/,
    );
    return true;
  });
  assert.equal(registry.getRule("orders", "api-rule").origin.kind, "api");
});

test("rules registry - deleting buses: default and file buses are protected, rules need force", async () => {
  const { registry, storage } = await setup("valid");
  assert.throws(() => registry.deleteBus("default"), failsWith("BusProtected"));
  assert.throws(
    () => registry.deleteBus("orders"),
    failsWith("BusProtected", /valid|orders\.yaml/),
  );
  assert.throws(() => registry.deleteBus("nothing"), failsWith("BusNotFound"));
  registry.createBus({ name: "scratch" });
  registry.putRule("scratch", apiRule, { mode: "create" });
  assert.throws(() => registry.deleteBus("scratch"), failsWith("BusHasRules"));
  registry.deleteBus("scratch", { force: true });
  assert.equal(registry.busExists("scratch"), false);
  assert.equal(storage.catalog.getBus("scratch"), undefined, "gone from the catalog too");
  assert.deepEqual(storage.catalog.listRules("scratch"), []);
  assert.deepEqual(registry.route("scratch", event({})), []);
});

test("rules registry - watch reloads on change and logs a refused reload", async () => {
  const { registry, rulesDir, logs } = await setup("valid", { watchDebounceMs: 50 });
  const stop = registry.watch();
  try {
    writeFileSync(join(rulesDir, "payments.yml"), "bus: payments\nrules: []\n");
    await waitFor(() => logs.some((l) => l.message.startsWith("rule files changed: reloaded")));
    assert.deepEqual(registry.listRules("payments"), []);

    writeFileSync(join(rulesDir, "payments.yml"), "bus: payments\nrules:\n  - name: x\n");
    await waitFor(() =>
      logs.some((l) => l.level === "warn" && l.message.includes("reload was refused")),
    );
    const warning = logs.find((l) => l.level === "warn");
    assert.match(
      String((warning?.fields?.problems as string[])[0]),
      /payments\.yml:3: \/rules\/0: missing required key "pattern"/,
    );
    assert.equal(
      registry.route("orders", event({ data: { id: "o", total: 500 } })).length,
      2,
      "old rules still run",
    );
  } finally {
    stop();
  }
});

test("rules registry - the shipped rules/ example routes a demo event to the local receiver", async () => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-registry-"));
  const storage = openSqliteStorage({
    dataDir: join(dir, "data"),
    durability: "fsync-wal-only",
  });
  const registry = await createRuleRegistry({
    catalog: storage.catalog,
    rulesDir: "rules",
    config: DEFAULT_CONFIG,
    logger: silent(),
  });
  try {
    const [target, ...rest] = registry.route(
      "default",
      event({ source: "demo", type: "greeting", data: { name: "Ada", count: 3 } }),
    );
    assert.deepEqual(rest, []);
    assert.equal(target?.url, "http://127.0.0.1:9000/");
    assert.deepEqual(
      await target?.transform?.evaluate(
        event({ id: "x", source: "demo", type: "greeting", data: { name: "Ada", count: 3 } }),
        100,
      ),
      {
        greeting: "Hello, Ada!",
        count: 3,
        type: "greeting",
        eventId: "x",
      },
    );
  } finally {
    await registry.close();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

function silent(): Logger {
  return { info() {}, warn() {}, error() {} };
}

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("rules registry - createBus stores the bus, and a taken name is refused", async () => {
  const { registry, storage } = await setup("valid");
  const created = registry.createBus({ name: "fresh", description: "made here" });
  assert.equal(created.name, "fresh");
  assert.equal(registry.busExists("fresh"), true);
  assert.equal(storage.catalog.getBus("fresh")?.description, "made here");
  for (const taken of ["fresh", "orders", "default"]) {
    assert.throws(() => registry.createBus({ name: taken }), failsWith("BusAlreadyExists"));
  }
});

test("rules registry - on a bus with many rules, a change routes at once while the machine is rebuilt aside", async () => {
  const { registry, logs } = await setup(undefined, { syncBuildMaxRules: 50 });
  const target = { id: "hook", webhook: { url: "http://127.0.0.1:9/hook" } };
  const put = (name: string, type: string) =>
    registry.putRule("default", { name, pattern: { type: [type] }, targets: [target] }, { mode: "create" });
  for (let i = 0; i < 200; i++) put(`rule-${i}`, `type-${i}`);
  await registry.routingSettled();
  const event = (type: string): CloudEvent => ({ specversion: "1.0", id: "1", source: "test", type });

  // A new rule and a deleted one take effect before the rebuild lands...
  put("late", "type-late");
  registry.deleteRule("default", "rule-7");
  assert.equal(registry.route("default", event("type-late")).length, 1);
  assert.equal(registry.route("default", event("type-7")).length, 0);
  assert.equal(registry.route("default", event("type-8")).length, 1);
  // ...and after it, with the machine now holding them.
  await registry.routingSettled();
  assert.ok(logs.some((l) => l.message === "pattern machine rebuilt" && l.fields?.rules === 200));
  assert.equal(registry.route("default", event("type-late")).length, 1);
  assert.equal(registry.route("default", event("type-7")).length, 0);
  assert.equal(registry.route("default", event("type-199")).length, 1);
  // Disabling replaces the rule object: the old one is retired from the machine's answers.
  registry.setEnabled("default", "rule-9", false);
  assert.equal(registry.route("default", event("type-9")).length, 0);
  await registry.routingSettled();
  assert.equal(registry.route("default", event("type-9")).length, 0);
});
