/**
 * The replay runner on real parts: SQLite storage in a temp dir (with a clock the test sets,
 * so receive times and windows are exact), the rule registry over a real rule file, the
 * archiver. No delivery engine runs: the replay's deliveries stay pending in the store, where
 * the test reads them, and drains them by hand to exercise the runner's backlog bound.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { compileArchivePattern } from "../../src/api/routes/archives-routes.js";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { createArchiver } from "../../src/delivery/archiver.js";
import { deliveryId, replayDeliveryId } from "../../src/delivery/delivery-id.js";
import {
  createReplayRunner,
  type ReplayRunner,
  type ReplayRunnerOptions,
} from "../../src/delivery/replay-runner.js";
import { measureEvent } from "../../src/events/sizing.js";
import type { Delivery } from "../../src/log/log-engine.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/log/sqlite/index.js";
import { createRuleRegistry, type RuleRegistry } from "../../src/rules/rule-registry.js";
import { silentLogger, type CloudEvent } from "../../src/types.js";

const RULES = `bus: orders
rules:
  - name: created
    pattern: {type: [order.created]}
    targets:
      - id: structured
        webhook: {url: "https://receiver.test/structured"}
      - id: aws
        webhook: {url: "https://receiver.test/aws"}
        format: aws
  - name: everything
    pattern: {source: [shop]}
    targets:
      - id: binary
        webhook: {url: "https://receiver.test/binary"}
        format: cloudevents-binary
      - id: shaped
        webhook: {url: "https://receiver.test/shaped"}
        transform: '{"n": data.n, "replay": replayname}'
bus: other
`;

interface Setup {
  storage: SqliteStorage;
  registry: RuleRegistry;
  clock: { now: number; nowMs(): number };
  wakes: { count: number };
  runner(options?: Partial<ReplayRunnerOptions>): ReplayRunner;
  /** Closes the runners, the registry and the storage (for a restart on the same dir). */
  closeAll(): Promise<void>;
  reopen(): Promise<Setup>;
}

async function setup(t: TestContext, dir?: string): Promise<Setup> {
  const root = dir ?? mkdtempSync(join(tmpdir(), "relaybus-replay-runner-"));
  const rulesDir = join(root, "rules");
  mkdirSync(rulesDir, { recursive: true });
  writeFileSync(join(rulesDir, "orders.yaml"), RULES.split("bus: other")[0]!);
  writeFileSync(join(rulesDir, "other.yaml"), "bus: other\nrules: []\n");
  const clock = { now: 1_000_000, nowMs: () => clock.now };
  const storage = openSqliteStorage({
    dataDir: join(root, "data"),
    durability: "fsync-wal-only",
    clock,
  });
  const registry = await createRuleRegistry({
    catalog: storage.catalog,
    rulesDir,
    config: DEFAULT_CONFIG,
    logger: silentLogger,
  });
  const runners: ReplayRunner[] = [];
  const wakes = { count: 0 };
  let closed = false;
  const closeAll = async () => {
    if (closed) return;
    closed = true;
    for (const r of runners) await r.close();
    await registry.close();
    await storage.close();
  };
  if (dir === undefined) {
    t.after(async () => {
      await closeAll();
      rmSync(root, { recursive: true, force: true });
    });
  } else {
    t.after(closeAll);
  }
  const self: Setup = {
    storage,
    registry,
    clock,
    wakes,
    runner(options = {}) {
      const runner = createReplayRunner({
        log: storage.log,
        archives: storage.archives,
        replays: storage.replays,
        deliveries: storage.deliveries,
        router: registry,
        wake: () => wakes.count++,
        clock,
        logger: silentLogger,
        transformTimeoutMs: 100,
        waitMs: 5,
        ...options,
      });
      runners.push(runner);
      return runner;
    },
    closeAll,
    async reopen() {
      await closeAll();
      return setup(t, root);
    },
  };
  return self;
}

function orderEvent(n: number, type = "order.created"): CloudEvent {
  return { specversion: "1.0", id: `e-${n}`, source: "shop", type, data: { n } };
}

/** Appends events to `bus`, received at the clock's current time. */
async function append(s: Setup, events: CloudEvent[], bus = "orders"): Promise<void> {
  await s.storage.log.append(events.map((e) => measureEvent(bus, e)));
}

/** The replay's deliveries still pending, in the order the store holds them (by offset, then target). */
function pendingOf(s: Setup, name: string): Delivery[] {
  return s.storage.deliveries
    .due(Number.MAX_SAFE_INTEGER, 100_000)
    .filter((d) => d.orderKey?.startsWith(`replay:${name}:`) === true)
    .sort((a, b) => a.offset - b.offset || a.targetId.localeCompare(b.targetId));
}

/** Marks every pending delivery of the replay succeeded, as the engine would after a 2xx. */
function drain(s: Setup, name: string): number {
  const pending = pendingOf(s, name);
  s.storage.deliveries.recordAttempts(
    pending.map((d) => ({
      deliveryId: d.id,
      attempt: {
        attempt: 1,
        startedAtMs: s.clock.now,
        durationMs: 1,
        status: 200,
        outcome: "success" as const,
      },
      next: { kind: "succeeded" as const },
    })),
  );
  return pending.length;
}

async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("replay runner - the log window is inclusive at both ends, on when the log received each event", async (t) => {
  const s = await setup(t);
  s.clock.now = 1_000;
  await append(s, [orderEvent(1), orderEvent(2)]);
  s.clock.now = 2_000;
  await append(s, [orderEvent(3), orderEvent(4)]);
  s.clock.now = 3_000;
  await append(s, [orderEvent(5)]);
  s.clock.now = 4_000;
  await append(s, [orderEvent(6)]);
  s.clock.now = 10_000;
  const runner = s.runner();
  const started = await runner.start({
    name: "middle",
    source: { bus: "orders" },
    fromMs: 2_000,
    toMs: 3_000,
    destination: { bus: "orders", rule: "created", targetId: "structured" },
  });
  assert.equal(started.total, 3, "events 3, 4 and 5");
  assert.equal(started.endOffset, 5);
  await runner.whenIdle();
  const done = s.storage.replays.get("middle")!;
  assert.equal(done.state, "completed");
  assert.equal(done.replayed, 3);
  assert.equal(done.endedAtMs, 10_000);
  assert.deepEqual(
    pendingOf(s, "middle").map((d) => d.eventId),
    ["e-3", "e-4", "e-5"],
  );
  assert.ok(s.wakes.count > 0, "delivery was woken");

  // A window between two commits holds nothing and completes at once.
  const empty = await runner.start({
    name: "gap",
    source: { bus: "orders" },
    fromMs: 2_001,
    toMs: 2_999,
    destination: { bus: "orders" },
  });
  assert.equal(empty.total, 0);
  await runner.whenIdle();
  assert.equal(s.storage.replays.get("gap")!.state, "completed");
  assert.equal(pendingOf(s, "gap").length, 0);
});

test("replay runner - the log finds the first offset received at or after a time by offset", async (t) => {
  const s = await setup(t);
  for (const [index, time] of [100, 100, 200, 300, 300, 300, 500].entries()) {
    s.clock.now = time;
    await append(s, [orderEvent(index + 1)]);
  }
  const first = (ms: number) => s.storage.log.firstOffsetReceivedFrom("orders", ms);
  assert.equal(await first(0), 1);
  assert.equal(await first(100), 1);
  assert.equal(await first(101), 3);
  assert.equal(await first(300), 4);
  assert.equal(await first(301), 7);
  assert.equal(await first(501), undefined);
  assert.equal(await s.storage.log.firstOffsetReceivedFrom("nobody", 0), undefined);
});

test("replay runner - the destination picks the bus's rules, one rule, or one target, and patterns still apply", async (t) => {
  const s = await setup(t);
  await append(s, [orderEvent(1), orderEvent(2, "order.cancelled"), orderEvent(3)]);
  s.clock.now += 1;
  const runner = s.runner();
  const window = { source: { bus: "orders" }, fromMs: 0, toMs: s.clock.now };
  await runner.start({ name: "bus", ...window, destination: { bus: "orders" } });
  await runner.start({ name: "rule", ...window, destination: { bus: "orders", rule: "created" } });
  await runner.start({
    name: "target",
    ...window,
    destination: { bus: "orders", rule: "everything", targetId: "binary" },
  });
  await runner.start({ name: "elsewhere", ...window, destination: { bus: "other" } });
  await runner.whenIdle();

  const shape = (name: string) =>
    pendingOf(s, name).map((d) => `${d.offset}:${d.rule}/${d.targetId}`);
  assert.deepEqual(shape("bus"), [
    "1:created/aws",
    "1:everything/binary",
    "1:everything/shaped",
    "1:created/structured",
    "2:everything/binary",
    "2:everything/shaped",
    "3:created/aws",
    "3:everything/binary",
    "3:everything/shaped",
    "3:created/structured",
  ]);
  assert.deepEqual(shape("rule"), [
    "1:created/aws",
    "1:created/structured",
    "3:created/aws",
    "3:created/structured",
  ]);
  assert.deepEqual(shape("target"), [
    "1:everything/binary",
    "2:everything/binary",
    "3:everything/binary",
  ]);
  assert.deepEqual(shape("elsewhere"), [], "the other bus has no rules");
  const elsewhere = s.storage.replays.get("elsewhere")!;
  assert.equal(elsewhere.state, "completed");
  assert.equal(elsewhere.replayed, 3);
  assert.equal(elsewhere.deliveries, 0);
  assert.equal(s.storage.replays.get("bus")!.deliveries, 10);
});

test("replay runner - each delivery is marked, ordered by target, and has an id of its own", async (t) => {
  const s = await setup(t);
  await append(s, [orderEvent(1), orderEvent(2)]);
  s.clock.now = 5_000_000;
  const runner = s.runner();
  await runner.start({
    name: "marked",
    source: { bus: "orders" },
    fromMs: 0,
    toMs: s.clock.now,
    destination: { bus: "orders" },
  });
  await runner.whenIdle();
  const deliveries = pendingOf(s, "marked");
  assert.equal(deliveries.length, 8);
  for (const d of deliveries) {
    const original = deliveryId("orders", d.offset, d.eventId, d.rule, d.targetId);
    assert.equal(d.id, replayDeliveryId("marked", original));
    assert.notEqual(d.id, original, "not the original delivery's id");
    assert.equal(d.orderKey, `replay:marked:orders/${d.rule}/${d.targetId}`);
    assert.equal(d.request.headers["relaybus-replay"], "marked");
    assert.equal(d.request.headers["webhook-id"], d.id);
    assert.equal(d.eventReceivedAtMs, 5_000_000, "max age counts from the hand-over");
  }
  const of = (target: string) => deliveries.find((d) => d.targetId === target && d.offset === 1)!;
  const structured = JSON.parse(of("structured").request.body) as CloudEvent;
  assert.equal(structured.replayname, "marked");
  assert.equal(structured.id, "e-1", "the event keeps its id");
  const aws = JSON.parse(of("aws").request.body) as Record<string, unknown>;
  assert.equal(aws["replay-name"], "marked");
  assert.equal(aws.id, "e-1");
  assert.equal(of("binary").request.headers["ce-replayname"], "marked");
  assert.deepEqual(JSON.parse(of("shaped").request.body), { n: 1, replay: "marked" });
});

test("replay runner - an archive source replays only what the archive kept", async (t) => {
  const s = await setup(t);
  await append(s, [orderEvent(1)]); // before the archive: not archived
  const archive = s.storage.archives.create(
    {
      name: "created-only",
      bus: "orders",
      pattern: { "detail-type": ["order.created"] },
      retentionDays: 0,
    },
    await s.storage.log.lastOffset("orders"),
    s.clock.now,
  );
  const archiver = createArchiver({
    log: s.storage.log,
    archives: s.storage.archives,
    compilePattern: (p) => compileArchivePattern(p, DEFAULT_CONFIG),
    logger: silentLogger,
  });
  t.after(() => archiver.close());
  await append(s, [orderEvent(2), orderEvent(3, "order.cancelled"), orderEvent(4)]);
  await until("the archiver", () => s.storage.archives.get("created-only")!.throughOffset === 4);
  await archiver.whenIdle();
  assert.equal(s.storage.archives.get("created-only")!.eventCount, 2);

  const runner = s.runner();
  const started = await runner.start({
    name: "from-archive",
    source: { archive: archive.name },
    fromMs: 0,
    toMs: s.clock.now,
    destination: { bus: "orders", rule: "everything", targetId: "binary" },
  });
  assert.equal(started.total, 2);
  await runner.whenIdle();
  assert.deepEqual(
    pendingOf(s, "from-archive").map((d) => d.eventId),
    ["e-2", "e-4"],
  );
  assert.equal(s.storage.replays.get("from-archive")!.state, "completed");
});

test("replay runner - waits while too many of its deliveries are pending, and cancel stops it after the batch", async (t) => {
  const s = await setup(t);
  await append(
    s,
    Array.from({ length: 100 }, (_, i) => orderEvent(i + 1)),
  );
  s.clock.now += 1;
  const runner = s.runner({ batchSize: 10, maxPendingDeliveries: 25 });
  await runner.start({
    name: "bounded",
    source: { bus: "orders" },
    fromMs: 0,
    toMs: s.clock.now,
    destination: { bus: "orders", rule: "created", targetId: "structured" },
  });
  const replayed = () => s.storage.replays.get("bounded")!.replayed;
  await until("three batches", () => replayed() === 30);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(replayed(), 30, "no fourth batch while 30 deliveries are pending (bound 25)");
  assert.equal(s.storage.replays.pendingDeliveries("bounded"), 30);
  assert.equal(s.storage.replays.lowestPosition("orders"), 30, "log retention keeps what it has not read");

  assert.equal(drain(s, "bounded"), 30);
  assert.equal(s.storage.replays.pendingDeliveries("bounded"), 0);
  await until("three more batches", () => replayed() === 60);

  const cancelled = runner.cancel("bounded");
  assert.equal(cancelled.state, "cancelled");
  assert.ok(cancelled.endedAtMs !== undefined);
  drain(s, "bounded");
  await runner.whenIdle();
  assert.equal(replayed(), 60, "nothing after the cancel");
  assert.equal(s.storage.replays.get("bounded")!.state, "cancelled");
  assert.equal(runner.cancel("bounded").state, "cancelled", "cancelling again changes nothing");
  assert.throws(() => runner.cancel("nope"), { code: "ReplayNotFound" });
});

test("replay runner - resumes after a restart from its last offset, without new delivery ids", async (t) => {
  let s = await setup(t);
  await append(
    s,
    Array.from({ length: 100 }, (_, i) => orderEvent(i + 1)),
  );
  s.clock.now += 1;
  const toMs = s.clock.now;
  await s.runner({ batchSize: 10, maxPendingDeliveries: 25 }).start({
    name: "resumed",
    source: { bus: "orders" },
    fromMs: 0,
    toMs,
    destination: { bus: "orders", rule: "created" },
  });
  // Two targets per event: the bound (25) stops it after two batches (40 pending).
  await until("two batches", () => s.storage.replays.get("resumed")!.replayed === 20);

  s = await s.reopen();
  const before = s.storage.replays.get("resumed")!;
  assert.equal(before.state, "running");
  assert.equal(before.lastOffset, 20);
  s.runner({ batchSize: 10 });
  await until("completion", () => s.storage.replays.get("resumed")!.state === "completed");
  const after = s.storage.replays.get("resumed")!;
  assert.equal(after.replayed, 100);
  assert.equal(after.deliveries, 200);
  const stored = s.storage.stateDatabase
    .prepare(
      "SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids FROM deliveries WHERE order_key LIKE 'replay:resumed:%'",
    )
    .get() as { n: number; ids: number };
  assert.deepEqual(stored, { n: 200, ids: 200 });
});

test("replay runner - a replay whose archive is deleted fails, naming it", async (t) => {
  const s = await setup(t);
  const archive = s.storage.archives.create(
    { name: "short-lived", bus: "orders", retentionDays: 0 },
    0,
    s.clock.now,
  );
  const events = Array.from({ length: 30 }, (_, i) => measureEvent("orders", orderEvent(i + 1)));
  const stored = await s.storage.log.append(events);
  assert.ok(s.storage.archives.commitArchived(archive.id, 30, stored));
  const runner = s.runner({ batchSize: 10, maxPendingDeliveries: 5 });
  await runner.start({
    name: "orphaned",
    source: { archive: "short-lived" },
    fromMs: 0,
    toMs: s.clock.now,
    destination: { bus: "orders", rule: "everything", targetId: "binary" },
  });
  await until("the first batch", () => s.storage.replays.get("orphaned")!.replayed === 10);
  assert.ok(s.storage.archives.delete("short-lived"));
  drain(s, "orphaned");
  await runner.whenIdle();
  const failed = s.storage.replays.get("orphaned")!;
  assert.equal(failed.state, "failed");
  assert.match(failed.error ?? "", /archive "short-lived" was deleted/);
  assert.equal(failed.replayed, 10);
  assert.equal(
    s.storage.replays.lowestPosition("orders"),
    undefined,
    "a failed replay holds no log back",
  );
});

test("replay runner - start refuses an unknown archive and a name already used", async (t) => {
  const s = await setup(t);
  const runner = s.runner();
  await assert.rejects(
    runner.start({
      name: "x",
      source: { archive: "nope" },
      fromMs: 0,
      toMs: 1,
      destination: { bus: "orders" },
    }),
    { code: "ArchiveNotFound" },
  );
  await runner.start({
    name: "once",
    source: { bus: "orders" },
    fromMs: 0,
    toMs: 1,
    destination: { bus: "orders" },
  });
  await assert.rejects(
    runner.start({
      name: "once",
      source: { bus: "orders" },
      fromMs: 0,
      toMs: 1,
      destination: { bus: "orders" },
    }),
    { code: "ReplayAlreadyExists" },
  );
});
