/**
 * The tables a cluster shares row by row (`src/log/jetstream/shared-tables.ts`), without
 * NATS: two real state files, each with its stores and triggers; what one file's outbox holds
 * is applied to the other, as the bucket's watch does. The cluster itself is tested in
 * `cluster-nodes.test.ts`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import type Database from "better-sqlite3";
import {
  keyValuesOf,
  shareStateTables,
  sharedRowKey,
} from "../../src/log/jetstream/shared-tables.js";
import type { SharedKind } from "../../src/log/jetstream/shared-state.js";
import type { NewDelivery } from "../../src/log/log-engine.js";
import { openStateFile } from "../../src/log/sqlite/open-sqlite-storage.js";
import {
  createSqliteOutbox,
  type OutboxChange,
  type SqliteOutbox,
} from "../../src/log/sqlite/sqlite-outbox.js";
import { createStateStores, type StateStores } from "../../src/log/sqlite/state-stores.js";
import { silentLogger, systemClock } from "../../src/types.js";

interface Node {
  db: Database.Database;
  stores: StateStores;
  outbox: SqliteOutbox;
  kinds: SharedKind[];
  /** Times the triggers woke the sender. */
  wakes: number;
}

/** A state file in its own directory, with the shared tables' triggers installed. */
function openNode(t: TestContext): Node {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-shared-tables-"));
  const db = openStateFile(dir, silentLogger);
  const stores = createStateStores({
    state: db,
    clock: systemClock,
    meterUsage: false,
    logReader: async () => ({ throughOffset: 0, events: 0, hours: [] }),
  });
  t.after(() => {
    stores.deliveries.flushCheckpoints();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const node: Node = {
    db,
    stores,
    outbox: createSqliteOutbox(db, systemClock),
    kinds: [],
    wakes: 0,
  };
  node.kinds = shareStateTables({
    db,
    targetSecrets: stores.targetSecrets,
    targetStates: stores.targetStates,
    apiKeys: stores.apiKeys,
    changed: () => node.wakes++,
    isLeader: () => false,
  });
  return node;
}

/** Takes every change out of `from`'s outbox, oldest first. */
function drain(from: Node): OutboxChange[] {
  const changes = from.outbox.oldest(1_000);
  for (const change of changes) from.outbox.remove(change.seq);
  return changes;
}

/** Applies changes to `to` as the bucket's watch does. */
function apply(to: Node, changes: readonly OutboxChange[]): void {
  for (const { key, value } of changes) {
    const kind = to.kinds.find((k) => key.startsWith(`${k.prefix}.`));
    assert.ok(kind !== undefined, `a kind takes ${key}`);
    kind.apply(key, value);
  }
}

const KEY_CHARACTERS = /^[-/_=.a-zA-Z0-9]+$/;

function delivery(id: string): NewDelivery {
  return {
    id,
    bus: "orders.eu",
    offset: 42,
    eventId: "evt-1",
    rule: "big",
    targetId: "hook",
    request: {
      url: "http://127.0.0.1:9/x",
      headers: { "x-a": "1" },
      body: '{"note":"café \\"☕\\""}',
      timeoutMs: 5_000,
    },
    retry: { maxAttempts: 3, maxAgeSeconds: 60, baseDelayMs: 100, factor: 2, maxDelayMs: 1_000 },
    eventReceivedAtMs: 1_700_000_000_000,
    createdAtMs: 1_700_000_000_001,
    orderKey: "k-1",
  };
}

test("shared tables - a dead letter goes to the outbox with its row, comes out the same on another file, and nothing echoes", async (t) => {
  const one = openNode(t);
  const two = openNode(t);
  one.stores.deliveries.deadLetter(delivery("d-1"), "HTTP 400: permanent failure");
  const [change, ...more] = drain(one);
  assert.deepEqual(more, []);
  assert.equal(change!.key, `deadletter.${Buffer.from("d-1").toString("base64url")}`);
  const value = change!.value as Record<string, unknown>;
  // Every column, in its SQLite type: JSON columns stay text, integers stay numbers.
  assert.equal(typeof value.request, "string");
  assert.equal(typeof value.attempts, "string");
  assert.equal(value.offset, 42);
  assert.equal(value.order_key, "k-1");
  assert.equal(value.reason, "HTTP 400: permanent failure");
  await Promise.resolve();
  assert.equal(one.wakes, 1, "the sender was woken once the write was over");

  apply(two, [change!]);
  assert.deepEqual(
    two.stores.deliveries.getDeadLetter("d-1"),
    one.stores.deliveries.getDeadLetter("d-1"),
  );
  assert.equal(two.outbox.size(), 0, "an applied change does not go back to the outbox");
  // This node's own change coming back from the bucket leaves the row alone.
  apply(one, [change!]);
  assert.equal(one.outbox.size(), 0);

  // A purge on the other file deletes it on the first.
  assert.equal(await two.stores.deliveries.purgeDeadLetters({ ids: ["d-1"] }), 1);
  const purged = drain(two);
  assert.deepEqual(
    purged.map((c) => [c.key, c.value]),
    [[change!.key, null]],
  );
  apply(one, purged);
  assert.equal(one.stores.deliveries.getDeadLetter("d-1"), undefined);
  assert.equal(one.outbox.size(), 0);
});

test("shared tables - a change in a transaction that rolls back leaves nothing in the outbox", (t) => {
  const one = openNode(t);
  const address = { bus: "orders", rule: "big", targetId: "hook" };
  assert.throws(() =>
    one.db.transaction(() => {
      one.stores.targetStates.disable(address, { reason: "gone", cause: "gone", atMs: 1_000 });
      assert.equal(one.outbox.size(), 1, "recorded inside the transaction");
      throw new Error("roll back");
    })(),
  );
  one.stores.targetStates.forgetCached(address);
  assert.equal(one.stores.targetStates.get(address), undefined);
  assert.equal(one.outbox.size(), 0);
});

test("shared tables - keys escape any text; a change from another node drops the cached secrets and target states", async (t) => {
  const one = openNode(t);
  const two = openNode(t);
  const target = { bus: "orders.eu", rule: "big orders/ü", targetId: "" };
  // Read on the second node first: each store caches what it read (nothing yet).
  assert.deepEqual(
    two.stores.targetSecrets.listSecrets(target.bus, target.rule, target.targetId),
    [],
  );
  assert.equal(two.stores.targetStates.get(target), undefined);

  one.stores.targetSecrets.addSecret({
    ...target,
    id: "s.1",
    kind: "hmac-sha256",
    material: "whsec_x",
    createdAtMs: 5,
  });
  one.stores.targetStates.disable(target, { reason: "through the API", cause: "api", atMs: 6 });
  const changes = drain(one);
  assert.deepEqual(
    changes.map((c) => c.key),
    [
      sharedRowKey("secret", [target.bus, target.rule, "", "s.1"]),
      sharedRowKey("targetstate", [target.bus, target.rule, ""]),
    ],
  );
  for (const { key } of changes) assert.match(key, KEY_CHARACTERS);
  assert.equal(changes[1]!.key.split(".")[3], "=", "the empty target id");
  assert.deepEqual(keyValuesOf(changes[0]!.key, "secret", 4), [target.bus, target.rule, "", "s.1"]);
  assert.throws(() => keyValuesOf("secret.a.b", "secret", 4), /is not a key of secret/);

  apply(two, changes);
  const secrets = two.stores.targetSecrets.activeSecrets(
    target.bus,
    target.rule,
    target.targetId,
    10,
  );
  assert.deepEqual(
    secrets.map((s) => [s.id, s.material]),
    [["s.1", "whsec_x"]],
  );
  assert.equal(two.stores.targetStates.get(target)?.state, "disabled");
  assert.deepEqual(two.stores.targetStates.get(target), one.stores.targetStates.get(target));

  // Revoked and enabled on the second node: the first, which had them cached, forgets them.
  assert.equal(
    one.stores.targetSecrets.activeSecrets(target.bus, target.rule, target.targetId, 10).length,
    1,
  );
  assert.equal(
    two.stores.targetSecrets.revokeSecret(target.bus, target.rule, target.targetId, "s.1"),
    true,
  );
  two.stores.targetStates.enable(target, 7);
  apply(one, drain(two));
  assert.deepEqual(
    one.stores.targetSecrets.activeSecrets(target.bus, target.rule, target.targetId, 10),
    [],
  );
  assert.equal(one.stores.targetStates.get(target)?.state, "enabled");
  assert.equal(one.outbox.size(), 0);
});

test("shared tables - at start a node offers only the rows the bucket does not know", (t) => {
  const one = openNode(t);
  one.stores.deliveries.deadLetter(delivery("d-1"), "r");
  one.stores.deliveries.deadLetter(delivery("d-2"), "r");
  const written = drain(one);
  const deadLetters = one.kinds.find((k) => k.prefix === "deadletter")!;
  const known = new Set([written[0]!.key]);
  const offered = deadLetters.localEntries((key) => known.has(key));
  assert.deepEqual(
    offered,
    [written[1]!].map(({ key, value }) => ({ key, value })),
  );
});
