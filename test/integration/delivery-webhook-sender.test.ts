import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test, type TestContext } from "node:test";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { createWebhookSender, type WebhookSender } from "../../src/delivery/webhook-sender.js";
import { silentLogger } from "../../src/types.js";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";

const LOOPBACK_ALLOWED = { ...DEFAULT_CONFIG.delivery.outbound, allowLoopback: true };

async function setup(t: TestContext): Promise<{ receiver: Receiver; sender: WebhookSender }> {
  const receiver = await createReceiver();
  // The receiver is on 127.0.0.1, which the default outbound policy refuses.
  const sender = createWebhookSender({ connectionsPerOrigin: 4, logger: silentLogger, closeTimeoutMs: 200, outbound: LOOPBACK_ALLOWED });
  t.after(async () => {
    await sender.close();
    await receiver.close();
    await assertNothingOpen();
  });
  return { receiver, sender };
}

const request = (url: string, timeoutMs = 2_000) => ({
  url,
  headers: { "content-type": "application/json", "webhook-id": "id-1", "x-extra": "yes" },
  body: '{"a":1}',
  timeoutMs,
});

test("sender - posts the body and headers and reports the status", async (t) => {
  const { receiver, sender } = await setup(t);
  const result = await sender.send(request(`${receiver.url}/hook?x=1`));
  assert.equal(result.status, 200);
  assert.equal(result.error, undefined);
  assert.ok(result.durationMs >= 0);
  const [received] = receiver.requests;
  assert.equal(received?.method, "POST");
  assert.equal(received?.path, "/hook?x=1");
  assert.equal(received?.body, '{"a":1}');
  assert.equal(received?.headers["webhook-id"], "id-1");
  assert.equal(received?.headers["x-extra"], "yes");
});

test("sender - reports a non-2xx status with a body excerpt and Retry-After", async (t) => {
  const { receiver, sender } = await setup(t);
  receiver.script("/hook", [
    { status: 429, headers: { "retry-after": "7" }, body: "slow   down\n" },
    { status: 400, body: "x".repeat(10_000) },
  ]);
  const limited = await sender.send(request(`${receiver.url}/hook`));
  assert.equal(limited.status, 429);
  assert.equal(limited.retryAfterMs, 7_000);
  assert.equal(limited.error, "slow down");
  const bad = await sender.send(request(`${receiver.url}/hook`));
  assert.equal(bad.status, 400);
  assert.equal(bad.error, "x".repeat(256));
});

test("sender - reuses kept-alive connections, also after an error status", async (t) => {
  const { receiver, sender } = await setup(t);
  for (let i = 0; i < 10; i++) {
    if (i === 3) receiver.script("/hook", [{ status: 500, body: "oops" }]);
    const result = await sender.send(request(`${receiver.url}/hook`));
    assert.equal(result.status, i === 3 ? 500 : 200);
  }
  const ports = new Set(receiver.requests.map((r) => r.remotePort));
  assert.equal(receiver.requests.length, 10);
  // undici's pool may alternate between two idle connections; it must not open one per request.
  assert.ok(ports.size <= 2, `expected kept-alive connections, saw ${ports.size} for 10 requests`);
});

test("sender - a hanging receiver ends as a timeout within the request's budget", async (t) => {
  const { receiver, sender } = await setup(t);
  receiver.always("/hang", "hang");
  const started = Date.now();
  const result = await sender.send(request(`${receiver.url}/hang`, 150));
  const elapsed = Date.now() - started;
  assert.equal(result.status, undefined);
  assert.equal(result.errorKind, "timeout");
  assert.match(result.error ?? "", /within 150 ms/);
  assert.ok(elapsed >= 140 && elapsed < 1_500, `took ${elapsed} ms`);
});

test("sender - a slow body counts against the same timeout as the headers", async (t) => {
  const { receiver, sender } = await setup(t);
  receiver.script("/slow", [{ status: 200, delayMs: 400 }]);
  const result = await sender.send(request(`${receiver.url}/slow`, 150));
  assert.equal(result.errorKind, "timeout");
});

test("sender - a refused connection is a connection error, not an exception", async (t) => {
  const { sender } = await setup(t);
  // Take a free port, then close it, so nothing listens there.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const result = await sender.send(request(`http://127.0.0.1:${port}/hook`));
  assert.equal(result.status, undefined);
  assert.equal(result.errorKind, "connection");
  assert.match(result.error ?? "", /ECONNREFUSED/);
});

test("sender - a URL that cannot be sent is an invalid request", async (t) => {
  const { sender } = await setup(t);
  const bad = await sender.send(request("not a url"));
  assert.equal(bad.errorKind, "invalid-request");
  const ftp = await sender.send(request("ftp://127.0.0.1/x"));
  assert.equal(ftp.errorKind, "invalid-request");
  assert.match(ftp.error ?? "", /ftp:/);
});

test("sender - close aborts requests still in flight after its wait", async (t) => {
  const { receiver, sender } = await setup(t);
  receiver.always("/hang", "hang");
  const hanging = sender.send(request(`${receiver.url}/hang`, 30_000));
  await receiver.waitFor(1, 5_000, "/hang");
  const started = Date.now();
  await sender.close();
  const result = await hanging;
  // Before the fix the request went on until the receiver closed: agent.destroy() after
  // agent.close() reaches no pool.
  assert.ok(Date.now() - started < 1_000, `close took ${Date.now() - started} ms`);
  assert.equal(result.errorKind, "connection");
  assert.match(result.error ?? "", /closed/);
});
