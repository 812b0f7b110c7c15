/**
 * `GET /v1/events/{id}/trace` against a real service and a real receiver on loopback: a
 * delivery that fails twice then succeeds, one whose transform fails (dead letter), one still
 * waiting for a retry, an event no rule matched, ids on several buses, and the trace
 * retention (`delivery.traceRetentionHours`) applied when the service starts again.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { EventTrace } from "../../src/api/routes/event-trace-routes.js";
import { startRelaybus, type RelaybusService } from "../../src/api/service.js";
import { silentLogger } from "../../src/types.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

function rules(receiverUrl: string): string {
  return `bus: orders
rules:
  - name: ship
    pattern: {source: [shop.orders]}
    targets:
      - id: warehouse
        webhook:
          url: "${receiverUrl}/flaky"
          headers: {authorization: "Bearer s3cret", x-api-key: k-123, x-note: visible}
        format: transform
        transform: '{"order": data.id, "total": data.total}'
        retry: {maxAttempts: 5, delaysMs: [20]}
  - name: audit
    pattern: {source: [shop.orders]}
    targets:
      - id: broken
        webhook: {url: "${receiverUrl}/never"}
        format: transform
        transform: '$error("no audit for " & data.id)'
  - name: slow
    pattern: {source: [shop.slow]}
    targets:
      - id: down
        webhook: {url: "${receiverUrl}/down"}
        format: data
        retry: {maxAttempts: 3, delaysMs: [600000]}
`;
}

type Obj = Record<string, unknown>;

describe("event trace", () => {
  let receiver: Receiver;
  let service: TestService;
  /** The service's directory, kept across the restarts of the last test. */
  let dir: string;
  let serviceClosed = false;
  /** The event that went to `ship` (delivered on the third attempt) and `audit` (dead letter). */
  let orderId: string;
  /** An event no rule matches. */
  let lonelyId: string;
  let publishedAtMs: number;

  async function publish(entry: Obj): Promise<string> {
    const response = await service.post("/v1/events", {
      Entries: [{ EventBusName: "orders", ...entry }],
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as {
      FailedEntryCount: number;
      Entries: { EventId: string }[];
    };
    assert.equal(body.FailedEntryCount, 0);
    return body.Entries[0]!.EventId;
  }

  async function trace(id: string, query = ""): Promise<{ status: number; body: Obj }> {
    const response = await fetch(
      `${service.url}/v1/events/${encodeURIComponent(id)}/trace${query}`,
    );
    return { status: response.status, body: (await response.json()) as Obj };
  }

  /** The trace once `done` says so, polling; fails after 10 s with the last answer. */
  async function traceWhen(id: string, done: (t: EventTrace) => boolean): Promise<EventTrace> {
    let last: Obj = {};
    for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
      const answer = await trace(id);
      last = answer.body;
      if (answer.status === 200 && done(answer.body as unknown as EventTrace))
        return answer.body as unknown as EventTrace;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`trace of ${id} never got there: ${JSON.stringify(last)}`);
  }

  before(async () => {
    receiver = await createReceiver();
    receiver.script("/flaky", [{ status: 500 }, { status: 503, body: "busy" }]);
    receiver.always("/down", { status: 500 });
    dir = mkdtempSync(join(tmpdir(), "relaybus-trace-"));
    service = await startTestService({ dir, rules: { "orders.yaml": rules(receiver.url) } });
    publishedAtMs = Date.now();
    orderId = await publish({
      Source: "shop.orders",
      DetailType: "order.created",
      Detail: '{"id":"o-1","total":250}',
    });
    lonelyId = await publish({ Source: "nobody.listens", DetailType: "noise", Detail: "{}" });
  });
  after(async () => {
    // `before` may have failed part-way (the service never started): close what it opened,
    // or the open receiver keeps this file running until the runner's timeout.
    if (!serviceClosed) await (service as TestService | undefined)?.close();
    await (receiver as Receiver | undefined)?.close();
    if ((dir as string | undefined) !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test("trace - received, matched rules, payloads, every attempt, and a partial ending", async () => {
    const t = await traceWhen(orderId, (x) => x.ended !== "pending");
    const stored = (await (await service.get(`/v1/buses/orders/events/${orderId}`)).json()) as Obj;

    assert.equal(t.eventId, orderId);
    assert.equal(t.bus, "orders");
    assert.deepEqual(t.received, {
      at: stored.receivedAt,
      offset: stored.offset,
      sizeBytes: stored.sizeBytes,
      units: 1,
      source: "shop.orders",
      type: "order.created",
    });
    assert.ok(Date.parse(t.received!.at) >= publishedAtMs - 1_000, t.received!.at);
    assert.equal(t.dispatched, true);
    assert.equal(t.complete, true);
    assert.deepEqual([...t.matchedRules].sort(), ["audit", "ship"]);
    assert.equal(t.ended, "partly dead-lettered");
    assert.equal(t.deliveries.length, 2);

    const shipped = t.deliveries.find((d) => d.rule === "ship")!;
    const sent = receiver.requestsTo("/flaky");
    assert.equal(sent.length, 3);
    assert.equal(shipped.targetId, "warehouse");
    assert.equal(shipped.url, `${receiver.url}/flaky`);
    assert.equal(shipped.state, "succeeded");
    assert.equal(shipped.deliveryId, sent[2]!.headers["webhook-id"]);
    // The transformed payload, exactly as the receiver got it; credentials hidden.
    assert.equal(shipped.payload.body, sent[2]!.body);
    assert.deepEqual(JSON.parse(shipped.payload.body), { order: "o-1", total: 250 });
    assert.equal(shipped.payload.headers.authorization, "***");
    assert.equal(shipped.payload.headers["x-api-key"], "***");
    assert.equal(shipped.payload.headers["x-note"], "visible");
    assert.equal(shipped.payload.headers["webhook-id"], shipped.deliveryId);
    assert.equal(
      sent[2]!.headers.authorization,
      "Bearer s3cret",
      "the receiver got the real value",
    );

    assert.deepEqual(
      shipped.attempts.map((a) => [a.attempt, a.status, a.outcome, a.error]),
      [
        [1, 500, "retryable", "HTTP 500"],
        [2, 503, "retryable", "HTTP 503: busy"],
        [3, 200, "success", undefined],
      ],
    );
    for (const a of shipped.attempts) {
      assert.ok(a.latencyMs >= 0 && a.latencyMs < 5_000, `latency ${a.latencyMs}`);
      assert.ok(
        Date.parse(a.at) >= Date.parse(shipped.createdAt),
        `${a.at} after ${shipped.createdAt}`,
      );
    }
    const times = shipped.attempts.map((a) => Date.parse(a.at));
    assert.ok(times[0]! < times[1]! && times[1]! < times[2]!, "attempts in order");
    assert.ok(Date.parse(shipped.finishedAt!) >= times[2]!);
    assert.equal(shipped.nextAttemptAt, undefined);
    assert.equal(shipped.deadLetter, undefined);

    const audited = t.deliveries.find((d) => d.rule === "audit")!;
    assert.equal(audited.targetId, "broken");
    assert.equal(audited.state, "dead-lettered");
    assert.deepEqual(audited.attempts, []);
    assert.match(audited.deadLetter!.reason, /^transform failed: .*no audit for o-1/);
    assert.ok(Date.parse(audited.deadLetter!.at) >= Date.parse(t.received!.at));
    // Its transform never produced a payload: the event in structured form is kept.
    assert.equal((JSON.parse(audited.payload.body) as Obj).id, orderId);
    assert.equal(audited.finishedAt, undefined);
    assert.equal(receiver.requestsTo("/never").length, 0);

    const onBus = await trace(orderId, "?bus=orders");
    assert.equal(onBus.status, 200);
    assert.deepEqual(onBus.body, t);
  });

  test("trace - an event no rule matched", async () => {
    const t = await traceWhen(lonelyId, (x) => x.dispatched);
    assert.equal(t.bus, "orders");
    assert.equal(t.received?.source, "nobody.listens");
    assert.deepEqual(t.matchedRules, []);
    assert.deepEqual(t.deliveries, []);
    assert.equal(t.complete, true);
    assert.equal(t.ended, "no rules matched");
  });

  test("trace - a delivery waiting for its retry is pending, with its next attempt time", async () => {
    const id = await publish({ Source: "shop.slow", DetailType: "tick", Detail: '{"n":1}' });
    const t = await traceWhen(id, (x) => x.deliveries[0]?.attempts.length === 1);
    const [waiting] = t.deliveries;
    assert.equal(t.ended, "pending");
    assert.deepEqual(t.matchedRules, ["slow"]);
    assert.equal(waiting!.state, "pending");
    assert.equal(waiting!.attempts[0]!.status, 500);
    const dueInMs = Date.parse(waiting!.nextAttemptAt!) - Date.parse(waiting!.attempts[0]!.at);
    assert.ok(dueInMs > 590_000 && dueInMs < 610_000, `next attempt ${dueInMs} ms after the first`);
    assert.equal(waiting!.finishedAt, undefined);
    assert.deepEqual(JSON.parse(waiting!.payload.body), { n: 1 });
  });

  test("trace - unknown ids, unknown buses, repeated bus and other methods are refused", async () => {
    const missing = await trace("never-published");
    assert.equal(missing.status, 404);
    assert.equal((missing.body.error as Obj).code, "EventNotFound");
    assert.match((missing.body.error as Obj).message as string, /"never-published".*on any bus/);

    const wrongBus = await trace(orderId, "?bus=default");
    assert.equal(wrongBus.status, 404);
    assert.equal((wrongBus.body.error as Obj).code, "EventNotFound");

    const noBus = await trace(orderId, "?bus=nope");
    assert.equal(noBus.status, 404);
    assert.equal((noBus.body.error as Obj).code, "BusNotFound");

    const twice = await trace(orderId, "?bus=orders&bus=default");
    assert.equal(twice.status, 400);
    assert.equal((twice.body.error as Obj).code, "ValidationError");

    const posted = await service.post(`/v1/events/${orderId}/trace`, {});
    assert.equal(posted.status, 405);
    await posted.body?.cancel();
  });

  test("trace - an id on several buses is EventIdAmbiguous until ?bus= names one", async () => {
    for (const bus of ["default", "orders"]) {
      const response = await service.post(
        `/v1/buses/${bus}/cloudevents`,
        { specversion: "1.0", id: "dup-1", source: "shop.twice", type: "dup" },
        { "content-type": "application/cloudevents+json" },
      );
      assert.equal(response.status, 200, await response.text());
    }
    const ambiguous = await trace("dup-1");
    assert.equal(ambiguous.status, 409);
    const error = ambiguous.body.error as Obj;
    assert.equal(error.code, "EventIdAmbiguous");
    assert.deepEqual([...(error.details as { buses: string[] }).buses].sort(), [
      "default",
      "orders",
    ]);
    assert.match(error.message as string, /\?bus=/);

    const named = await trace("dup-1", "?bus=default");
    assert.equal(named.status, 200);
    assert.equal(named.body.bus, "default");
    assert.equal((named.body.received as Obj).type, "dup");
  });

  test("trace - succeeded deliveries are kept for delivery.traceRetentionHours, then pruned", async () => {
    await traceWhen(orderId, (x) => x.ended !== "pending");
    const config = service.config;
    await service.close();
    serviceClosed = true;
    const restart = async (traceRetentionHours: number): Promise<RelaybusService> =>
      startRelaybus(
        {
          ...config,
          server: { ...config.server, port: 0 },
          delivery: { ...config.delivery, traceRetentionHours },
        },
        { logger: silentLogger },
      );
    let running = await restart(1);
    try {
      const kept = (await (
        await fetch(`${running.url}/v1/events/${orderId}/trace`)
      ).json()) as EventTrace;
      assert.equal(kept.complete, true);
      assert.deepEqual(kept.deliveries.map((d) => d.state).sort(), ["dead-lettered", "succeeded"]);
      await running.close();

      // 0: succeeded deliveries go at the first retention pass, which runs at start.
      running = await restart(0);
      const pruned = (await (
        await fetch(`${running.url}/v1/events/${orderId}/trace`)
      ).json()) as EventTrace;
      assert.equal(pruned.complete, false);
      assert.deepEqual(
        pruned.deliveries.map((d) => d.state),
        ["dead-lettered"],
      );
      assert.equal(pruned.ended, "dead-lettered");
      assert.deepEqual(pruned.matchedRules, ["audit"]);
      const lonely = (await (
        await fetch(`${running.url}/v1/events/${lonelyId}/trace`)
      ).json()) as EventTrace;
      assert.equal(lonely.complete, false);
      assert.equal(lonely.ended, "unknown");
    } finally {
      await running.close();
    }
  });
});
