import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { createDeliveryEngine, type DeliveryEngine } from "../../src/delivery/delivery-engine.js";
import { deliveryId } from "../../src/delivery/delivery-id.js";
import { createDispatcher, type Dispatcher } from "../../src/delivery/dispatcher.js";
import type { RoutedTarget, Router } from "../../src/delivery/router.js";
import { createWebhookSender, type WebhookSender } from "../../src/delivery/webhook-sender.js";
import type { RetryPolicy, Storage } from "../../src/log/log-engine.js";
import { openSqliteStorage } from "../../src/log/sqlite/index.js";
import { compileTransform } from "../../src/transform/compile-transform.js";
import { silentLogger, systemClock, type Clock, type CloudEvent, type StoredEvent, type TargetFormat } from "../../src/types.js";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";

const LOOPBACK_ALLOWED = { ...DEFAULT_CONFIG.delivery.outbound, allowLoopback: true };

const BUS = "orders";
const FAST_RETRY: RetryPolicy = { maxAttempts: 5, maxAgeSeconds: 3_600, baseDelayMs: 20, factor: 2, maxDelayMs: 100 };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
interface Delivering {
  storage: Storage;
  sender: WebhookSender;
  engine: DeliveryEngine;
  dispatcher: Dispatcher;
  close(): Promise<void>;
}

/** Storage, sender, engine and dispatcher over one data directory, closed in the right order. */
function startDelivering(
  dataDir: string,
  router: Router,
  options: { closeTimeoutMs?: number; clock?: Clock; random?: () => number; handOffWindowMs?: number } = {},
): Delivering {
  const storage = openSqliteStorage({ dataDir, durability: "fsync-wal-only" });
  // The receiver is on 127.0.0.1, which the default outbound policy refuses.
  const sender = createWebhookSender({ connectionsPerOrigin: 8, logger: silentLogger, closeTimeoutMs: 200, outbound: LOOPBACK_ALLOWED });
  const engine = createDeliveryEngine({
    deliveries: storage.deliveries,
    sender,
    clock: options.clock ?? systemClock,
    logger: silentLogger,
    maxInFlight: 16,
    random: options.random,
    closeTimeoutMs: options.closeTimeoutMs ?? 2_000,
  });
  const dispatcher = createDispatcher({
    log: storage.log,
    deliveries: storage.deliveries,
    router,
    engine,
    listBuses: () => [BUS],
    clock: options.clock ?? systemClock,
    failureBackoffMs: 50,
    logger: silentLogger,
    transformTimeoutMs: 100,
    batchSize: 50,
    ...(options.handOffWindowMs === undefined ? {} : { handOffWindowMs: options.handOffWindowMs }),
  });
  let closed = false;
  return {
    storage,
    sender,
    engine,
    dispatcher,
    async close() {
      if (closed) return;
      closed = true;
      await dispatcher.close();
      await engine.close();
      await sender.close();
      await storage.close();
    },
  };
}

/** A temp dir and a receiver, both cleaned up (and checked for leaks) after the test. */
async function setup(t: TestContext): Promise<{ dataDir: string; receiver: Receiver; track(d: Delivering): Delivering }> {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-delivery-"));
  const receiver = await createReceiver();
  const running: Delivering[] = [];
  t.after(async () => {
    for (const d of running.reverse()) await d.close();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
    await assertNothingOpen();
  });
  return {
    dataDir: join(dir, "data"),
    receiver,
    track(d) {
      running.push(d);
      return d;
    },
  };
}

function target(receiver: Receiver, path: string, format: TargetFormat = "cloudevents-structured", extra: Partial<RoutedTarget> = {}): RoutedTarget {
  return { rule: "r1", targetId: path.slice(1), url: `${receiver.url}${path}`, headers: {}, timeoutMs: 2_000, format, retry: FAST_RETRY, ...extra };
}

/** A Router is an interface at the seam; its real implementation lives in src/rules. */
function routeAllTo(...targets: RoutedTarget[]): Router {
  return { route: (bus) => (bus === BUS ? targets : []) };
}

async function publish(storage: Storage, count: number, data: Record<string, unknown> = {}): Promise<StoredEvent[]> {
  const events = [];
  for (let i = 0; i < count; i++) {
    const event: CloudEvent = { specversion: "1.0", id: `evt-${Date.now()}-${i}-${Math.random()}`, source: "shop", type: "order.created", data: { n: i, ...data } as CloudEvent["data"] };
    const json = JSON.stringify(event);
    events.push({ bus: BUS, event, json, sizeBytes: Buffer.byteLength(json), units: 1 });
  }
  return storage.log.append(events);
}

async function eventually<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test("delivery - a 500-then-200 target gets the same webhook-id on every attempt", async (t) => {
  const { dataDir, receiver, track } = await setup(t);
  receiver.script("/flaky", [{ status: 500 }, { status: 503, body: "busy" }]);
  const d = track(startDelivering(dataDir, routeAllTo(target(receiver, "/flaky"))));
  const [stored] = await publish(d.storage, 1);
  const requests = await receiver.waitFor(3, 5_000, "/flaky");
  const expectedId = deliveryId(BUS, stored!.offset, stored!.event.id, "r1", "flaky");
  assert.match(expectedId, UUID);
  assert.deepEqual(requests.map((r) => r.headers["webhook-id"]), [expectedId, expectedId, expectedId]);
  assert.ok(requests.every((r) => r.body === stored!.json));
  assert.ok(requests.every((r) => /^\d+$/.test(String(r.headers["webhook-timestamp"]))));
  assert.equal(requests[0]!.headers["user-agent"], "Relaybus/0.1.0");
  await eventually("the delivery to finish", 2_000, () => (d.storage.deliveries.pendingCount() === 0 ? true : undefined));
  assert.equal(d.storage.deliveries.listDeadLetters({}).length, 0);
  assert.equal(receiver.requestsTo("/flaky").length, 3);
});

test("delivery - a 400 target goes straight to the dead letters with its payload and attempt", async (t) => {
  const { dataDir, receiver, track } = await setup(t);
  receiver.always("/strict", { status: 400, body: "field total is required" });
  const d = track(startDelivering(dataDir, routeAllTo(target(receiver, "/strict", "data"))));
  const [stored] = await publish(d.storage, 1);
  const dead = await eventually("a dead letter", 5_000, () => d.storage.deliveries.listDeadLetters({ bus: BUS })[0]);
  assert.equal(dead.eventId, stored!.event.id);
  assert.equal(dead.targetId, "strict");
  assert.match(dead.reason, /permanent failure on attempt 1: HTTP 400: field total is required/);
  assert.equal(dead.request.body, JSON.stringify(stored!.event.data));
  assert.equal(dead.attempts.length, 1);
  assert.equal(dead.attempts[0]!.status, 400);
  assert.equal(dead.attempts[0]!.outcome, "permanent");
  assert.equal(d.storage.deliveries.pendingCount(), 0);
  assert.equal(receiver.requestsTo("/strict").length, 1);
});

test("delivery - a transform that throws dead-letters with the reason while the other targets get theirs", async (t) => {
  const { dataDir, receiver, track } = await setup(t);
  const limits = { maxTransformBytes: 8_192 };
  const failing = target(receiver, "/broken", "transform", { transform: compileTransform('$error("no order id")', limits) });
  const working = target(receiver, "/shaped", "transform", { transform: compileTransform('{"orderNo": data.n}', limits) });
  const plain = target(receiver, "/plain", "aws");
  const d = track(startDelivering(dataDir, routeAllTo(failing, working, plain)));
  const [stored] = await publish(d.storage, 1, { total: 5 });
  const [shaped] = await receiver.waitFor(1, 5_000, "/shaped");
  const [aws] = await receiver.waitFor(1, 5_000, "/plain");
  assert.equal(shaped!.body, '{"orderNo":0}');
  assert.equal(JSON.parse(aws!.body)["detail-type"], "order.created");
  const dead = await eventually("a dead letter", 2_000, () => d.storage.deliveries.listDeadLetters({ targetId: "broken" })[0]);
  assert.match(dead.reason, /transform failed: .*no order id/);
  assert.equal(dead.request.body, stored!.json, "the payload kept is the event");
  assert.equal(dead.attempts.length, 0);
  assert.equal(receiver.requestsTo("/broken").length, 0);
  // The batch is committed once its first attempts ended, just after the receiver answered.
  await eventually("the checkpoint", 5_000, () => (d.storage.deliveries.checkpoint(BUS) === stored!.offset ? true : undefined));
});

test("delivery - a transform over its budget dead-letters instead of stalling the bus", async (t) => {
  const { dataDir, receiver, track } = await setup(t);
  const slow = target(receiver, "/slow", "transform", {
    transform: compileTransform("($f := function($n){ $n > 0 ? $f($n - 1) + $f($n - 1) : 0 }; $f(40))", { maxTransformBytes: 8_192 }),
  });
  const d = track(startDelivering(dataDir, routeAllTo(slow, target(receiver, "/ok"))));
  await publish(d.storage, 2);
  await receiver.waitFor(2, 5_000, "/ok");
  const dead = await eventually("two dead letters", 5_000, () => {
    const found = d.storage.deliveries.listDeadLetters({ targetId: "slow" });
    return found.length === 2 ? found : undefined;
  });
  assert.ok(dead.every((l) => /transform failed: .*exceeded 100 ms/.test(l.reason)), dead.map((l) => l.reason).join("; "));
});

test("delivery - a hanging target does not delay a healthy one", async (t) => {
  const { dataDir, receiver, track } = await setup(t);
  receiver.always("/hang", "hang");
  // The hang lasts far longer than the margins below, so a busy CI machine cannot blur the
  // difference between "sent at once" and "queued behind a hanging request".
  const hangMs = 5_000;
  const hanging = target(receiver, "/hang", "cloudevents-structured", { timeoutMs: hangMs });
  const d = track(startDelivering(dataDir, routeAllTo(hanging, target(receiver, "/healthy", "cloudevents-binary"))));
  const started = Date.now();
  await publish(d.storage, 5);
  const healthy = await receiver.waitFor(5, 3_000, "/healthy");
  assert.ok(Date.now() - started < 3_000, `healthy target waited ${Date.now() - started} ms`);
  assert.equal(healthy[0]!.headers["ce-type"], "order.created");
  // The hanging requests are in flight at the same time, not queued behind each other:
  // five arriving well within one hang means none waited on another.
  const hung = await receiver.waitFor(5, 3_000, "/hang");
  assert.ok(hung.at(-1)!.atMs - started < 3_000, `last hanging request arrived after ${hung.at(-1)!.atMs - started} ms`);
  assert.ok(d.engine.inFlight >= 5, `in flight: ${d.engine.inFlight}`);
  // Each then ends as a timeout and is rescheduled, not lost.
  const retried = await eventually("timeouts recorded", hangMs + 10_000, () => {
    const pending = d.storage.deliveries.due(Number.MAX_SAFE_INTEGER, 10);
    return pending.length === 5 && pending.every((p) => p.attempts.length >= 1) ? pending : undefined;
  });
  assert.equal(retried[0]!.attempts[0]!.outcome, "retryable");
  assert.match(retried[0]!.attempts[0]!.error ?? "", /^timeout: /);
});

test("delivery - the dispatcher reads no further ahead than two batches waiting in the engine", async (t) => {
  const { dataDir, receiver, track } = await setup(t);
  receiver.always("/hang", "hang");
  // A target that takes nothing in: what the dispatcher hands over stays queued in the engine.
  // No batch is committed (which would let the dispatcher go on reading) before the first
  // attempts time out, 4 s on: the checks below come well before, even on a slow machine.
  const hang = target(receiver, "/hang", "cloudevents-structured", { timeoutMs: 4_000 });
  const d = track(startDelivering(dataDir, routeAllTo(hang), { handOffWindowMs: 4_000, closeTimeoutMs: 200 }));
  await publish(d.storage, 400);
  await receiver.waitFor(8, 3_000, "/hang"); // the sender's 8 connections; 8 more wait for one
  // Batches are 50 events: reading up to 8 batches ahead would queue 400 - 16 in flight = 384.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(d.engine.inFlight, 16);
  assert.ok(d.engine.queued <= 3 * 50, `queued in the engine: ${d.engine.queued}`);
});

test("delivery - an explicit delay list spaces the retries exactly so, then gives up at maxAttempts", async (t) => {
  const { dataDir, receiver, track } = await setup(t);
  receiver.always("/down", { status: 503 });
  const retry = { ...FAST_RETRY, maxAttempts: 4, maxDelayMs: 5_000, delaysMs: [300, 900] };
  const d = track(startDelivering(dataDir, routeAllTo(target(receiver, "/down", "data", { retry }))));
  await publish(d.storage, 1);
  const attempts = await receiver.waitFor(4, 8_000, "/down");
  const gaps = attempts.slice(1).map((a, i) => a.atMs - attempts[i]!.atMs);
  // 300, then 900, then the last delay again; the dispatcher's timers may add a little.
  [300, 900, 900].forEach((expected, i) => {
    assert.ok(gaps[i]! >= expected - 20 && gaps[i]! < expected + 600, `gap ${i + 1}: ${gaps[i]} ms, expected ${expected}`);
  });
  const [dead] = await eventually("the dead letter", 3_000, () => {
    const letters = d.storage.deliveries.listDeadLetters({});
    return letters.length === 1 ? letters : undefined;
  });
  assert.match(dead!.reason, /gave up after 4 attempts/);
  assert.deepEqual(dead!.retry.delaysMs, [300, 900]);
});

test("delivery - 429 with Retry-After waits that long before the next attempt", async (t) => {
  const { dataDir, receiver, track } = await setup(t);
  receiver.script("/limited", [{ status: 429, headers: { "retry-after": "1" } }]);
  const retry = { ...FAST_RETRY, maxDelayMs: 5_000 };
  const d = track(startDelivering(dataDir, routeAllTo(target(receiver, "/limited", "data", { retry }))));
  await publish(d.storage, 1);
  const [first, second] = await receiver.waitFor(2, 5_000, "/limited");
  const gapMs = second!.atMs - first!.atMs;
  assert.ok(gapMs >= 950, `second attempt came after ${gapMs} ms`);
  assert.ok(gapMs < 3_000, `second attempt came after ${gapMs} ms`);
});

test("delivery - events no rule matches move the checkpoint without deliveries", async (t) => {
  const { dataDir, track } = await setup(t);
  const d = track(startDelivering(dataDir, { route: () => [] }));
  const stored = await publish(d.storage, 500);
  await eventually("the checkpoint", 5_000, () => (d.storage.deliveries.checkpoint(BUS) === stored.at(-1)!.offset ? true : undefined));
  await d.dispatcher.whenIdle();
  assert.equal(d.storage.deliveries.pendingCount(), 0);
});

test("delivery - a backlog no rule matches is read in a few turns of the event loop, not one batch a turn", async (t) => {
  // Under ingest load a turn of the event loop takes in hundreds of events. A dispatcher that
  // read one batch a turn fell behind the log's in-memory tail and read everything back from
  // SQLite; it now reads on for up to a millisecond when batches make no deliveries.
  const { dataDir } = await setup(t);
  const storage = openSqliteStorage({ dataDir, durability: "fsync-wal-only" });
  t.after(() => storage.close());
  const stored = await publish(storage, 1_000);
  const last = stored.at(-1)!.offset;
  const dispatcher = createDispatcher({
    log: storage.log,
    deliveries: storage.deliveries,
    router: { route: () => [] },
    listBuses: () => [],
    clock: systemClock,
    logger: silentLogger,
    transformTimeoutMs: 100,
    batchSize: 10,
  });
  t.after(() => dispatcher.close());
  let turns = 0;
  dispatcher.wake(BUS);
  while (storage.deliveries.checkpoint(BUS) !== last) {
    assert.ok(turns < 1_000, "the dispatcher never reached the end of the log");
    await new Promise((resolve) => setImmediate(resolve));
    turns++;
  }
  // 100 batches: one a turn took 100 turns.
  assert.ok(turns < 50, `took ${turns} turns of the event loop`);
});

test("delivery - a restart resumes pending deliveries and never loses one", async (t) => {
  const { dataDir, receiver, track } = await setup(t);
  receiver.always("/down", { status: 503 });
  const router = routeAllTo(target(receiver, "/down", "cloudevents-structured", { retry: { ...FAST_RETRY, maxAttempts: 100 } }));
  const first = track(startDelivering(dataDir, router));
  const before = await publish(first.storage, 20);
  await receiver.waitFor(20, 5_000, "/down");
  await first.close();
  assert.equal(first.engine.inFlight, 0);

  // Events appended while nothing dispatches are caught up on at start.
  const reopened = openSqliteStorage({ dataDir, durability: "fsync-wal-only" });
  assert.equal(reopened.deliveries.pendingCount(), 20);
  const during = await publish(reopened, 10);
  await reopened.close();

  receiver.always("/down", { status: 200 });
  const switchedAtMs = Date.now();
  const second = track(startDelivering(dataDir, router));
  await eventually("every delivery to finish", 10_000, () =>
    second.storage.deliveries.pendingCount() === 0 && second.storage.deliveries.checkpoint(BUS) === 30 ? true : undefined,
  );
  const expected = new Set([...before, ...during].map((e) => deliveryId(BUS, e.offset, e.event.id, "r1", "down")));
  const answered200 = new Set(
    receiver.requestsTo("/down").filter((r) => r.atMs >= switchedAtMs).map((r) => String(r.headers["webhook-id"])),
  );
  assert.equal(expected.size, 30);
  for (const id of expected) assert.ok(answered200.has(id), `delivery ${id} was never sent`);
  assert.equal(second.storage.deliveries.listDeadLetters({}).length, 0);
});

test("delivery - gives up after maxAttempts and keeps every attempt", async (t) => {
  const { dataDir, receiver, track } = await setup(t);
  receiver.always("/down", { status: 502 });
  const retry = { ...FAST_RETRY, maxAttempts: 3 };
  const d = track(startDelivering(dataDir, routeAllTo(target(receiver, "/down", "aws", { retry }))));
  await publish(d.storage, 1);
  const dead = await eventually("a dead letter", 5_000, () => d.storage.deliveries.listDeadLetters({})[0]);
  assert.match(dead.reason, /gave up after 3 attempts \(maxAttempts 3\): HTTP 502/);
  assert.deepEqual(dead.attempts.map((a) => [a.attempt, a.status, a.outcome]), [
    [1, 502, "retryable"],
    [2, 502, "retryable"],
    [3, 502, "retryable"],
  ]);
  assert.equal(receiver.requestsTo("/down").length, 3);
});

test("delivery - gives up when the next attempt would be past the event's max age", async (t) => {
  const { dataDir, receiver, track } = await setup(t);
  receiver.always("/down", { status: 503 });
  // The engine's clock runs 59.99 s ahead of the log's: the event is nearly 60 s old at its
  // first attempt, and a retry 20-40 ms later (random 0.99) would be past maxAgeSeconds 60.
  const ahead: Clock = { nowMs: () => Date.now() + 59_990 };
  const retry = { ...FAST_RETRY, maxAgeSeconds: 60, baseDelayMs: 40 };
  const d = track(startDelivering(dataDir, routeAllTo(target(receiver, "/down", "data", { retry })), { clock: ahead, random: () => 0.99 }));
  await publish(d.storage, 1);
  const dead = await eventually("a dead letter", 5_000, () => d.storage.deliveries.listDeadLetters({})[0]);
  assert.match(dead.reason, /gave up after 1 attempts: the next one would be past the event's max age of 60 s: HTTP 503/);
  assert.equal(dead.attempts.length, 1);
  assert.equal(receiver.requestsTo("/down").length, 1);
});

test("delivery - a router failure stops the bus and retries it, skipping nothing", async (t) => {
  const { dataDir, receiver, track } = await setup(t);
  const healthy = target(receiver, "/ok");
  let failuresLeft = 2;
  const router: Router = {
    route: (bus) => {
      if (failuresLeft > 0) {
        failuresLeft--;
        throw new Error("rules are reloading");
      }
      return bus === BUS ? [healthy] : [];
    },
  };
  const d = track(startDelivering(dataDir, router));
  const stored = await publish(d.storage, 3);
  const requests = await receiver.waitFor(3, 5_000, "/ok");
  assert.equal(failuresLeft, 0);
  assert.deepEqual(
    requests.map((r) => JSON.parse(r.body).id).sort(),
    stored.map((e) => e.event.id).sort(),
  );
  await eventually("the checkpoint", 5_000, () => (d.storage.deliveries.checkpoint(BUS) === stored.at(-1)!.offset ? true : undefined));
});
