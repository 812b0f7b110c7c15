import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import type { SendResult } from "../../src/delivery/classify-outcome.js";
import { createDeliveryEngine, LEASE_MARGIN_MS } from "../../src/delivery/delivery-engine.js";
import type { DeliveryRequest, DeliveryStore, NewDelivery } from "../../src/log/log-engine.js";
import { openSqliteStorage } from "../../src/log/sqlite/index.js";
import { silentLogger } from "../../src/types.js";

const RETRY = { maxAttempts: 3, maxAgeSeconds: 3_600, baseDelayMs: 20, factor: 2, maxDelayMs: 100 };

function makeDelivery(id: string, nowMs: number): NewDelivery {
  return {
    id,
    bus: "orders",
    offset: 1,
    eventId: `event-${id}`,
    rule: "r1",
    targetId: "hook",
    request: {
      url: "http://127.0.0.1:9/hook",
      headers: { "webhook-id": id },
      body: "{}",
      timeoutMs: 2_000,
    },
    retry: RETRY,
    eventReceivedAtMs: nowMs,
    createdAtMs: nowMs,
  };
}

/**
 * A sender that holds every request until the test answers them all at once, in one
 * synchronous loop, so the attempts end in the same event-loop turn.
 */
function gateSender() {
  const held: Array<{ request: DeliveryRequest; answer: (result: SendResult) => void }> = [];
  return {
    held,
    send(request: DeliveryRequest): Promise<SendResult> {
      return new Promise((answer) => held.push({ request, answer }));
    },
    answerAll(result: SendResult): void {
      for (const h of held.splice(0)) h.answer(result);
    },
  };
}

/** Real storage in a temp dir, with every recordAttempts call counted on its way through. */
function setup(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-engine-"));
  const storage = openSqliteStorage({ dataDir: join(dir, "data"), durability: "fsync-wal-only" });
  const batches: string[][] = [];
  const deliveries: DeliveryStore = {
    ...storage.deliveries,
    recordAttempts(records) {
      batches.push(records.map((r) => r.deliveryId));
      return storage.deliveries.recordAttempts(records);
    },
  };
  t.after(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { storage, deliveries, batches };
}

async function eventually(what: string, timeoutMs: number, probe: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test("delivery engine - attempts that end in one turn are recorded in one transaction", async (t) => {
  const { storage, deliveries, batches } = setup(t);
  const ids = ["d1", "d2", "d3", "d4", "d5"];
  storage.deliveries.commitDispatch(
    "orders",
    1,
    ids.map((id) => makeDelivery(id, Date.now())),
  );
  const sender = gateSender();
  const engine = createDeliveryEngine({
    deliveries,
    sender,
    clock: { nowMs: () => Date.now() },
    logger: silentLogger,
    maxInFlight: 16,
  });
  t.after(() => engine.close());
  await eventually("five requests", 2_000, () => sender.held.length === 5);

  sender.answerAll({ status: 200, durationMs: 1 });
  await eventually("every delivery recorded", 2_000, () => storage.deliveries.pendingCount() === 0);
  assert.deepEqual(
    batches.map((b) => [...b].sort()),
    [ids],
    "one recordAttempts call for the five",
  );
  await engine.close();
});

test("delivery engine - a leased delivery is not handed out again while in flight", async (t) => {
  const { storage, deliveries } = setup(t);
  storage.deliveries.commitDispatch("orders", 1, [
    makeDelivery("d1", Date.now()),
    makeDelivery("d2", Date.now()),
  ]);
  const sender = gateSender();
  const engine = createDeliveryEngine({
    deliveries,
    sender,
    clock: { nowMs: () => Date.now() },
    logger: silentLogger,
    maxInFlight: 16,
  });
  t.after(() => engine.close());
  await eventually("two requests", 2_000, () => sender.held.length === 2);

  for (let i = 0; i < 5; i++) {
    engine.wake();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.deepEqual(
    sender.held.map((h) => h.request.headers["webhook-id"]).sort(),
    ["d1", "d2"],
    "each sent once",
  );
  assert.equal(engine.inFlight, 2);
  const pending = storage.deliveries.due(Number.MAX_SAFE_INTEGER, 10);
  assert.equal(pending.length, 2, "still pending while in flight");
  assert.ok(
    pending.every((d) => d.nextAttemptAtMs > Date.now() + LEASE_MARGIN_MS),
    "leased until past the request's timeout",
  );

  sender.answerAll({ status: 503, error: "busy", durationMs: 1 });
  await eventually("the retries", 2_000, () => sender.held.length === 2);
  assert.deepEqual(
    storage.deliveries.due(Number.MAX_SAFE_INTEGER, 10).map((d) => d.attempts.length),
    [1, 1],
    "each retry went out after its first attempt was recorded",
  );
  sender.answerAll({ status: 200, durationMs: 1 });
  await eventually("every delivery recorded", 2_000, () => storage.deliveries.pendingCount() === 0);
  await engine.close();
});
