/**
 * The meters in a running Relaybus, with real SQLite and a real receiver: publishes derived
 * from the log (and not again after a restart), every push attempt with its retries,
 * replayed deliveries, redriven dead letters, and system buses.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { DAY_MS, publishCheckpointName, type Meter, type UsageRow } from "../../src/log/usage-store.js";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

const RETRY = "{maxAttempts: 5, baseDelayMs: 5, maxDelayMs: 10}";

function rules(receiverUrl: string): Record<string, string> {
  return {
    "orders.yaml": `bus: orders
rules:
  - name: all
    pattern: {source: [shop]}
    targets:
      - id: flaky
        webhook: {url: "${receiverUrl}/flaky"}
        format: data
        retry: ${RETRY}
`,
    "refused.yaml": `bus: refused
rules:
  - name: all
    pattern: {source: [shop]}
    targets:
      - id: picky
        webhook: {url: "${receiverUrl}/picky"}
        format: data
        retry: ${RETRY}
`,
    "replayed.yaml": `bus: replayed
rules:
  - name: all
    pattern: {source: [shop]}
    targets:
      - id: ok
        webhook: {url: "${receiverUrl}/ok"}
        format: data
`,
    "audit.yaml": `bus: audit
system: true
description: the platform's own events
`,
  };
}

async function publish(service: TestService, bus: string, count: number, detail: object = {}): Promise<void> {
  const response = await service.post("/v1/events", {
    Entries: Array.from({ length: count }, (_, n) => ({
      EventBusName: bus,
      Source: "shop",
      DetailType: "created",
      Detail: JSON.stringify({ n, ...detail }),
    })),
  });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { FailedEntryCount: number };
  assert.equal(body.FailedEntryCount, 0);
}

async function until<T>(what: string, get: () => T | Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await get();
    if (done(value)) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Quantity and units of `meter` on `bus` (and target), over the last and next day. */
function usageOf(service: TestService, meter: Meter, bus: string, target?: string): { quantity: number; units: number } {
  const now = Date.now();
  const rows = service.storage.usage.query({
    fromMs: now - DAY_MS,
    toMs: now + DAY_MS,
    groupBy: ["bus", "target", "meter"],
    granularity: "hour",
    limit: 1_000,
  }).rows;
  const mine = rows.filter(
    (r: UsageRow) => r.meter === meter && r.bus === bus && (target === undefined || r.target === target),
  );
  return {
    quantity: mine.reduce((sum, r) => sum + r.quantity, 0),
    units: mine.reduce((sum, r) => sum + r.units, 0),
  };
}

describe("metering", () => {
  let receiver: Receiver;
  let service: TestService;
  let dir: string;

  before(async () => {
    receiver = await createReceiver();
    receiver.always("/picky", { status: 400 });
    dir = mkdtempSync(join(tmpdir(), "relaybus-metering-"));
    service = await startTestService({ rules: rules(receiver.url), dir });
  });
  after(async () => {
    await service.close();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
    await assertNothingOpen(); // the publish meter's timers and the rollup's schedule end with the service
  });

  test("metering - publishes are counted from the log once: per bus, with units, the checkpoint at the log's end", async () => {
    await publish(service, "audit", 3);
    await publish(service, "audit", 1, { pad: "x".repeat(70_000) });
    await service.metering!.catchUp();
    assert.deepEqual(usageOf(service, "publish", "audit"), { quantity: 4, units: 5 });
    assert.equal(service.storage.usage.meterCheckpoint(publishCheckpointName("audit")), 4);
    await service.metering!.catchUp();
    assert.deepEqual(usageOf(service, "publish", "audit"), { quantity: 4, units: 5 }, "a second pass adds nothing");
  });

  test("metering - a system bus is marked in its rule file and through the API, and is metered like any bus", async () => {
    assert.equal(service.registry.isSystemBus("audit"), true);
    assert.equal(service.registry.isSystemBus("orders"), false);
    const created = await service.post("/v1/buses", { name: "platform", system: true });
    assert.equal(created.status, 201);
    assert.equal(((await created.json()) as { system?: boolean }).system, true);
    const plain = await service.post("/v1/buses", { name: "plain" });
    assert.equal(((await plain.json()) as { system?: boolean }).system, undefined);
    const bad = await service.post("/v1/buses", { name: "worse", system: "yes" });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /system/);
    assert.equal(service.registry.isSystemBus("platform"), true);
    const listed = (await (await service.get("/v1/buses")).json()) as { buses: { name: string; system?: boolean }[] };
    assert.deepEqual(
      listed.buses.filter((b) => b.system === true).map((b) => b.name),
      ["audit", "platform"],
    );
    await publish(service, "platform", 2);
    await service.metering!.catchUp();
    assert.deepEqual(usageOf(service, "publish", "platform"), { quantity: 2, units: 2 });
  });

  test("metering - every push attempt counts, retries included: failing twice then succeeding is 3 attempts", async () => {
    receiver.script("/flaky", [{ status: 500 }, { status: 503 }]);
    await publish(service, "orders", 1);
    await receiver.waitFor(3, 10_000, "/flaky");
    const pushes = await until(
      "3 push attempts",
      () => usageOf(service, "push", "orders", "flaky"),
      (u) => u.quantity >= 3,
    );
    assert.deepEqual(pushes, { quantity: 3, units: 3 });
  });

  test("metering - dead-lettered attempts count as pushes; each dead letter redriven counts once on redrive", async () => {
    await publish(service, "refused", 2);
    await until("two dead letters", async () => {
      const answer = await service.get("/v1/dead-letters?bus=refused");
      return ((await answer.json()) as { deadLetters: unknown[] }).deadLetters.length;
    }, (n) => n === 2);
    assert.deepEqual(usageOf(service, "push", "refused"), { quantity: 2, units: 2 });
    const redriven = await service.post("/v1/dead-letters:redrive", { filter: { bus: "refused" }, mode: "original" });
    assert.equal(redriven.status, 200);
    assert.equal(((await redriven.json()) as { redriven: number }).redriven, 2);
    assert.deepEqual(usageOf(service, "redrive", "refused", "picky"), { quantity: 2, units: 2 });
    await until("the redriven attempts", () => usageOf(service, "push", "refused").quantity, (n) => n === 4);
  });

  test("metering - each delivery a replay enqueues counts on replay, and its attempt on push", async () => {
    await publish(service, "replayed", 3);
    await receiver.waitFor(3, 10_000, "/ok");
    const events = await service.storage.log.read("replayed", 0, 10);
    const started = await service.post("/v1/replays", {
      name: "again",
      source: { bus: "replayed" },
      fromTime: new Date(events[0]!.receivedAtMs).toISOString(),
      toTime: events[2]!.receivedAtMs,
      destination: { bus: "replayed" },
    });
    assert.equal(started.status, 201);
    await receiver.waitFor(6, 10_000, "/ok");
    assert.deepEqual(usageOf(service, "replay", "replayed", "ok"), { quantity: 3, units: 3 });
    await until("six pushes", () => usageOf(service, "push", "replayed").quantity, (n) => n === 6);
  });

  test("metering - after a restart the publish meter counts on from its checkpoint, never twice", async () => {
    await publish(service, "orders", 2);
    await service.metering!.catchUp();
    const before = usageOf(service, "publish", "orders");
    assert.ok(before.quantity >= 3);
    await service.close();
    service = await startTestService({ rules: rules(receiver.url), dir });
    await service.metering!.catchUp();
    assert.deepEqual(usageOf(service, "publish", "orders"), before, "nothing counted again");
    await publish(service, "orders", 1);
    await service.metering!.catchUp();
    assert.equal(usageOf(service, "publish", "orders").quantity, before.quantity + 1);
  });
});

test("metering - off: nothing is counted and /v1/usage answers what was there", async () => {
  const receiver = await createReceiver();
  const service = await startTestService({ rules: rules(receiver.url), config: { metering: { enabled: false } } });
  try {
    assert.equal(service.metering, undefined);
    await publish(service, "orders", 2);
    await receiver.waitFor(2, 10_000, "/flaky");
    const answer = await service.get("/v1/usage?groupBy=meter");
    assert.equal(answer.status, 200);
    assert.deepEqual(((await answer.json()) as { rows: unknown[] }).rows, []);
  } finally {
    await service.close();
    await receiver.close();
  }
});
