/**
 * Connections in rule files, in the rule registry, and in the state file: declared once,
 * named by targets, problems at their file and line, one namespace with the API's.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { isRelaybusError } from "../../src/errors.js";
import type { ConnectionDefinition, StoredConnection } from "../../src/log/connection-store.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/log/sqlite/index.js";
import {
  checkRuleFiles,
  formatRuleProblem,
  loadRuleFiles,
} from "../../src/rules/load-rule-files.js";
import type { RuleProblem } from "../../src/rules/rule-problem.js";
import { createRuleRegistry, type RuleRegistry } from "../../src/rules/rule-registry.js";
import { silentLogger } from "../../src/types.js";

const CONNECTIONS_FILE = `# Connections only: no bus needed.
connections:
  - name: partner-key
    description: The partner's API key
    authorization:
      apiKey: {header: x-api-key, value: literal-key}
    query: {tenant: acme}
  - name: partner-basic
    authorization:
      basic: {username: relay, password: literal-password}
`;

function ordersFile(connection: string): string {
  return `bus: orders
rules:
  - name: to-partner
    pattern: {source: [shop]}
    targets:
      - id: plain
        webhook: {url: "https://partner.example.com/plain"}
      - id: keyed
        webhook: {url: "https://partner.example.com/keyed"}
        connection: ${connection}
`;
}

/** A temp dir with `files` under rules/, removed after the test. */
function rulesDir(t: TestContext, files: Record<string, string>): { dir: string; rules: string } {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-connections-"));
  const rules = join(dir, "rules");
  mkdirSync(rules);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(rules, name), text);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, rules };
}

async function registryOver(
  t: TestContext,
  dir: string,
  rules: string,
): Promise<{ storage: SqliteStorage; registry: RuleRegistry }> {
  const storage = openSqliteStorage({ dataDir: join(dir, "data"), durability: "fsync-wal-only" });
  let registry: RuleRegistry;
  try {
    registry = await createRuleRegistry({
      catalog: storage.catalog,
      connections: storage.connections,
      rulesDir: rules,
      config: DEFAULT_CONFIG,
      logger: silentLogger,
    });
  } catch (error) {
    await storage.close();
    throw error;
  }
  t.after(async () => {
    await registry.close();
    await storage.close();
  });
  return { storage, registry };
}

function stored(definition: ConnectionDefinition, atMs = 1_000): StoredConnection {
  return { name: definition.name, definition, createdAtMs: atMs, updatedAtMs: atMs };
}

const API_KEY: ConnectionDefinition = {
  name: "api-made",
  authorization: { apiKey: { header: "x-k", value: "v" } },
};

test("connection rule files - a file of connections needs no bus, and rules of any file may name them", async (t) => {
  const { rules } = rulesDir(t, {
    "connections.yaml": CONNECTIONS_FILE,
    "orders.yaml": ordersFile("partner-key"),
  });
  const set = await loadRuleFiles(rules, DEFAULT_CONFIG, { connectionExists: () => false });
  assert.deepEqual(set.problems, []);
  assert.deepEqual(
    set.connections.map((c) => [c.definition.name, c.origin]),
    [
      [
        "partner-key",
        { kind: "file", file: join(rules, "connections.yaml"), line: 3, pointer: "/connections/0" },
      ],
      [
        "partner-basic",
        { kind: "file", file: join(rules, "connections.yaml"), line: 8, pointer: "/connections/1" },
      ],
    ],
  );
  assert.deepEqual(await checkRuleFiles(rules), { files: 2, rules: 1, problems: [] });
});

test("connection rule files - a connection declared twice is a problem at the second's name", async (t) => {
  const again = `connections:\n  - name: other\n    authorization: {basic: {username: u, password: p}}\n  - name: partner-key\n    authorization: {basic: {username: u, password: p}}\n`;
  const { rules } = rulesDir(t, { "a.yaml": CONNECTIONS_FILE, "b.yaml": again });
  const { problems } = await checkRuleFiles(rules);
  assert.deepEqual(problems.map(formatRuleProblem), [
    `${join(rules, "b.yaml")}:4: /connections/1/name: connection "partner-key" is already declared at ${join(rules, "a.yaml")}:3; connection names are unique across rule files`,
  ]);
});

test("connection rule files - a target naming an unknown connection is a problem at its line when the service loads", async (t) => {
  const { rules } = rulesDir(t, { "orders.yaml": ordersFile("no-such-connection") });
  const set = await loadRuleFiles(rules, DEFAULT_CONFIG, {
    connectionExists: (name) => name === "api-made",
  });
  assert.deepEqual(set.problems.map(formatRuleProblem), [
    `${join(rules, "orders.yaml")}:10: /rules/0/targets/1/connection: connection "no-such-connection" does not exist; declare it under connections: in a rule file, or create it with PUT /v1/connections/no-such-connection`,
  ]);
  // An API connection known to the service is fine.
  const { rules: other } = rulesDir(t, { "orders.yaml": ordersFile("api-made") });
  assert.deepEqual(
    (
      await loadRuleFiles(other, DEFAULT_CONFIG, {
        connectionExists: (name) => name === "api-made",
      })
    ).problems,
    [],
  );
  // `relaybus rules check` cannot see the API's connections, so it does not guess.
  assert.deepEqual((await checkRuleFiles(rules)).problems, []);
});

test("connection rule files - rules still need a bus, and connection problems are reported at their line", async (t) => {
  const noBus = `rules:\n  - name: r\n    pattern: {source: [a]}\nconnections:\n  - name: c\n    authorization: {basic: {username: u, password: p}}\n`;
  const badConnection = `connections:\n  - name: c2\n    authorization:\n      basic: {username: u, password: env:RELAYBUS_TEST_UNSET_VARIABLE}\n    headers:\n      webhook-id: forged\n`;
  const { rules } = rulesDir(t, { "a.yaml": noBus, "b.yaml": badConnection });
  const problems = (await checkRuleFiles(rules)).problems.map(formatRuleProblem);
  assert.deepEqual(problems, [
    `${join(rules, "a.yaml")}:1: /: missing required key "bus"`,
    `${join(rules, "b.yaml")}:4: /connections/0/authorization/basic/password: environment variable RELAYBUS_TEST_UNSET_VARIABLE is not set`,
    `${join(rules, "b.yaml")}:6: /connections/0/headers/webhook-id: "webhook-id" is a header Relaybus sets itself (webhook-id, webhook-timestamp, webhook-signature, content-type, ce-*, and the message framing ones); a connection cannot set it`,
  ]);
});

test("connection registry - targets resolve to their connection, from a file or the API, and list their users", async (t) => {
  const { dir, rules } = rulesDir(t, {
    "connections.yaml": CONNECTIONS_FILE,
    "orders.yaml": ordersFile("partner-key"),
  });
  const { storage, registry } = await registryOver(t, dir, rules);
  assert.equal(registry.connectionOf("orders", "to-partner", "keyed"), "partner-key");
  assert.equal(registry.connectionOf("orders", "to-partner", "plain"), undefined);
  assert.equal(registry.connectionOf("orders", "nope", "keyed"), undefined);
  assert.equal(registry.findConnection("partner-key"), registry.fileConnections()[0]!.definition);

  storage.connections.put(stored(API_KEY));
  assert.deepEqual(registry.findConnection("api-made"), API_KEY);
  registry.putRule(
    "orders",
    {
      name: "api-rule",
      pattern: { source: ["x"] },
      targets: [{ id: "t", webhook: { url: "https://a.example.com/" }, connection: "partner-key" }],
    },
    { mode: "create" },
  );
  assert.deepEqual(registry.connectionUsers("partner-key"), [
    { bus: "orders", rule: "to-partner", target: "keyed" },
    { bus: "orders", rule: "api-rule", target: "t" },
  ]);
  assert.deepEqual(registry.connectionUsers("api-made"), []);
});

test("connection registry - an API rule naming an unknown connection is refused as InvalidRule", async (t) => {
  const { dir, rules } = rulesDir(t, {});
  const { registry } = await registryOver(t, dir, rules);
  const definition = {
    name: "r",
    pattern: { source: ["x"] },
    targets: [{ id: "t", webhook: { url: "https://a.example.com/" }, connection: "ghost" }],
  };
  assert.throws(
    () => registry.putRule("default", definition, { mode: "create" }),
    (error: unknown) =>
      isRelaybusError(error, "InvalidRule") &&
      error.status === 400 &&
      /^\/targets\/0\/connection: connection "ghost" does not exist/.test(error.message),
  );
  assert.deepEqual(registry.listRules("default"), []);
});

test("connection registry - a file connection may not take an API connection's name: the reload is refused", async (t) => {
  const { dir, rules } = rulesDir(t, {});
  const { storage, registry } = await registryOver(t, dir, rules);
  storage.connections.put(stored({ ...API_KEY, name: "partner-key" }));
  writeFileSync(join(rules, "connections.yaml"), CONNECTIONS_FILE);
  const refused = await registry.reloadFiles().then(
    () => assert.fail("expected the reload to be refused"),
    (error: unknown) => error,
  );
  assert.ok(isRelaybusError(refused, "RulesReloadFailed"));
  assert.deepEqual((refused.details?.problems as RuleProblem[]).map(formatRuleProblem), [
    `${join(rules, "connections.yaml")}:3: /connections/0/name: connection "partner-key" already exists as an API connection; rename this one, or delete the API connection first (DELETE /v1/connections/partner-key)`,
  ]);
  assert.deepEqual(registry.fileConnections(), [], "the running set stays");
});

test("connection store - API connections persist in the state file, frozen, the same object until replaced", async (t) => {
  const { dir } = rulesDir(t, {});
  const open = () =>
    openSqliteStorage({ dataDir: join(dir, "data"), durability: "fsync-wal-only" });
  let storage = open();
  try {
    storage.connections.put(stored(API_KEY, 1_000));
    const first = storage.connections.get("api-made")!;
    assert.ok(Object.isFrozen(first) && Object.isFrozen(first.definition.authorization));
    assert.equal(storage.connections.get("api-made"), first);
    storage.connections.put(stored({ ...API_KEY, description: "changed" }, 2_000));
    const second = storage.connections.get("api-made")!;
    assert.notEqual(second, first);
    assert.equal(second.definition.description, "changed");
    storage.connections.put(
      stored({ name: "b", authorization: { basic: { username: "u", password: "env:P" } } }, 3_000),
    );
  } finally {
    await storage.close();
  }
  storage = open();
  try {
    assert.deepEqual(
      storage.connections.list().map((c) => [c.name, c.updatedAtMs]),
      [
        ["api-made", 2_000],
        ["b", 3_000],
      ],
    );
    assert.deepEqual(storage.connections.get("b")?.definition.authorization, {
      basic: { username: "u", password: "env:P" },
    });
    assert.equal(storage.connections.delete("api-made"), true);
    assert.equal(storage.connections.delete("api-made"), false);
    assert.equal(storage.connections.get("api-made"), undefined);
    assert.deepEqual(
      storage.connections.list().map((c) => c.name),
      ["b"],
    );
  } finally {
    await storage.close();
  }
});
