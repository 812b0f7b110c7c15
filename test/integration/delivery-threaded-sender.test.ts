import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import {
  createThreadedWebhookSender,
  type ThreadedWebhookSender,
  type ThreadedWebhookSenderOptions,
} from "../../src/delivery/threaded-webhook-sender.js";
import type { Logger } from "../../src/types.js";
import { silentLogger } from "../../src/types.js";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";

const LOOPBACK_ALLOWED = { ...DEFAULT_CONFIG.delivery.outbound, allowLoopback: true };

/** A threaded sender (and `receivers` receivers), closed after the test, which then checks nothing is left open. */
async function setup(
  t: TestContext,
  options: Partial<ThreadedWebhookSenderOptions> & { receivers?: number } = {},
): Promise<{ receivers: Receiver[]; sender: ThreadedWebhookSender }> {
  const { receivers: count = 1, ...senderOptions } = options;
  const receivers = await Promise.all(Array.from({ length: count }, () => createReceiver()));
  const sender = createThreadedWebhookSender({
    connectionsPerOrigin: 4,
    logger: silentLogger,
    closeTimeoutMs: 200,
    outbound: LOOPBACK_ALLOWED,
    ...senderOptions,
  });
  t.after(async () => {
    await sender.close();
    await Promise.all(receivers.map((r) => r.close()));
    await assertNothingOpen();
  });
  return { receivers, sender };
}

const request = (url: string, timeoutMs = 2_000, body = '{"a":1}') => ({
  url,
  headers: { "content-type": "application/json", "webhook-id": "id-1", "x-extra": "yes ünïcode" },
  body,
  timeoutMs,
});

test("threaded sender - posts the body and headers intact and reports the status", async (t) => {
  const { receivers, sender } = await setup(t);
  const receiver = receivers[0]!;
  const body = JSON.stringify({ text: "héllo ✓", n: 1 });
  const result = await sender.send(request(`${receiver.url}/hook?x=1`, 2_000, body));
  assert.equal(result.status, 200);
  assert.equal(result.error, undefined);
  assert.ok(result.durationMs >= 0);
  const [received] = receiver.requests;
  assert.equal(received?.method, "POST");
  assert.equal(received?.path, "/hook?x=1");
  assert.equal(received?.body, body);
  assert.equal(received?.headers["content-type"], "application/json");
  assert.equal(received?.headers["webhook-id"], "id-1");
  // Latin-1 characters cross the thread and the wire as they were.
  assert.equal(received?.headers["x-extra"], "yes ünïcode");
});

test("threaded sender - reports a non-2xx status with its body excerpt and Retry-After", async (t) => {
  const { receivers, sender } = await setup(t);
  const receiver = receivers[0]!;
  receiver.script("/hook", [
    { status: 429, headers: { "retry-after": "7" }, body: "slow   down\n" },
    { status: 503, headers: { "retry-after": new Date(Date.now() + 60_000).toUTCString() } },
    { status: 400, body: "x".repeat(10_000) },
  ]);
  const limited = await sender.send(request(`${receiver.url}/hook`));
  assert.equal(limited.status, 429);
  assert.equal(limited.retryAfterMs, 7_000);
  assert.equal(limited.error, "slow down");
  const unavailable = await sender.send(request(`${receiver.url}/hook`));
  assert.equal(unavailable.status, 503);
  assert.ok(
    unavailable.retryAfterMs !== undefined &&
      unavailable.retryAfterMs > 55_000 &&
      unavailable.retryAfterMs <= 60_000,
    `retryAfterMs ${unavailable.retryAfterMs}`,
  );
  const bad = await sender.send(request(`${receiver.url}/hook`));
  assert.equal(bad.status, 400);
  assert.equal(bad.error, "x".repeat(256));
});

test("threaded sender - a hanging receiver ends as a timeout within the request's budget", async (t) => {
  const { receivers, sender } = await setup(t);
  const receiver = receivers[0]!;
  receiver.always("/hang", "hang");
  await sender.send(request(`${receiver.url}/warm`)); // the thread's start-up is not the point
  const started = Date.now();
  const result = await sender.send(request(`${receiver.url}/hang`, 150));
  const elapsed = Date.now() - started;
  assert.equal(result.status, undefined);
  assert.equal(result.errorKind, "timeout");
  assert.match(result.error ?? "", /within 150 ms/);
  assert.ok(elapsed >= 140 && elapsed < 1_500, `took ${elapsed} ms`);
  receiver.script("/slow", [{ status: 200, delayMs: 400 }]);
  const slow = await sender.send(request(`${receiver.url}/slow`, 150));
  assert.equal(slow.errorKind, "timeout");
});

test("threaded sender - an address the outbound policy refuses ends as blocked-address", async (t) => {
  const { receivers, sender } = await setup(t, { outbound: DEFAULT_CONFIG.delivery.outbound });
  const receiver = receivers[0]!;
  const result = await sender.send(request(`${receiver.url}/hook`));
  assert.equal(result.status, undefined);
  assert.equal(result.errorKind, "blocked-address");
  assert.match(result.error ?? "", /127\.0\.0\.1/);
  assert.equal(receiver.requests.length, 0);
  const bad = await sender.send(request("not a url"));
  assert.equal(bad.errorKind, "invalid-request");
});

test("threaded sender - many concurrent requests over 2 threads each get their own answer", async (t) => {
  const { receivers, sender } = await setup(t, {
    threads: 2,
    receivers: 3,
    connectionsPerOrigin: 8,
  });
  const count = 600;
  const expected: { status: number; body: string }[] = [];
  const sends = [];
  for (let i = 0; i < count; i++) {
    const receiver = receivers[i % receivers.length]!;
    // Mixed statuses, a body naming the request, and delays that reorder the answers.
    const status = i % 3 === 0 ? 200 : 400 + (i % 100);
    expected.push({ status, body: `answer ${i}` });
    receiver.script(`/r/${i}`, [{ status, body: `answer ${i}`, delayMs: (i * 7) % 25 }]);
    sends.push(sender.send(request(`${receiver.url}/r/${i}`, 5_000, JSON.stringify({ i }))));
  }
  const results = await Promise.all(sends);
  results.forEach((result, i) => {
    assert.equal(result.status, expected[i]!.status, `request ${i}`);
    assert.equal(
      result.error,
      expected[i]!.status === 200 ? undefined : expected[i]!.body,
      `request ${i}`,
    );
  });
  for (const [index, receiver] of receivers.entries()) {
    for (const received of receiver.requests) {
      const i = Number(received.path.slice("/r/".length));
      assert.equal(i % receivers.length, index);
      assert.equal(received.body, JSON.stringify({ i }));
    }
  }
  assert.equal(
    receivers.reduce((n, r) => n + r.requests.length, 0),
    count,
  );
});

test("threaded sender - close resolves hanging requests and forwards the thread's warning", async (t) => {
  const warnings: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (message) => warnings.push(message) };
  const { receivers, sender } = await setup(t, { logger });
  const receiver = receivers[0]!;
  receiver.always("/hang", "hang");
  const hanging = [
    sender.send(request(`${receiver.url}/hang`, 30_000)),
    sender.send(request(`${receiver.url}/hang`, 30_000)),
  ];
  await receiver.waitFor(2, 5_000, "/hang");
  const started = Date.now();
  await sender.close();
  const results = await Promise.all(hanging);
  assert.ok(Date.now() - started < 2_000, `close took ${Date.now() - started} ms`);
  for (const result of results) {
    assert.equal(result.status, undefined);
    assert.equal(result.errorKind, "connection");
  }
  assert.ok(
    warnings.some((w) => /in flight at close/.test(w)),
    `warnings: ${JSON.stringify(warnings)}`,
  );
  const after = await sender.send(request(`${receiver.url}/hook`));
  assert.equal(after.errorKind, "connection");
  assert.match(after.error ?? "", /closed/);
});

test("threaded sender - a thread that dies fails its requests in flight, and sending goes on", async (t) => {
  const warnings: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (message) => warnings.push(message) };
  const { receivers, sender } = await setup(t, { logger });
  const receiver = receivers[0]!;
  assert.equal((await sender.send(request(`${receiver.url}/hook`))).status, 200);
  receiver.always("/hang", "hang");
  const hanging = [
    sender.send(request(`${receiver.url}/hang`, 30_000)),
    sender.send(request(`${receiver.url}/hang`, 30_000)),
  ];
  await receiver.waitFor(2, 5_000, "/hang");
  await sender.terminateThread(0);
  for (const result of await Promise.all(hanging)) {
    assert.equal(result.status, undefined);
    assert.equal(result.errorKind, "connection");
    assert.match(result.error ?? "", /^sender thread died: /);
  }
  assert.ok(
    warnings.some((w) => /thread ended/.test(w)),
    `warnings: ${JSON.stringify(warnings)}`,
  );
  const after = await sender.send(request(`${receiver.url}/after`));
  assert.equal(after.status, 200);
  assert.equal(receiver.requestsTo("/after").length, 1);
});

test("threaded sender - a custom lookup or a bad thread count is refused at creation", () => {
  const base = { connectionsPerOrigin: 4, logger: silentLogger };
  assert.throws(
    () => createThreadedWebhookSender({ ...base, lookup: (() => undefined) as never }),
    (error: { code?: string }) => error.code === "InvalidConfig",
  );
  assert.throws(
    () => createThreadedWebhookSender({ ...base, threads: 0 }),
    (error: { code?: string }) => error.code === "InvalidConfig",
  );
});
