/**
 * Dead letters end to end: a real Relaybus and a real receiver on loopback. Targets that
 * answer 500 (until switched) or 400 dead-letter their events; the tests list them with each
 * filter, show one, redrive one, a filter and all (original and current mode), purge, and
 * count that nothing is lost. The last tests hold the store to its batches directly.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test, type TestContext } from "node:test";
import type { DeadLetter, NewDelivery } from "../../src/log/log-engine.js";
import { openSqliteStorage } from "../../src/log/sqlite/index.js";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

type Obj = Record<string, unknown>;

/** Fast retries: two attempts, a few ms apart, so a 500 dead-letters at once. */
const RETRY = { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10 };

interface Scene {
  service: TestService;
  receiver: Receiver;
  /** Between the orders' dead letters and the billing ones. */
  splitMs: number;
}

function shipRule(receiverUrl: string, version: number, withAudit = true): Obj {
  return {
    name: "ship",
    pattern: { source: ["shop.orders"] },
    targets: [
      {
        id: "warehouse",
        webhook: { url: `${receiverUrl}/warehouse` },
        format: "transform",
        transform: `{"order": data.id, "v": ${version}}`,
        retry: RETRY,
      },
      ...(withAudit
        ? [{ id: "audit", webhook: { url: `${receiverUrl}/audit` }, format: "data", retry: RETRY }]
        : []),
    ],
  };
}

/**
 * Two buses: `orders` (rule `ship`: `warehouse` answers 500, `audit` 400) and `billing`
 * (rule `invoice`: `ledger` answers 500). Three orders then, after `splitMs`, two invoices:
 * 3 + 3 + 2 = 8 dead letters.
 */
async function startScene(t: TestContext): Promise<Scene> {
  const receiver = await createReceiver();
  receiver.always("/warehouse", { status: 500 });
  receiver.always("/audit", { status: 400, body: "no thanks" });
  receiver.always("/ledger", { status: 500 });
  const service = await startTestService();
  t.after(async () => {
    await service.close();
    await receiver.close();
  });
  await ok(service.post("/v1/buses", { name: "orders" }), 201);
  await ok(service.post("/v1/buses", { name: "billing" }), 201);
  await ok(service.post("/v1/buses/orders/rules", shipRule(receiver.url, 1)), 201);
  await ok(
    service.post("/v1/buses/billing/rules", {
      name: "invoice",
      pattern: { source: ["shop.billing"] },
      targets: [{ id: "ledger", webhook: { url: `${receiver.url}/ledger` }, retry: RETRY }],
    }),
    201,
  );

  await publish(service, "orders", "shop.orders", ["o-1", "o-2", "o-3"]);
  await waitForDeadLetters(service, 6);
  await sleep(5);
  const splitMs = Date.now();
  await sleep(5);
  await publish(service, "billing", "shop.billing", ["i-1", "i-2"]);
  await waitForDeadLetters(service, 8);
  return { service, receiver, splitMs };
}

async function publish(
  service: TestService,
  bus: string,
  source: string,
  ids: string[],
): Promise<void> {
  const answer = (await ok(
    service.post("/v1/events", {
      Entries: ids.map((id) => ({
        EventBusName: bus,
        Source: source,
        DetailType: "created",
        Detail: JSON.stringify({ id }),
      })),
    }),
    200,
  )) as Obj;
  assert.equal(answer.FailedEntryCount, 0);
}

async function ok(pending: Promise<Response>, status: number): Promise<unknown> {
  const response = await pending;
  const text = await response.text();
  assert.equal(response.status, status, text);
  return text === "" ? undefined : (JSON.parse(text) as unknown);
}

async function list(
  service: TestService,
  query: Record<string, string> = {},
): Promise<DeadLetter[]> {
  const params = new URLSearchParams({ limit: "1000", ...query });
  const body = (await ok(service.get(`/v1/dead-letters?${params}`), 200)) as {
    deadLetters: DeadLetter[];
  };
  return body.deadLetters;
}

async function waitForDeadLetters(
  service: TestService,
  count: number,
  query: Record<string, string> = {},
): Promise<DeadLetter[]> {
  let letters: DeadLetter[] = [];
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(20)) {
    letters = await list(service, query);
    if (letters.length >= count) return letters;
  }
  assert.fail(`waited for ${count} dead letters (${JSON.stringify(query)}), got ${letters.length}`);
}

function redrive(service: TestService, body: unknown): Promise<Obj> {
  return ok(service.post("/v1/dead-letters:redrive", body), 200) as Promise<Obj>;
}

function purge(service: TestService, body: unknown): Promise<Obj> {
  return ok(service.post("/v1/dead-letters:purge", body), 200) as Promise<Obj>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const ids = (letters: readonly DeadLetter[]) => letters.map((l) => l.id).sort();
const webhookIds = (receiver: Receiver, path: string) =>
  receiver.requestsTo(path).map((r) => String(r.headers["webhook-id"]));

describe("dead letters over HTTP", () => {
  after(assertNothingOpen);

  test("dead letters - a failing target dead-letters each event, shown with its payload and every attempt", async (t) => {
    const { service, receiver } = await startScene(t);
    const [letter] = await list(service, { target: "warehouse", limit: "1" });
    assert.ok(letter !== undefined);
    const shown = (await ok(service.get(`/v1/dead-letters/${letter.id}`), 200)) as DeadLetter;
    assert.equal(shown.bus, "orders");
    assert.equal(shown.rule, "ship");
    assert.equal(shown.targetId, "warehouse");
    assert.match(shown.reason, /gave up after 2 attempts \(maxAttempts 2\): HTTP 500/);
    assert.deepEqual(
      shown.attempts.map((a) => [a.attempt, a.status, a.outcome]),
      [
        [1, 500, "retryable"],
        [2, 500, "retryable"],
      ],
    );
    assert.equal(shown.request.url, `${receiver.url}/warehouse`);
    const body = JSON.parse(shown.request.body) as Obj;
    assert.equal(body.v, 1);
    assert.match(String(body.order), /^o-[123]$/);
    // Both attempts the receiver saw carried this dead letter's id as webhook-id.
    assert.equal(webhookIds(receiver, "/warehouse").filter((id) => id === letter.id).length, 2);
  });

  test("dead letters - list filters by bus, rule, target, reason, from, to, before and limit", async (t) => {
    const { service, splitMs } = await startScene(t);
    const count = async (query: Record<string, string>) => (await list(service, query)).length;
    assert.equal(await count({}), 8);
    assert.equal(await count({ bus: "orders" }), 6);
    assert.equal(await count({ bus: "billing" }), 2);
    assert.equal(await count({ rule: "ship" }), 6);
    assert.equal(await count({ rule: "invoice" }), 2);
    assert.equal(await count({ target: "audit" }), 3);
    assert.equal(await count({ target: "warehouse" }), 3);
    // A substring, ignoring case: the 500s of warehouse and ledger.
    assert.equal(await count({ reason: "http 500" }), 5);
    assert.equal(await count({ reason: "permanent failure" }), 3);
    // LIKE's wildcards in the text are plain characters.
    assert.equal(await count({ reason: "%" }), 0);
    assert.equal(await count({ reason: "HTTP_500" }), 0);
    assert.equal(await count({ from: String(splitMs) }), 2);
    assert.equal(await count({ to: String(splitMs) }), 6);
    assert.equal(await count({ from: new Date(splitMs).toISOString() }), 2);
    assert.equal(await count({ bus: "orders", target: "warehouse", reason: "500" }), 3);
    assert.equal(await count({ bus: "billing", to: String(splitMs) }), 0);

    const newest = await list(service, { limit: "3" });
    assert.equal(newest.length, 3);
    assert.ok(
      newest.every((l, i) => i === 0 || newest[i - 1]!.deadAtMs >= l.deadAtMs),
      "newest first",
    );
    const older = await list(service, { before: String(splitMs) });
    assert.ok(older.every((l) => l.bus === "orders"));
    assert.equal(older.length, 6);

    for (const query of ["from=yesterday", "to=2026-13", "reason=", "from=-1"]) {
      const answer = (await ok(service.get(`/v1/dead-letters?${query}`), 400)) as { error: Obj };
      assert.equal(answer.error.code, "ValidationError", query);
    }
  });

  test("dead letters - redrive one in original mode: the receiver gets it with the same webhook-id, and it leaves the dead letters", async (t) => {
    const { service, receiver } = await startScene(t);
    receiver.always("/warehouse", { status: 200 });
    const [letter] = await list(service, { target: "warehouse", limit: "1" });
    assert.ok(letter !== undefined);

    const answer = await redrive(service, { ids: [letter.id], mode: "original" });
    assert.deepEqual(answer, {
      mode: "original",
      redriven: 1,
      skipped: 0,
      skips: [],
      notFound: [],
    });
    const arrived = await receiver.waitFor(7, 10_000, "/warehouse");
    const last = arrived[6]!;
    assert.equal(last.headers["webhook-id"], letter.id);
    assert.equal(last.body, letter.request.body, "sent as it was");

    await ok(service.get(`/v1/dead-letters/${letter.id}`), 404);
    assert.equal((await list(service)).length, 7);
    assert.deepEqual(ids(await list(service, { target: "warehouse" })).includes(letter.id), false);
  });

  test("dead letters - redrive a filter sends only what it selects", async (t) => {
    const { service, receiver } = await startScene(t);
    receiver.always("/ledger", { status: 200 });
    const billing = await list(service, { bus: "billing" });
    const answer = await redrive(service, { filter: { bus: "billing", reason: "HTTP 500" } });
    assert.deepEqual(answer, { mode: "original", redriven: 2, skipped: 0, skips: [] });
    const arrived = await receiver.waitFor(4, 10_000, "/ledger");
    assert.deepEqual(
      arrived
        .slice(2)
        .map((r) => String(r.headers["webhook-id"]))
        .sort(),
      ids(billing),
    );
    assert.deepEqual(await list(service, { bus: "billing" }), []);
    assert.equal((await list(service)).length, 6, "the orders' dead letters stay");
  });

  test("dead letters - redrive all: every one arrives again with its webhook-id, none is left", async (t) => {
    const { service, receiver } = await startScene(t);
    for (const path of ["/warehouse", "/audit", "/ledger"]) receiver.always(path, { status: 200 });
    const before = await list(service);
    const seen = receiver.requests.length;
    const answer = await redrive(service, { all: true });
    assert.deepEqual(answer, { mode: "original", redriven: 8, skipped: 0, skips: [] });
    const all = await receiver.waitFor(seen + 8, 10_000);
    assert.deepEqual(
      all
        .slice(seen)
        .map((r) => String(r.headers["webhook-id"]))
        .sort(),
      ids(before),
    );
    assert.deepEqual(await list(service), []);
  });

  test("dead letters - a redriven delivery that fails again gets a fresh budget and keeps every attempt", async (t) => {
    const { service } = await startScene(t);
    const [letter] = await list(service, { target: "warehouse", limit: "1" });
    assert.ok(letter !== undefined);

    const again = async (attempts: number): Promise<DeadLetter> => {
      assert.equal((await redrive(service, { ids: [letter.id] })).redriven, 1);
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(20)) {
        const response = await service.get(`/v1/dead-letters/${letter.id}`);
        if (response.status === 200) return (await response.json()) as DeadLetter;
        await response.body?.cancel();
      }
      assert.fail(`not dead again after ${attempts} attempts`);
    };
    const second = await again(4);
    assert.deepEqual(
      second.attempts.map((a) => a.attempt),
      [1, 2, 3, 4],
    );
    assert.equal(second.retry.maxAttempts, 4);
    assert.deepEqual(second.retry.spentBeforeRedrive?.attempts, 2);
    assert.match(second.reason, /gave up after 4 attempts/);
    // Budgets do not pile up: two more attempts again, not four.
    const third = await again(6);
    assert.equal(third.attempts.length, 6);
    assert.equal(third.retry.maxAttempts, 6);
    assert.equal(third.retry.spentBeforeRedrive?.attempts, 4);
  });

  test("dead letters - redrive in current mode sends the payload of the rule's current transform", async (t) => {
    const { service, receiver } = await startScene(t);
    const warehouse = await list(service, { target: "warehouse" });
    await ok(
      fetch(`${service.url}/v1/buses/orders/rules/ship`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(shipRule(receiver.url, 2)),
      }),
      200,
    );
    receiver.always("/warehouse", { status: 200 });
    const seen = receiver.requestsTo("/warehouse").length;
    const answer = await redrive(service, { filter: { target: "warehouse" }, mode: "current" });
    assert.deepEqual(answer, { mode: "current", redriven: 3, skipped: 0, skips: [] });
    const arrived = (await receiver.waitFor(seen + 3, 10_000, "/warehouse")).slice(seen);
    assert.deepEqual(arrived.map((r) => String(r.headers["webhook-id"])).sort(), ids(warehouse));
    const bodies = arrived.map((r) => JSON.parse(r.body) as Obj);
    assert.ok(
      bodies.every((b) => b.v === 2),
      JSON.stringify(bodies),
    );
    assert.deepEqual(bodies.map((b) => b.order).sort(), ["o-1", "o-2", "o-3"]);
  });

  test("dead letters - current mode skips what lost its rule or target; nothing is lost", async (t) => {
    const { service, receiver } = await startScene(t);
    for (const path of ["/warehouse", "/audit", "/ledger"]) receiver.always(path, { status: 200 });
    const before = await list(service);
    assert.equal(before.length, 8);
    // `audit` leaves the rule `ship`; the rule `invoice` goes altogether.
    await ok(
      fetch(`${service.url}/v1/buses/orders/rules/ship`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(shipRule(receiver.url, 1, false)),
      }),
      200,
    );
    await ok(fetch(`${service.url}/v1/buses/billing/rules/invoice`, { method: "DELETE" }), 204);

    const answer = (await redrive(service, { all: true, mode: "current" })) as {
      redriven: number;
      skipped: number;
      skips: { id: string; reason: string }[];
    };
    assert.equal(answer.redriven, 3);
    assert.equal(answer.skipped, 5);
    const left = await list(service);
    // Every dead letter is redriven, or skipped with a reason and still there.
    assert.equal(answer.redriven + left.length, before.length);
    assert.deepEqual(answer.skips.map((s) => s.id).sort(), ids(left));
    const reasons = answer.skips.map((s) => s.reason);
    assert.equal(
      reasons.filter((r) => r === 'target "audit" no longer exists in rule "ship" of bus "orders"')
        .length,
      3,
    );
    assert.equal(
      reasons.filter((r) => r === 'rule "invoice" of bus "billing" no longer exists').length,
      2,
    );

    // The original requests still go out (once the three redriven above have gone).
    const deadline = Date.now() + 10_000;
    while (service.storage.deliveries.pendingCount() > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const seen = receiver.requests.length;
    assert.deepEqual(await redrive(service, { all: true }), {
      mode: "original",
      redriven: 5,
      skipped: 0,
      skips: [],
    });
    const resent = (await receiver.waitFor(seen + 5, 10_000)).slice(seen);
    assert.deepEqual(resent.map((r) => String(r.headers["webhook-id"])).sort(), ids(left));
    assert.deepEqual(await list(service), []);
  });

  test("dead letters - purge a filter, some ids, one by DELETE, then all", async (t) => {
    const { service } = await startScene(t);
    assert.deepEqual(await purge(service, { filter: { target: "audit" } }), { purged: 3 });
    assert.equal((await list(service)).length, 5);
    assert.deepEqual(await list(service, { target: "audit" }), []);

    const [one, two, three] = await list(service);
    assert.ok(one !== undefined && two !== undefined && three !== undefined);
    await ok(fetch(`${service.url}/v1/dead-letters/${one.id}`, { method: "DELETE" }), 204);
    const again = (await ok(
      fetch(`${service.url}/v1/dead-letters/${one.id}`, { method: "DELETE" }),
      404,
    )) as {
      error: Obj;
    };
    assert.equal(again.error.code, "DeadLetterNotFound");
    assert.deepEqual(await purge(service, { ids: [two.id, three.id, "nope"] }), {
      purged: 2,
      notFound: ["nope"],
    });
    assert.deepEqual(await purge(service, { all: true }), { purged: 2 });
    assert.deepEqual(await list(service), []);
  });

  test("dead letters - an empty or ambiguous selection is refused, and nothing moves", async (t) => {
    const { service } = await startScene(t);
    const refused = async (path: string, body: unknown, message: RegExp) => {
      const answer = (await ok(service.post(path, body), 400)) as { error: Obj };
      assert.equal(answer.error.code, "ValidationError");
      assert.match(String(answer.error.message), message);
    };
    const redrivePath = "/v1/dead-letters:redrive";
    const purgePath = "/v1/dead-letters:purge";
    for (const path of [redrivePath, purgePath]) {
      await refused(path, {}, /no dead letters selected/);
      await refused(path, { filter: {} }, /filter: give at least one/);
      await refused(path, { all: false }, /no dead letters selected/);
      await refused(path, { ids: [] }, /ids: expected an array of 1 to 1000/);
      await refused(path, { all: true, ids: ["x"] }, /not several/);
      await refused(path, { filter: { bus: "orders", when: "now" } }, /unknown field "when"/);
      await refused(
        path,
        { filter: { from: "soon" } },
        /filter\.from: expected ms since the epoch/,
      );
      await refused(path, { all: "yes" }, /all: expected true/);
      await refused(path, [], /must be a JSON object/);
    }
    await refused(
      redrivePath,
      { all: true, mode: "newest" },
      /mode: expected "original" or "current"/,
    );
    await refused(purgePath, { all: true, mode: "original" }, /unknown field "mode"/);
    const empty = (await ok(fetch(`${service.url}${redrivePath}`, { method: "POST" }), 400)) as {
      error: Obj;
    };
    assert.equal(empty.error.code, "ValidationError");
    assert.equal((await list(service)).length, 8);
  });
});

describe("dead letters in the store", () => {
  const RETRY_POLICY = {
    maxAttempts: 3,
    maxAgeSeconds: 60,
    baseDelayMs: 100,
    factor: 2,
    maxDelayMs: 1_000,
  };

  function delivery(n: number, bus: string): NewDelivery {
    const id = `d-${String(n).padStart(5, "0")}`;
    return {
      id,
      bus,
      offset: n,
      eventId: `e-${n}`,
      rule: "r",
      targetId: n % 2 === 0 ? "even" : "odd",
      request: {
        url: "https://example.test/hook",
        headers: { "webhook-id": id },
        body: `{"n":${n}}`,
        timeoutMs: 1_000,
      },
      retry: RETRY_POLICY,
      eventReceivedAtMs: 1_000,
      createdAtMs: 2_000,
    };
  }

  function tempStorage(t: TestContext) {
    const dir = mkdtempSync(join(tmpdir(), "relaybus-dlq-"));
    const clock = { now: 100_000, nowMs: () => clock.now };
    const storage = openSqliteStorage({
      dataDir: join(dir, "data"),
      durability: "fsync-wal-only",
      clock,
    });
    t.after(async () => {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return { storage, clock };
  }

  test("store - redrive and purge go through many batches, yielding in between, and count exactly", async (t) => {
    const { storage, clock } = tempStorage(t);
    const { deliveries } = storage;
    for (let n = 1; n <= 1_203; n++) {
      clock.now = 100_000 + (n % 10); // ties in dead_at_ms, so paging must go by id too
      deliveries.deadLetter(
        delivery(n, n <= 1_100 ? "a" : "b"),
        n % 3 === 0 ? "HTTP 500 again" : "permanent failure: HTTP 400",
      );
    }
    clock.now = 200_000;

    let turns = 0;
    let running = true;
    const tick = () => {
      turns++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const result = await deliveries.redriveDeadLetters(
      { bus: "a" },
      {
        batchSize: 200,
        maxSkipsListed: 10,
        prepare: (letter) =>
          letter.offset % 7 === 0
            ? { skip: `seven divides ${letter.offset}` }
            : { request: letter.request, retry: letter.retry },
      },
    );
    running = false;
    const sevens = Math.floor(1_100 / 7);
    assert.deepEqual(
      { redriven: result.redriven, skipped: result.skipped, listed: result.skips.length },
      { redriven: 1_100 - sevens, skipped: sevens, listed: 10 },
    );
    assert.ok(turns >= 5, `the event loop ran between the batches (${turns} turns)`);
    assert.equal(deliveries.pendingCount(), 1_100 - sevens);
    assert.equal(deliveries.listDeadLetters({ bus: "a", limit: 1_000 }).length, sevens);
    assert.equal(deliveries.listDeadLetters({ bus: "b", limit: 1_000 }).length, 103);

    // The redriven are due now, with their history and a fresh budget.
    const [due] = deliveries.due(200_000, 1);
    assert.ok(due !== undefined);
    assert.equal(due.nextAttemptAtMs, 200_000);
    assert.deepEqual(due.retry.spentBeforeRedrive, { attempts: 0, ageSeconds: 199 });
    assert.equal(due.retry.maxAgeSeconds, 60 + 199);

    assert.equal(await deliveries.purgeDeadLetters({ bus: "b", reason: "http 500" }), 35);
    assert.equal(
      await deliveries.purgeDeadLetters({ ids: ["d-00007", "d-00014", "d-00001", "nope"] }),
      2,
    );
    assert.equal(await deliveries.purgeDeadLetters({}), sevens - 2 + 103 - 35);
    assert.deepEqual(deliveries.listDeadLetters({}), []);
  });

  test("store - a dead letter whose delivery is pending already is skipped, not sent twice", async (t) => {
    const { storage } = tempStorage(t);
    const { deliveries } = storage;
    deliveries.deadLetter(delivery(1, "a"), "HTTP 500");
    deliveries.deadLetter(delivery(2, "a"), "HTTP 500");
    deliveries.commitDispatch("a", 2, [delivery(2, "a")]);
    const result = await deliveries.redriveDeadLetters({ ids: ["d-00001", "d-00002"] });
    assert.deepEqual(result, {
      redriven: 1,
      skipped: 1,
      skips: [{ id: "d-00002", reason: "a delivery with this id is pending already" }],
    });
    assert.equal(deliveries.pendingCount(), 2);
    assert.deepEqual(
      deliveries.listDeadLetters({}).map((l) => l.id),
      ["d-00002"],
    );
  });

  test("store - only dead letters dead when the call started are taken", async (t) => {
    const { storage, clock } = tempStorage(t);
    const { deliveries } = storage;
    deliveries.deadLetter(delivery(1, "a"), "HTTP 500");
    clock.now += 1_000;
    deliveries.deadLetter(delivery(2, "a"), "HTTP 500");
    clock.now -= 500; // a clock that reads earlier than the second dead letter
    assert.equal(await deliveries.purgeDeadLetters({ bus: "a" }), 1);
    assert.deepEqual(
      deliveries.listDeadLetters({}).map((l) => l.id),
      ["d-00002"],
    );
  });
});
