/**
 * Replays through a real service and a real receiver on loopback: the window, the
 * destination, the marks the receiver sees, progress and cancel over the API, the API's
 * errors, and a replay resumed by a service restarted on the same data dir.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { measureEvent } from "../../src/events/sizing.js";
import { openSqliteStorage } from "../../src/log/sqlite/index.js";
import type { CloudEvent } from "../../src/types.js";
import { createReceiver, type ReceivedRequest, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

type Obj = Record<string, unknown>;

function rules(receiverUrl: string): string {
  return `bus: orders
rules:
  - name: all
    pattern: {source: [shop]}
    targets:
      - id: structured
        webhook: {url: "${receiverUrl}/structured"}
      - id: aws
        webhook: {url: "${receiverUrl}/aws"}
        format: aws
  - name: other
    pattern: {source: [shop]}
    targets:
      - id: binary
        webhook: {url: "${receiverUrl}/binary"}
        format: cloudevents-binary
`;
}

async function json(response: Response): Promise<Obj> {
  return (await response.json()) as Obj;
}

async function publish(service: TestService, ids: number[]): Promise<void> {
  const answer = await service.post("/v1/events", {
    Entries: ids.map((n) => ({
      EventBusName: "orders",
      Source: "shop",
      DetailType: "order.created",
      Detail: JSON.stringify({ n }),
    })),
  });
  assert.equal(answer.status, 200);
  assert.equal((await json(answer)).FailedEntryCount, 0);
}

async function until<T>(
  what: string,
  get: () => Promise<T> | T,
  done: (value: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await get();
    if (done(value)) return value;
    if (Date.now() > deadline)
      assert.fail(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const replayed = (requests: readonly ReceivedRequest[], name: string) =>
  requests.filter((r) => r.headers["relaybus-replay"] === name);

describe("replays", () => {
  let receiver: Receiver;
  let service: TestService;

  before(async () => {
    receiver = await createReceiver();
    service = await startTestService({ rules: { "orders.yaml": rules(receiver.url) } });
  });
  after(async () => {
    await service.close();
    await receiver.close();
  });

  async function replay(name: string): Promise<Obj> {
    return json(await service.get(`/v1/replays/${name}`));
  }

  test("replays - a window of the log goes to one target, marked, in log order, under new webhook-ids", async () => {
    await publish(service, [1, 2, 3]);
    await new Promise((r) => setTimeout(r, 5));
    await publish(service, [4, 5, 6]);
    await new Promise((r) => setTimeout(r, 5));
    await publish(service, [7, 8, 9]);
    const originals = await receiver.waitFor(9, 10_000, "/structured");
    await receiver.waitFor(9, 10_000, "/aws");
    await receiver.waitFor(9, 10_000, "/binary");
    const log = await service.storage.log.read("orders", 0, 100);
    const middle = log.filter((e) => [4, 5, 6].includes((e.event.data as { n: number }).n));
    assert.equal(middle.length, 3);
    assert.ok(
      log[2]!.receivedAtMs < middle[0]!.receivedAtMs &&
        middle[2]!.receivedAtMs < log[6]!.receivedAtMs,
    );

    const started = await service.post("/v1/replays", {
      name: "fix-1",
      description: "the middle batch again",
      source: { bus: "orders" },
      fromTime: new Date(middle[0]!.receivedAtMs).toISOString(),
      toTime: middle[2]!.receivedAtMs,
      destination: { bus: "orders", rule: "all", targetId: "structured" },
    });
    assert.equal(started.status, 201);
    const view = await json(started);
    assert.equal(view.total, 3);
    assert.deepEqual(view.destination, { bus: "orders", rule: "all", targetId: "structured" });
    assert.equal(view.description, "the middle batch again");

    const arrived = await until(
      "three replayed requests",
      () => replayed(receiver.requestsTo("/structured"), "fix-1"),
      (r) => r.length >= 3,
    );
    const bodies = arrived.map((r) => JSON.parse(r.body) as CloudEvent);
    assert.deepEqual(
      bodies.map((b) => (b.data as { n: number }).n),
      [4, 5, 6],
      "log order",
    );
    assert.deepEqual(
      bodies.map((b) => b.replayname),
      ["fix-1", "fix-1", "fix-1"],
    );
    assert.deepEqual(
      bodies.map((b) => b.id),
      middle.map((e) => e.event.id),
      "the events keep their ids",
    );
    const originalIds = new Set(originals.map((r) => r.headers["webhook-id"]));
    for (const r of arrived)
      assert.ok(!originalIds.has(r.headers["webhook-id"]), "a webhook-id of its own");

    const done = await until(
      "completion",
      () => replay("fix-1"),
      (r) => r.state === "completed" && r.pendingDeliveries === 0,
    );
    assert.equal(done.replayed, 3);
    assert.equal(done.percent, 100);
    assert.equal(done.deliveries, 3);
    assert.equal(typeof done.endedAtMs, "number");
    assert.equal(
      replayed(receiver.requestsTo("/aws"), "fix-1").length,
      0,
      "not to the rule's other target",
    );
    assert.equal(
      replayed(receiver.requestsTo("/binary"), "fix-1").length,
      0,
      "not to the other rule",
    );

    // To every rule of the bus: the AWS envelope names the replay, binary mode has ce-replayname.
    const all = await service.post("/v1/replays", {
      name: "fix-2",
      source: { bus: "orders" },
      fromTime: 0,
      toTime: Date.now() + 60_000,
      destination: { bus: "orders" },
    });
    assert.equal(all.status, 201);
    const aws = await until(
      "replayed AWS envelopes",
      () => replayed(receiver.requestsTo("/aws"), "fix-2"),
      (r) => r.length >= 9,
    );
    assert.deepEqual(
      aws.map((r) => (JSON.parse(r.body) as Obj)["replay-name"]),
      Array(9).fill("fix-2"),
    );
    const binary = await until(
      "replayed binary events",
      () => replayed(receiver.requestsTo("/binary"), "fix-2"),
      (r) => r.length >= 9,
    );
    assert.ok(binary.every((r) => r.headers["ce-replayname"] === "fix-2"));
    await until(
      "completion",
      () => replay("fix-2"),
      (r) => r.state === "completed",
    );

    const list = await json(await service.get("/v1/replays"));
    assert.deepEqual((list.replays as Obj[]).map((r) => r.name).sort(), ["fix-1", "fix-2"]);
    const cancelled = await service.post("/v1/replays/fix-1:cancel", undefined);
    assert.equal(cancelled.status, 200);
    assert.equal((await json(cancelled)).state, "completed", "a completed replay stays completed");
  });

  test("replays - from an archive, only what it kept", async () => {
    const created = await service.post("/v1/archives", {
      name: "big",
      bus: "orders",
      pattern: { detail: { n: [{ numeric: [">=", 100] }] } },
    });
    assert.equal(created.status, 201);
    await publish(service, [99, 100, 101]);
    const through = await service.storage.log.lastOffset("orders");
    await until(
      "the archiver",
      () => service.storage.archives.get("big")!,
      (a) => a.throughOffset === through,
    );
    const started = await service.post("/v1/replays", {
      name: "from-big",
      source: { archive: "big" },
      fromTime: "2020-01-01",
      toTime: new Date(Date.now() + 1_000).toISOString(),
      destination: { bus: "orders", rule: "other" },
    });
    assert.equal(started.status, 201);
    assert.equal((await json(started)).total, 2);
    const arrived = await until(
      "two replayed requests",
      () => replayed(receiver.requestsTo("/binary"), "from-big"),
      (r) => r.length >= 2,
    );
    assert.deepEqual(
      arrived.map((r) => r.body),
      ['{"n":100}', '{"n":101}'],
    );
    assert.equal(
      (
        await until(
          "completion",
          () => replay("from-big"),
          (r) => r.state === "completed",
        )
      ).replayed,
      2,
    );
  });

  test("replays API - refuses bad input, naming the field", async () => {
    const base = {
      name: "bad",
      source: { bus: "orders" },
      fromTime: 0,
      toTime: 1,
      destination: { bus: "orders" },
    };
    const refused = async (body: unknown, status: number, code: string, message: RegExp) => {
      const answer = await service.post("/v1/replays", body);
      const error = (await json(answer)).error as { code: string; message: string };
      assert.equal(answer.status, status, JSON.stringify(error));
      assert.equal(error.code, code);
      assert.match(error.message, message);
    };
    await refused({ ...base, name: undefined }, 400, "ValidationError", /body\.name: required/);
    await refused({ ...base, source: {} }, 400, "ValidationError", /body\.source/);
    await refused(
      { ...base, source: { bus: "orders", archive: "big" } },
      400,
      "ValidationError",
      /body\.source/,
    );
    await refused(
      { ...base, fromTime: "yesterday" },
      400,
      "ValidationError",
      /fromTime: expected ms since the epoch or an RFC 3339 time/,
    );
    await refused(
      { ...base, fromTime: 10, toTime: 5 },
      400,
      "ValidationError",
      /toTime: must not be before fromTime/,
    );
    await refused(
      { ...base, destination: { bus: "orders", targetId: "structured" } },
      400,
      "ValidationError",
      /body\.destination: must have property rule/,
    );
    await refused(
      { ...base, source: { archive: "nope" } },
      404,
      "ArchiveNotFound",
      /source\.archive: archive "nope"/,
    );
    await refused({ ...base, source: { bus: "nope" } }, 404, "BusNotFound", /nope/);
    await refused({ ...base, destination: { bus: "nope" } }, 404, "BusNotFound", /nope/);
    await refused(
      { ...base, destination: { bus: "orders", rule: "nope" } },
      404,
      "RuleNotFound",
      /nope/,
    );
    await refused(
      { ...base, destination: { bus: "orders", rule: "all", targetId: "nope" } },
      404,
      "TargetNotFound",
      /destination\.targetId/,
    );
    assert.equal((await service.post("/v1/replays", { ...base, name: "once" })).status, 201);
    await refused({ ...base, name: "once" }, 409, "ReplayAlreadyExists", /"once" already exists/);

    const missing = await service.get("/v1/replays/nope");
    assert.equal(missing.status, 404);
    assert.equal(((await json(missing)).error as Obj).code, "ReplayNotFound");
    const cancelMissing = await service.post("/v1/replays/nope:cancel", undefined);
    assert.equal(cancelMissing.status, 404);
    assert.equal(((await json(cancelMissing)).error as Obj).code, "ReplayNotFound");
    const badLimit = await service.get("/v1/replays?limit=0");
    assert.equal(badLimit.status, 400);
    await badLimit.body?.cancel();
  });
});

test("replays - a replay stopped by a restart resumes from its last offset on the same data dir", async (t) => {
  const receiver = await createReceiver();
  const dir = mkdtempSync(join(tmpdir(), "relaybus-replay-restart-"));
  t.after(async () => {
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // A rule that takes replays only (originals have no replayname), to a sink that refuses
  // at first: the replay's deliveries stay pending (retried every 100 ms), so the replay
  // stops at its bound of 10,000 pending deliveries, before the end of its 10,500 events.
  receiver.always("/sink", { status: 503 });
  const options = {
    dir,
    rules: {
      "orders.yaml": `bus: orders
rules:
  - name: replays-only
    pattern: {source: [elsewhere], replayname: [{exists: true}]}
    targets:
      - id: sink
        webhook: {url: "${receiver.url}/sink"}
        format: data
        retry: {maxAttempts: 185, maxAgeSeconds: 3600, delaysMs: [100]}
`,
    },
  };
  let service = await startTestService(options);
  const count = 10_500;
  const events = Array.from({ length: count }, (_, i): CloudEvent => ({
    specversion: "1.0",
    id: `restart-${i}`,
    source: "elsewhere",
    type: "order.created",
    data: { i },
  }));
  for (let i = 0; i < count; i += 2_000) {
    await service.storage.log.append(
      events.slice(i, i + 2_000).map((e) => measureEvent("orders", e)),
    );
  }
  const started = await service.post("/v1/replays", {
    name: "restarted",
    source: { bus: "orders" },
    fromTime: 0,
    toTime: Date.now() + 1_000,
    destination: { bus: "orders", rule: "replays-only", targetId: "sink" },
  });
  assert.equal(started.status, 201);
  await until(
    "the replay to reach its bound",
    async () => json(await service.get("/v1/replays/restarted")),
    (r) => r.replayed === 10_000,
  );
  await new Promise((r) => setTimeout(r, 100));
  await service.close();

  const between = openSqliteStorage({ dataDir: join(dir, "data"), durability: "fsync" });
  const stopped = between.replays.get("restarted")!;
  // The engine had leased the deliveries it queued (each until its timeout + 30 s); after a
  // real restart they are due again once those leases run out. Let them run out now, so the
  // test does not wait: each is due again from when it was recorded.
  between.stateDatabase.prepare("UPDATE deliveries SET next_attempt_at_ms = created_at_ms").run();
  await between.close();
  assert.equal(stopped.state, "running");
  assert.equal(stopped.lastOffset, 10_000, "it waited at its bound");

  receiver.always("/sink", { status: 200 });
  service = await startTestService(options);
  t.after(() => service.close());
  const done = await until(
    "completion after the restart",
    async () => json(await service.get("/v1/replays/restarted")),
    (r) => r.state === "completed" && r.pendingDeliveries === 0,
    60_000,
  );
  assert.equal(done.replayed, count);
  assert.equal(done.deliveries, count);
  const firstArrivals = new Map<string, number>();
  for (const r of receiver.requestsTo("/sink")) {
    if (r.headers["relaybus-replay"] !== "restarted") continue;
    const id = String(r.headers["webhook-id"]);
    if (!firstArrivals.has(id)) firstArrivals.set(id, (JSON.parse(r.body) as { i: number }).i);
  }
  assert.equal(firstArrivals.size, count, "every event arrived, each under one webhook-id");
  assert.deepEqual(
    [...firstArrivals.values()],
    events.map((_, i) => i),
    "in log order, across the restart",
  );
});
