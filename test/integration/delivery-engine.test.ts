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

/** An engine on real storage, with 16 attempts in flight, closed after the test. */
function startEngine(t: TestContext, deliveries: DeliveryStore, sender: ReturnType<typeof gateSender>) {
  const engine = createDeliveryEngine({
    deliveries,
    sender,
    clock: { nowMs: () => Date.now() },
    logger: silentLogger,
    maxInFlight: 16,
  });
  t.after(() => engine.close());
  return engine;
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
  const engine = startEngine(t, deliveries, sender);
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
  const engine = startEngine(t, deliveries, sender);
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

test("delivery engine - a handed-over delivery that succeeds at once is stored finished, never pending", async (t) => {
  const { storage, deliveries, batches } = setup(t);
  const sender = gateSender();
  const engine = startEngine(t, deliveries, sender);
  const handOff = engine.handOff([makeDelivery("d1", Date.now()), makeDelivery("d2", Date.now())], 5_000);
  await eventually("two requests", 2_000, () => sender.held.length === 2);
  sender.answerAll({ status: 200, durationMs: 1 });
  await handOff.settled;
  const dispatched = handOff.seal();
  assert.deepEqual(
    dispatched.map((d) => [d.delivery.id, d.first?.next.kind, d.heldUntilMs]),
    [
      ["d1", "succeeded", undefined],
      ["d2", "succeeded", undefined],
    ],
  );
  storage.deliveries.commitDispatched("orders", 1, dispatched);
  assert.equal(storage.deliveries.pendingCount(), 0);
  const traced = storage.deliveries.deliveriesOfEvent("orders", "event-d1").deliveries;
  assert.equal(traced.length, 1);
  assert.equal(traced[0]!.attempts[0]!.status, 200);
  assert.ok(traced[0]!.finishedAtMs! > 0, "kept as succeeded, for the trace");
  assert.deepEqual(batches, [], "no attempt recorded separately");
  assert.equal(engine.inFlight, 0);
});

test("delivery engine - a hand-off sealed before its attempt ends is stored held, then recorded by the engine", async (t) => {
  const { storage, deliveries, batches } = setup(t);
  const sender = gateSender();
  const engine = startEngine(t, deliveries, sender);
  const handOff = engine.handOff([makeDelivery("slow", Date.now())], 20);
  await handOff.settled; // the window passes: the attempt is still in flight
  const [held] = handOff.seal();
  assert.equal(held!.first, undefined);
  assert.ok(held!.heldUntilMs! > Date.now() + LEASE_MARGIN_MS, "leased past its timeout");
  storage.deliveries.commitDispatched("orders", 1, [held!]);
  assert.equal(storage.deliveries.pendingCount(), 1);
  assert.equal(storage.deliveries.due(Date.now(), 10).length, 0, "not due while held");

  sender.answerAll({ status: 200, durationMs: 1 });
  await eventually("the attempt recorded", 2_000, () => storage.deliveries.pendingCount() === 0);
  assert.deepEqual(batches, [["slow"]]);
  assert.equal(sender.held.length, 0, "sent once");
});

test("delivery engine - deliveries sharing an order key go one at a time, and a retry holds the rest", async (t) => {
  const { storage, deliveries } = setup(t);
  const now = Date.now();
  const retry = { ...RETRY, delaysMs: [30] };
  storage.deliveries.enqueue(
    ["e1", "e2", "e3"].map((id) => ({ ...makeDelivery(id, now), retry, orderKey: "replay:r1:orders/r1/hook" })),
  );
  const sender = gateSender();
  startEngine(t, deliveries, sender);
  const sent: string[] = [];
  const answer = async (status: number) => {
    await eventually("a request", 2_000, () => sender.held.length === 1);
    sent.push(sender.held[0]!.request.headers["webhook-id"]!);
    sender.answerAll({ status, durationMs: 1 });
  };
  await answer(503);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(sender.held.length, 0, "e2 waits while e1 waits for its retry");
  await answer(200);
  await answer(200);
  await answer(200);
  assert.deepEqual(sent, ["e1", "e1", "e2", "e3"]);
  await eventually("all recorded", 2_000, () => storage.deliveries.pendingCount() === 0);
});
