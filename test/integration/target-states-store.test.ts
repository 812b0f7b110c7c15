import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { openSqliteStorage, type SqliteStorage } from "../../src/log/sqlite/index.js";
import type { TargetAddress } from "../../src/log/target-state-store.js";

const HOOK: TargetAddress = { bus: "orders", rule: "big", targetId: "hook" };
const OTHER: TargetAddress = { bus: "orders", rule: "big", targetId: "other" };

function tempStorage(t: TestContext): () => SqliteStorage {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-target-states-"));
  const opened: SqliteStorage[] = [];
  t.after(async () => {
    for (const storage of opened) await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const storage = openSqliteStorage({ dataDir: join(dir, "data"), durability: "fsync-wal-only" });
    opened.push(storage);
    return storage;
  };
}

function rowCount(storage: SqliteStorage): number {
  return (storage.stateDatabase.prepare("SELECT count(*) AS n FROM target_states").get() as { n: number }).n;
}

test("target states - a target never written has no state and costs no row", (t) => {
  const storage = tempStorage(t)();
  assert.equal(storage.targetStates.get(HOOK), undefined);
  storage.targetStates.markSucceeded(HOOK, 1_000);
  assert.equal(rowCount(storage), 0, "a success of a target not failing writes nothing");
  assert.deepEqual(storage.targetStates.listDisabled(), []);
});

test("target states - disable, keep the first reason, enable, and survive a reopen", async (t) => {
  const open = tempStorage(t);
  const storage = open();
  const states = storage.targetStates;
  states.markFailing(HOOK, 1_000);
  const disabled = states.disable(HOOK, { reason: "the endpoint answered 410 Gone at x", cause: "gone", atMs: 2_000 });
  assert.deepEqual(disabled, {
    ...HOOK,
    state: "disabled",
    reason: "the endpoint answered 410 Gone at x",
    cause: "gone",
    disabledAtMs: 2_000,
    failingSinceMs: 1_000,
    updatedAtMs: 2_000,
  });
  const again = states.disable(HOOK, { reason: "disabled through the API", cause: "api", atMs: 3_000 });
  assert.equal(again.reason, "the endpoint answered 410 Gone at x", "the first cause is the one to fix");
  assert.equal(again.disabledAtMs, 2_000);
  assert.deepEqual(states.listDisabled().map((s) => s.targetId), ["hook"]);

  await storage.close();
  const reopened = open();
  assert.equal(reopened.targetStates.get(HOOK)?.state, "disabled");
  assert.equal(reopened.targetStates.get(HOOK)?.reason, "the endpoint answered 410 Gone at x");
  const enabled = reopened.targetStates.enable(HOOK, 4_000);
  assert.deepEqual(enabled, { ...HOOK, state: "enabled", updatedAtMs: 4_000 }, "the failing run is forgotten too");
  assert.deepEqual(reopened.targetStates.listDisabled(), []);
});

test("target states - failing since is written on the first failure and cleared by a success only", (t) => {
  const storage = tempStorage(t)();
  const states = storage.targetStates;
  states.markFailing(HOOK, 1_000);
  states.markFailing(HOOK, 5_000);
  assert.equal(states.get(HOOK)?.failingSinceMs, 1_000, "a later failure keeps the start of the run");
  assert.equal(states.get(HOOK)?.updatedAtMs, 1_000, "and writes nothing");
  states.markSucceeded(HOOK, 6_000);
  assert.equal(states.get(HOOK)?.failingSinceMs, undefined);
  assert.equal(states.get(HOOK)?.updatedAtMs, 6_000);
  states.markFailing(HOOK, 7_000);
  assert.equal(states.get(HOOK)?.failingSinceMs, 7_000, "a new run starts after the success");
  assert.equal(states.get(OTHER), undefined, "targets are apart");
});

test("target states - reads come from memory after the first, and the store's own writes refresh them", (t) => {
  const storage = tempStorage(t)();
  const states = storage.targetStates;
  assert.equal(states.get(HOOK), undefined);
  // A row written behind the store's back is not seen: the absent state was cached.
  storage.stateDatabase
    .prepare("INSERT INTO target_states (bus, rule, target_id, state, updated_at_ms) VALUES (?, ?, ?, 'disabled', 1)")
    .run(HOOK.bus, HOOK.rule, HOOK.targetId);
  assert.equal(states.get(HOOK), undefined);
  const first = states.get(OTHER);
  assert.equal(first, undefined);
  states.markFailing(OTHER, 10);
  const marked = states.get(OTHER);
  assert.equal(marked?.failingSinceMs, 10);
  assert.equal(states.get(OTHER), marked, "the same frozen object until the next write");
  assert.ok(Object.isFrozen(marked), "callers cannot change the cached state");
});

test("target states - deleting a rule's or a bus's states", (t) => {
  const storage = tempStorage(t)();
  const states = storage.targetStates;
  const elsewhere: TargetAddress = { bus: "orders", rule: "small", targetId: "hook" };
  const otherBus: TargetAddress = { bus: "audit", rule: "big", targetId: "hook" };
  for (const address of [HOOK, OTHER, elsewhere, otherBus]) {
    states.disable(address, { reason: "disabled through the API", cause: "api", atMs: 1 });
  }
  assert.equal(states.deleteStatesOf("orders", "big"), 2);
  assert.equal(states.get(HOOK), undefined, "the cache forgot them too");
  assert.equal(states.get(elsewhere)?.state, "disabled");
  assert.equal(states.deleteStatesOf("orders"), 1);
  assert.equal(states.get(elsewhere), undefined);
  assert.equal(states.get(otherBus)?.state, "disabled");
  assert.equal(rowCount(storage), 1);
});

test("target states - the table refuses states and causes it does not know", (t) => {
  const storage = tempStorage(t)();
  const insert = storage.stateDatabase.prepare(
    "INSERT INTO target_states (bus, rule, target_id, state, cause, updated_at_ms) VALUES ('b', 'r', 't', ?, ?, 1)",
  );
  assert.throws(() => insert.run("paused", null), /CHECK constraint/);
  assert.throws(() => insert.run("disabled", "bored"), /CHECK constraint/);
});
