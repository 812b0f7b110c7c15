/**
 * The delivery acceptance of the issue, end to end through a real service and real
 * receivers on loopback: a receiver failing N times then succeeding, one answering 429 with
 * Retry-After, one answering 410, one hanging past the timeout, and one down for a while
 * then back. Each ends as its policy says, nothing is lost, and every attempt is visible in
 * the event's trace (`GET /v1/events/{id}/trace`).
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

interface TraceAttempt {
  attempt: number;
  status?: number;
  outcome: string;
  error?: string;
  latencyMs: number;
  at: string;
}
interface TraceDelivery {
  rule: string;
  targetId: string;
  state: string;
  attempts: TraceAttempt[];
  deadLetter?: { reason: string };
}
interface Trace {
  ended: string;
  deliveries: TraceDelivery[];
}

/** A port nobody listens on now (taken, then let go). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function rules(receiverUrl: string, downPort: number): string {
  return `bus: shop
rules:
  - name: flaky
    pattern: {type: [flaky]}
    targets:
      - id: hook
        webhook: {url: "${receiverUrl}/flaky"}
        retry: {maxAttempts: 5, delaysMs: [20]}
  - name: limited
    pattern: {type: [limited]}
    targets:
      - id: hook
        webhook: {url: "${receiverUrl}/limited"}
        retry: {maxAttempts: 5, delaysMs: [10], maxDelayMs: 5000}
  - name: gone
    pattern: {type: [gone]}
    targets:
      - id: hook
        webhook: {url: "${receiverUrl}/gone"}
  - name: hanging
    pattern: {type: [hanging]}
    targets:
      - id: hook
        webhook: {url: "${receiverUrl}/hang", timeoutMs: 300}
        retry: {maxAttempts: 2, delaysMs: [20]}
  - name: down
    pattern: {type: [down]}
    targets:
      - id: hook
        webhook: {url: "http://127.0.0.1:${downPort}/back"}
        retry: {maxAttempts: 100, delaysMs: [50]}
        pacing: {circuitBreaker: {failureThreshold: 3, openSeconds: 1, maxOpenSeconds: 1}}
`;
}

describe("delivery acceptance", () => {
  let receiver: Receiver;
  let service: TestService;
  let downPort: number;

  before(async () => {
    receiver = await createReceiver();
    downPort = await freePort();
    receiver.script("/flaky", [{ status: 500 }, { status: 502 }, { status: 503 }]);
    receiver.script("/limited", [{ status: 429, headers: { "retry-after": "1" } }]);
    receiver.always("/gone", { status: 410, body: "endpoint removed" });
    receiver.always("/hang", "hang");
    service = await startTestService({ rules: { "shop.yaml": rules(receiver.url, downPort) } });
  });

  after(async () => {
    await service?.close();
    await receiver?.close();
  });

  async function publish(type: string): Promise<string> {
    const response = await service.post("/v1/events", {
      Entries: [{ EventBusName: "shop", Source: "acceptance", DetailType: type, Detail: JSON.stringify({ type }) }],
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { Entries: Array<{ EventId: string }> };
    return body.Entries[0]!.EventId;
  }

  async function trace(id: string): Promise<Trace> {
    const response = await service.get(`/v1/events/${id}/trace?bus=shop`);
    assert.equal(response.status, 200);
    return (await response.json()) as Trace;
  }

  /** Polls the trace until `done` says so. */
  async function traceWhen(id: string, timeoutMs: number, done: (t: Trace) => boolean): Promise<Trace> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const current = await trace(id);
      if (done(current)) return current;
      if (Date.now() > deadline) assert.fail(`trace of ${id} never got there: ${JSON.stringify(current)}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  test("a receiver failing 3 times then succeeding gets the event on the 4th attempt", async () => {
    const id = await publish("flaky");
    const result = await traceWhen(id, 10_000, (t) => t.ended === "delivered");
    const [delivery] = result.deliveries;
    assert.deepEqual(
      delivery!.attempts.map((a) => [a.attempt, a.status, a.outcome]),
      [
        [1, 500, "retryable"],
        [2, 502, "retryable"],
        [3, 503, "retryable"],
        [4, 200, "success"],
      ],
    );
    const ids = new Set(receiver.requestsTo("/flaky").map((r) => r.headers["webhook-id"]));
    assert.equal(ids.size, 1, "the same webhook-id on every attempt");
  });

  test("a 429 with Retry-After is retried no sooner than the receiver asked", async () => {
    const id = await publish("limited");
    const result = await traceWhen(id, 10_000, (t) => t.ended === "delivered");
    const attempts = result.deliveries[0]!.attempts;
    assert.deepEqual(
      attempts.map((a) => a.status),
      [429, 200],
    );
    const waitedMs = Date.parse(attempts[1]!.at) - Date.parse(attempts[0]!.at);
    assert.ok(waitedMs >= 1_000, `Retry-After: 1 honoured (waited ${waitedMs} ms, not the policy's 10 ms)`);
  });

  test("a 410 disables the target, says why, and later events are dead-lettered unsent", async () => {
    const first = await publish("gone");
    const dead = await traceWhen(first, 10_000, (t) => t.ended === "dead-lettered");
    assert.equal(dead.deliveries[0]!.attempts[0]!.status, 410);
    const status = await service.get("/v1/buses/shop/rules/gone/targets/hook/status");
    assert.equal(status.status, 200);
    const body = (await status.json()) as { state: string; reason: string };
    assert.equal(body.state, "disabled");
    assert.match(body.reason, /410 Gone/);

    const second = await publish("gone");
    const unsent = await traceWhen(second, 10_000, (t) => t.ended === "dead-lettered");
    assert.equal(unsent.deliveries[0]!.attempts.length, 0, "not sent to a disabled target");
    assert.match(unsent.deliveries[0]!.deadLetter!.reason, /^target disabled: .*410 Gone/);
    assert.equal(receiver.requestsTo("/gone").length, 1, "one request in all: the one that got 410");
  });

  test("a receiver hanging past the timeout ends as its retry policy says", async () => {
    const id = await publish("hanging");
    const result = await traceWhen(id, 10_000, (t) => t.ended === "dead-lettered");
    const delivery = result.deliveries[0]!;
    assert.equal(delivery.attempts.length, 2);
    for (const attempt of delivery.attempts) {
      assert.equal(attempt.status, undefined);
      assert.match(attempt.error!, /no complete answer within 300 ms/);
      assert.ok(attempt.latencyMs >= 290, `ended by the timeout (${attempt.latencyMs} ms)`);
    }
    assert.match(delivery.deadLetter!.reason, /gave up after 2 attempts/);
  });

  test("a receiver down for a while then back gets every event, and its circuit paused the attempts", async () => {
    const ids = [await publish("down"), await publish("down"), await publish("down")];
    // Failing: connection refused, until the circuit opens after 3 failures. (No delivery on
    // record yet while the event waits for dispatch.)
    await traceWhen(ids[0]!, 10_000, (t) => (t.deliveries[0]?.attempts.length ?? 0) >= 2);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const back = await createReceiver({ port: downPort });
    try {
      const traces = await Promise.all(ids.map((id) => traceWhen(id, 15_000, (t) => t.ended === "delivered")));
      for (const t of traces) {
        const attempts = t.deliveries[0]!.attempts;
        assert.equal(attempts.at(-1)!.status, 200);
        assert.ok(attempts.slice(0, -1).every((a) => a.status === undefined && a.outcome === "retryable"));
      }
      // Without the breaker, 3 deliveries retried every 50 ms for ~2.5 s would have made
      // about 150 attempts; open, it lets one probe through per second.
      const total = traces.reduce((n, t) => n + t.deliveries[0]!.attempts.length, 0);
      assert.ok(total < 40, `the circuit held attempts back (${total} attempts)`);
      const ended = new Set(back.requestsTo("/back").map((r) => r.headers["webhook-id"]));
      assert.equal(ended.size, 3, "each event arrived");
    } finally {
      await back.close();
    }
  });
});
