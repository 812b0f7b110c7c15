import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { isRelaybusError } from "../../src/errors.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/log/sqlite/index.js";

function tempStorage(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-catalog-"));
  const opened: SqliteStorage[] = [];
  t.after(async () => {
    for (const storage of opened) await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const storage = openSqliteStorage({
      dataDir: join(dir, "data"),
      durability: "fsync-wal-only",
    });
    opened.push(storage);
    return storage;
  };
}

test("catalog - buses are created once, listed by name, and survive a reopen", async (t) => {
  const open = tempStorage(t);
  const storage = open();
  storage.catalog.createBus({ name: "orders", description: "Shop orders", createdAtMs: 1 });
  storage.catalog.createBus({ name: "audit", createdAtMs: 2 });
  assert.throws(
    () => storage.catalog.createBus({ name: "orders", createdAtMs: 3 }),
    (error: unknown) =>
      isRelaybusError(error, "BusAlreadyExists") && /"orders"/.test(error.message),
  );
  await storage.close();
  const reopened = open();
  assert.deepEqual(reopened.catalog.listBuses(), [
    { name: "audit", createdAtMs: 2 },
    { name: "orders", description: "Shop orders", createdAtMs: 1 },
  ]);
  assert.equal(reopened.catalog.getBus("missing"), undefined);
});

test("catalog - rules are put, replaced, listed per bus and deleted", (t) => {
  const { catalog } = tempStorage(t)();
  const definition = {
    pattern: { source: ["shop.orders"] },
    targets: [{ id: "f", webhook: { url: "https://x.test" } }],
  };
  catalog.putRule({ bus: "orders", name: "big", definition, createdAtMs: 1, updatedAtMs: 1 });
  catalog.putRule({ bus: "orders", name: "all", definition: {}, createdAtMs: 2, updatedAtMs: 2 });
  catalog.putRule({ bus: "audit", name: "all", definition: {}, createdAtMs: 3, updatedAtMs: 3 });
  catalog.putRule({
    bus: "orders",
    name: "big",
    definition: { ...definition, description: "v2" },
    createdAtMs: 1,
    updatedAtMs: 5,
  });

  assert.deepEqual(catalog.getRule("orders", "big"), {
    bus: "orders",
    name: "big",
    definition: { ...definition, description: "v2" },
    createdAtMs: 1,
    updatedAtMs: 5,
  });
  assert.deepEqual(
    catalog.listRules("orders").map((r) => r.name),
    ["all", "big"],
  );
  assert.deepEqual(
    catalog.listRules().map((r) => `${r.bus}/${r.name}`),
    ["audit/all", "orders/all", "orders/big"],
  );
  assert.equal(catalog.deleteRule("orders", "all"), true);
  assert.equal(catalog.deleteRule("orders", "all"), false);
  assert.equal(catalog.getRule("orders", "all"), undefined);
});

test("catalog - deleting a bus deletes its rules too", (t) => {
  const { catalog } = tempStorage(t)();
  catalog.createBus({ name: "orders", createdAtMs: 1 });
  catalog.putRule({ bus: "orders", name: "big", definition: {}, createdAtMs: 1, updatedAtMs: 1 });
  catalog.putRule({ bus: "audit", name: "keep", definition: {}, createdAtMs: 1, updatedAtMs: 1 });
  assert.equal(catalog.deleteBus("orders"), true);
  assert.equal(catalog.deleteBus("orders"), false);
  assert.deepEqual(
    catalog.listRules().map((r) => r.name),
    ["keep"],
  );
});
