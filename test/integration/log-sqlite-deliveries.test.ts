import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { isRelaybusError } from "../../src/errors.js";
import type { AttemptRecord, NewDelivery } from "../../src/log/log-engine.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/log/sqlite/index.js";

const RETRY = { maxAttempts: 3, maxAgeSeconds: 60, baseDelayMs: 100, factor: 2, maxDelayMs: 1_000 };

function makeDelivery(id: string, overrides: Partial<NewDelivery> = {}): NewDelivery {
  return {
    id,
    bus: "orders",
    offset: 1,
    eventId: `event-${id}`,
    rule: "big-orders",
    targetId: "fulfilment",
    request: {
      url: "https://example.test/hook",
      headers: { "content-type": "application/json", "webhook-id": id },
      body: JSON.stringify({ id, total: 120 }),
      timeoutMs: 10_000,
    },
    retry: RETRY,
    eventReceivedAtMs: 1_000,
    createdAtMs: 2_000,
    ...overrides,
  };
}

function attempt(n: number, outcome: AttemptRecord["outcome"], status?: number): AttemptRecord {
  return {
    attempt: n,
    startedAtMs: 2_000 + n,
    durationMs: 12,
    outcome,
    ...(status === undefined ? {} : { status }),
    ...(outcome === "success" ? {} : { error: `HTTP ${status ?? "timeout"}` }),
  };
}

/** A clock the test moves by hand, a temp dir, and every opened storage closed afterwards. */
function tempStorage(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-deliveries-"));
  const clock = { now: 10_000, nowMs: () => clock.now };
  const opened: SqliteStorage[] = [];
  t.after(async () => {
    for (const storage of opened) await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const open = () => {
    const storage = openSqliteStorage({
      dataDir: join(dir, "data"),
      durability: "fsync",
      clock,
    });
    opened.push(storage);
    return storage;
  };
  return { clock, open };
}

test("deliveries - commitDispatch records pending deliveries and moves the checkpoint, durably", async (t) => {
  const temp = tempStorage(t);
  const storage = temp.open();
  assert.equal(storage.deliveries.checkpoint("orders"), 0);
  storage.deliveries.commitDispatch("orders", 7, [
    makeDelivery("d1"),
    makeDelivery("d2", { offset: 7 }),
  ]);
  storage.deliveries.commitDispatch("payments", 3, []);
  assert.equal(storage.deliveries.checkpoint("orders"), 7);
  assert.equal(storage.deliveries.pendingCount(), 2);
  await storage.close();

  const reopened = temp.open();
  assert.equal(reopened.deliveries.checkpoint("orders"), 7);
  assert.equal(reopened.deliveries.checkpoint("payments"), 3);
  const [first] = reopened.deliveries.due(Number.MAX_SAFE_INTEGER, 10);
  assert.deepEqual(first, { ...makeDelivery("d1"), attempts: [], nextAttemptAtMs: 2_000 });
});

test("deliveries - a failed commitDispatch stores no delivery and keeps the checkpoint", async (t) => {
  const storage = tempStorage(t).open();
  const { deliveries, stateDatabase: database } = storage;
  deliveries.commitDispatch("orders", 1, [makeDelivery("d1")]);
  database.pragma(`max_page_count = ${database.pragma("page_count", { simple: true }) as number}`);

  const big = (id: string) =>
    makeDelivery(id, {
      offset: 2,
      request: { ...makeDelivery(id).request, body: "x".repeat(100_000) },
    });
  assert.throws(
    () => deliveries.commitDispatch("orders", 2, [makeDelivery("d2", { offset: 2 }), big("d3")]),
    (error: unknown) => isRelaybusError(error, "ServiceUnavailable"),
  );
  assert.equal(deliveries.checkpoint("orders"), 1);
  assert.equal(deliveries.pendingCount(), 1);
  assert.equal(deliveries.due(Number.MAX_SAFE_INTEGER, 10).length, 1);

  database.pragma("max_page_count = 1073741823");
  deliveries.commitDispatch("orders", 2, [makeDelivery("d2", { offset: 2 }), big("d3")]);
  assert.equal(deliveries.checkpoint("orders"), 2);
  assert.equal(deliveries.pendingCount(), 3);
});

test("deliveries - the checkpoint never moves back", (t) => {
  const { deliveries } = tempStorage(t).open();
  deliveries.commitDispatch("orders", 5, []);
  assert.throws(
    () => deliveries.commitDispatch("orders", 4, [makeDelivery("late")]),
    /cannot move from 5 to 4/,
  );
  assert.equal(deliveries.pendingCount(), 0);
  deliveries.commitDispatch("orders", 5, [makeDelivery("same-checkpoint")]);
  assert.equal(deliveries.pendingCount(), 1);
});

test("deliveries - a delivery handed over twice is stored once", (t) => {
  const { deliveries } = tempStorage(t).open();
  deliveries.commitDispatch("orders", 1, [makeDelivery("d1")]);
  deliveries.commitDispatch("orders", 1, [makeDelivery("d1")]);
  assert.equal(deliveries.pendingCount(), 1);
});

test("deliveries - due returns what is due, earliest first, up to the limit, skipping leased", (t) => {
  const { deliveries } = tempStorage(t).open();
  deliveries.commitDispatch("orders", 4, [
    makeDelivery("c", { createdAtMs: 3_000 }),
    makeDelivery("a", { createdAtMs: 1_000 }),
    makeDelivery("d", { createdAtMs: 9_000 }),
    makeDelivery("b", { createdAtMs: 2_000 }),
  ]);
  assert.deepEqual(
    deliveries.due(5_000, 10).map((d) => d.id),
    ["a", "b", "c"],
  );
  assert.deepEqual(
    deliveries.due(5_000, 2).map((d) => d.id),
    ["a", "b"],
  );
  assert.equal(deliveries.nextDueAtMs(), 1_000);
  assert.deepEqual(
    deliveries.leaseDue(5_000, 2, 30_000).map((d) => d.id),
    ["a", "b"],
  );
  assert.deepEqual(
    deliveries.due(5_000, 2).map((d) => d.id),
    ["c"],
  );
  assert.deepEqual(
    deliveries.due(10_000, 2).map((d) => d.id),
    ["c", "d"],
  );
  assert.deepEqual(deliveries.due(500, 10), []);
  assert.equal(deliveries.nextDueAtMs(), 3_000);
});

test("deliveries - a leased delivery is not handed out again until its lease runs out", (t) => {
  const { deliveries } = tempStorage(t).open();
  deliveries.commitDispatch("orders", 2, [
    makeDelivery("d1"),
    makeDelivery("d2", { createdAtMs: 2_500, request: { ...makeDelivery("d2").request, timeoutMs: 1_000 } }),
  ]);
  const leased = deliveries.leaseDue(3_000, 10, 500);
  assert.deepEqual(
    leased.map((d) => [d.id, d.nextAttemptAtMs]),
    [
      ["d1", 3_000 + 10_000 + 500],
      ["d2", 3_000 + 1_000 + 500],
    ],
    "each lease lasts the request's timeout plus the margin",
  );
  assert.deepEqual(leased[0]?.attempts, []);
  assert.deepEqual(deliveries.leaseDue(3_000, 10, 500), [], "in flight: not due");
  assert.deepEqual(deliveries.leaseDue(4_499, 10, 500), []);
  assert.equal(deliveries.nextDueAtMs(), 4_500);
  assert.equal(deliveries.pendingCount(), 2, "leased deliveries stay pending");
  assert.deepEqual(
    deliveries.leaseDue(4_500, 10, 500).map((d) => d.id),
    ["d2"],
    "due again once its lease ran out",
  );
  deliveries.recordAttempt("d1", attempt(1, "retryable", 503), { kind: "retry", nextAttemptAtMs: 5_000 });
  assert.deepEqual(
    deliveries.leaseDue(5_000, 10, 500).map((d) => d.id),
    ["d1"],
    "recording the attempt ended the lease",
  );
});

test("deliveries - after a crash mid-attempt the delivery is due again as soon as the file opens", async (t) => {
  const { clock, open } = tempStorage(t);
  const first = open();
  first.deliveries.commitDispatch("orders", 1, [makeDelivery("d1"), makeDelivery("d2")]);
  first.deliveries.recordAttempt("d2", attempt(1, "retryable", 503), { kind: "retry", nextAttemptAtMs: clock.now + 60_000 });
  const [leased] = first.deliveries.leaseDue(clock.now, 10, 30_000);
  assert.equal(leased?.id, "d1");
  assert.deepEqual(first.deliveries.leaseDue(clock.now, 10, 30_000), [], "leased while the process lives");
  // The attempt never gets recorded: the process dies with the lease written.
  await first.close();

  const second = open();
  assert.equal(second.deliveries.pendingCount(), 2);
  const [again, ...others] = second.deliveries.leaseDue(clock.now, 10, 30_000);
  assert.equal(again?.id, "d1", "the lease of the process that stopped ended");
  assert.deepEqual(others, [], "a retry keeps its time: it is no lease");
  assert.deepEqual(again?.attempts, [], "the lost attempt left no record");
  assert.deepEqual(again?.request, makeDelivery("d1").request, "same request, so the same webhook-id");
});

test("deliveries - an ordered delivery waiting for a retry holds back the later ones of its key", (t) => {
  const storage = tempStorage(t);
  const { clock } = storage;
  const { deliveries } = storage.open();
  const ordered = (id: string, key: string) => ({ ...makeDelivery(id), orderKey: key });
  deliveries.enqueue([ordered("a1", "k-a"), ordered("a2", "k-a"), ordered("a3", "k-a"), ordered("b1", "k-b")]);
  deliveries.recordAttempt("a1", attempt(1, "retryable", 503), { kind: "retry", nextAttemptAtMs: clock.now + 60_000 });
  assert.deepEqual(
    deliveries.leaseDue(clock.now, 10, 30_000).map((d) => d.id),
    ["b1"],
    "a2 and a3 wait behind a1; k-b is not held back",
  );
  clock.now += 60_000; // a1's retry is due (and b1's lease has run out by then)
  assert.deepEqual(
    deliveries
      .leaseDue(clock.now, 10, 30_000)
      .map((d) => d.id)
      .filter((id) => id.startsWith("a"))
      .sort(),
    ["a1", "a2", "a3"],
    "all three (the engine puts an ordered lane's deliveries in offset order)",
  );
});

test("deliveries - recordAttempts applies a batch in one transaction, all or nothing", (t) => {
  const { deliveries, stateDatabase: database } = tempStorage(t).open();
  deliveries.commitDispatch("orders", 3, [
    makeDelivery("ok"),
    makeDelivery("again"),
    makeDelivery("bad"),
    makeDelivery("full"),
  ]);
  deliveries.leaseDue(3_000, 10, 30_000);
  const notPending = deliveries.recordAttempts([
    { deliveryId: "ok", attempt: attempt(1, "success", 200), next: { kind: "succeeded" } },
    { deliveryId: "again", attempt: attempt(1, "retryable", 503), next: { kind: "retry", nextAttemptAtMs: 4_000 } },
    { deliveryId: "bad", attempt: attempt(1, "permanent", 400), next: { kind: "dead", reason: "HTTP 400" } },
    { deliveryId: "gone", attempt: attempt(1, "success", 200), next: { kind: "succeeded" } },
  ]);
  assert.deepEqual(notPending, ["gone"], "a delivery no longer pending is skipped, not a failed batch");
  assert.deepEqual(
    deliveries.due(Number.MAX_SAFE_INTEGER, 10).map((d) => [d.id, d.attempts.length]),
    [
      ["again", 1],
      ["full", 0],
    ],
  );
  assert.equal(deliveries.getDeadLetter("bad")?.attempts.length, 1);

  // A batch whose last record cannot be written stores none of its records.
  database.pragma(`max_page_count = ${database.pragma("page_count", { simple: true }) as number}`);
  const huge = { ...attempt(2, "retryable", 503), error: "x".repeat(100_000) };
  assert.throws(
    () =>
      deliveries.recordAttempts([
        { deliveryId: "again", attempt: attempt(2, "success", 200), next: { kind: "succeeded" } },
        { deliveryId: "full", attempt: huge, next: { kind: "retry", nextAttemptAtMs: 9_000 } },
      ]),
    (error: unknown) => isRelaybusError(error, "ServiceUnavailable"),
  );
  database.pragma("max_page_count = 1073741823");
  assert.deepEqual(
    deliveries.due(Number.MAX_SAFE_INTEGER, 10).map((d) => [d.id, d.attempts.length]),
    [
      ["again", 1],
      ["full", 0],
    ],
    "the success before the failing record was rolled back with it",
  );
});

test("deliveries - a retry appends the attempt and reschedules", (t) => {
  const { deliveries } = tempStorage(t).open();
  deliveries.commitDispatch("orders", 1, [
    makeDelivery("d1"),
    makeDelivery("d2", { createdAtMs: 3_000 }),
  ]);
  deliveries.recordAttempt("d1", attempt(1, "retryable", 503), {
    kind: "retry",
    nextAttemptAtMs: 5_000,
  });
  assert.deepEqual(
    deliveries.due(4_000, 10).map((d) => d.id),
    ["d2"],
  );
  assert.equal(deliveries.nextDueAtMs(), 3_000);
  deliveries.recordAttempt("d1", attempt(2, "retryable"), {
    kind: "retry",
    nextAttemptAtMs: 6_000,
  });
  const [retried] = deliveries.due(6_000, 10).filter((d) => d.id === "d1");
  assert.deepEqual(retried?.attempts, [attempt(1, "retryable", 503), attempt(2, "retryable")]);
  assert.equal(retried?.nextAttemptAtMs, 6_000);
});

test("deliveries - success removes the pending delivery", (t) => {
  const { deliveries } = tempStorage(t).open();
  deliveries.commitDispatch("orders", 1, [makeDelivery("d1")]);
  deliveries.recordAttempt("d1", attempt(1, "success", 200), { kind: "succeeded" });
  assert.equal(deliveries.pendingCount(), 0);
  assert.equal(deliveries.nextDueAtMs(), undefined);
  assert.throws(
    () => deliveries.recordAttempt("d1", attempt(2, "success", 200), { kind: "succeeded" }),
    (error: unknown) =>
      isRelaybusError(error, "InternalError") && /not pending/.test(error.message),
  );
});

test("deliveries - dead after attempts keeps the payload, the reason and every attempt", (t) => {
  const { clock, open } = tempStorage(t);
  const { deliveries } = open();
  deliveries.commitDispatch("orders", 1, [makeDelivery("d1")]);
  deliveries.recordAttempt("d1", attempt(1, "retryable", 500), {
    kind: "retry",
    nextAttemptAtMs: 3_000,
  });
  clock.now = 20_000;
  deliveries.recordAttempt("d1", attempt(2, "permanent", 400), {
    kind: "dead",
    reason: "HTTP 400",
  });
  assert.equal(deliveries.pendingCount(), 0);
  assert.deepEqual(deliveries.getDeadLetter("d1"), {
    ...makeDelivery("d1"),
    attempts: [attempt(1, "retryable", 500), attempt(2, "permanent", 400)],
    nextAttemptAtMs: 3_000,
    reason: "HTTP 400",
    deadAtMs: 20_000,
  });
  assert.equal(deliveries.getDeadLetter("missing"), undefined);
});

test("deliveries - deadLetter moves a pending delivery, or records one never sent", (t) => {
  const { clock, open } = tempStorage(t);
  const { deliveries } = open();
  deliveries.commitDispatch("orders", 1, [makeDelivery("pending")]);
  deliveries.recordAttempt("pending", attempt(1, "retryable", 503), {
    kind: "retry",
    nextAttemptAtMs: 3_000,
  });
  clock.now = 30_000;
  deliveries.deadLetter(makeDelivery("pending"), "target disabled (410)");
  deliveries.deadLetter(makeDelivery("never-sent"), "transform failed: budget exceeded");
  assert.equal(deliveries.pendingCount(), 0);
  assert.deepEqual(deliveries.getDeadLetter("pending")?.attempts, [attempt(1, "retryable", 503)]);
  const neverSent = deliveries.getDeadLetter("never-sent");
  assert.equal(neverSent?.reason, "transform failed: budget exceeded");
  assert.deepEqual(neverSent?.attempts, []);
  assert.deepEqual(neverSent?.request, makeDelivery("never-sent").request);
  assert.equal(neverSent?.deadAtMs, 30_000);
});

test("deliveries - dead letters list newest first, by bus, rule and target, in pages", (t) => {
  const { clock, open } = tempStorage(t);
  const { deliveries } = open();
  const cases: Array<[string, Partial<NewDelivery>]> = [
    ["o1", {}],
    ["o2", { rule: "small-orders" }],
    ["p1", { bus: "payments", targetId: "ledger" }],
    ["o3", { targetId: "ledger" }],
  ];
  cases.forEach(([id, overrides], i) => {
    clock.now = 1_000 * (i + 1);
    deliveries.deadLetter(makeDelivery(id, overrides), "gave up");
  });
  const ids = (filter: Parameters<typeof deliveries.listDeadLetters>[0]) =>
    deliveries.listDeadLetters(filter).map((d) => d.id);
  assert.deepEqual(ids({}), ["o3", "p1", "o2", "o1"]);
  assert.deepEqual(ids({ bus: "orders" }), ["o3", "o2", "o1"]);
  assert.deepEqual(ids({ bus: "orders", rule: "big-orders" }), ["o3", "o1"]);
  assert.deepEqual(ids({ targetId: "ledger" }), ["o3", "p1"]);
  assert.deepEqual(ids({ limit: 2 }), ["o3", "p1"]);
  assert.deepEqual(ids({ limit: 2, beforeMs: 3_000 }), ["o2", "o1"]);
  assert.deepEqual(ids({ bus: "nothing" }), []);
});

test("deliveries - a checkpoint without deliveries is written later, and on close at the latest", async (t) => {
  const { open } = tempStorage(t);
  const first = open();
  first.deliveries.commitDispatch("quiet", 7, []);
  assert.equal(first.deliveries.checkpoint("quiet"), 7, "the dispatcher sees it at once");
  const count = () =>
    first.stateDatabase.prepare("SELECT COUNT(*) AS n FROM dispatch_checkpoints WHERE bus = 'quiet'").get() as { n: number };
  assert.equal(count().n, 0, "not written yet: nothing pending depends on it");
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(count().n, 1, "written by the deferred flush");
  first.deliveries.commitDispatch("quiet", 9, []);
  await first.close();
  const second = open();
  assert.equal(second.deliveries.checkpoint("quiet"), 9, "close wrote the last one");
});

test("deliveries - a checkpoint that carries deliveries is written with them at once", (t) => {
  const { open } = tempStorage(t);
  const storage = open();
  storage.deliveries.commitDispatch("orders", 1, [makeDelivery("d-now")]);
  const row = storage.stateDatabase
    .prepare("SELECT through_offset AS o FROM dispatch_checkpoints WHERE bus = 'orders'")
    .get() as { o: number } | undefined;
  assert.equal(row?.o, 1);
});
