/**
 * Outbound safety, over real HTTP on loopback: the default configuration refuses loopback
 * targets (and dead-letters them at once), allowing loopback lets them through, host names
 * are judged by what they resolve to on every connection, redirects are not followed, and an
 * answer's body is read only up to the cap and within the attempt's timeout.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, LookupFunction } from "node:net";
import { test, type TestContext } from "node:test";
import { DEFAULT_CONFIG, type OutboundConfig } from "../../src/config/defaults.js";
import { classifyOutcome } from "../../src/delivery/classify-outcome.js";
import { createWebhookSender, type WebhookSender } from "../../src/delivery/webhook-sender.js";
import { silentLogger } from "../../src/types.js";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

const DEFAULT_OUTBOUND = DEFAULT_CONFIG.delivery.outbound;

interface DeadLetterBody {
  targetId: string;
  reason: string;
  attempts: { attempt: number; outcome: string; error?: string; status?: number }[];
}

function portOf(receiver: Receiver): number {
  return Number(new URL(receiver.url).port);
}

/** One rule on bus `guarded` sending every `safety.test` event to each of `targets` (id → URL). */
function rulesTo(targets: Record<string, string>): string {
  const list = Object.entries(targets)
    .map(
      ([id, url]) => `      - id: ${id}
        webhook: {url: "${url}"}
        retry: {baseDelayMs: 10, maxDelayMs: 20}`,
    )
    .join("\n");
  return `bus: guarded
rules:
  - name: everything
    pattern: {source: [safety.test]}
    targets:
${list}
`;
}

async function publish(service: TestService): Promise<void> {
  const response = await service.post("/v1/events", {
    Entries: [{ EventBusName: "guarded", Source: "safety.test", DetailType: "t", Detail: "{}" }],
  });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { FailedEntryCount: number };
  assert.equal(body.FailedEntryCount, 0);
}

async function eventually<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("outbound safety - with the default config, loopback targets are refused and dead-lettered without retries", async (t) => {
  const receiver = await createReceiver();
  const port = portOf(receiver);
  const service = await startTestService({
    rules: {
      "guarded.yaml": rulesTo({
        ip: `${receiver.url}/ip`,
        name: `http://localhost:${port}/name`,
        ipv6: `http://[::1]:${port}/ipv6`,
        mapped: `http://[::ffff:127.0.0.1]:${port}/mapped`,
        decimal: `http://2130706433:${port}/decimal`,
      }),
    },
    // The test helper allows loopback; this test is about the default.
    config: { delivery: { outbound: { allowLoopback: DEFAULT_OUTBOUND.allowLoopback } } },
  });
  t.after(async () => {
    await service.close();
    await receiver.close();
  });
  assert.equal(service.config.delivery.outbound.allowLoopback, false);

  await publish(service);
  const dead = await eventually("five dead letters", 5_000, async () => {
    const response = await service.get("/v1/dead-letters?bus=guarded");
    const { deadLetters } = (await response.json()) as { deadLetters: DeadLetterBody[] };
    return deadLetters.length === 5 ? deadLetters : undefined;
  });

  const byTarget = new Map(dead.map((d) => [d.targetId, d]));
  const expected: Record<string, RegExp> = {
    ip: /^127\.0\.0\.1 is a loopback address/,
    name: /^localhost resolved to (127\.0\.0\.1|::1), a loopback address/,
    ipv6: /^::1 is a loopback address/,
    mapped: /^::ffff:7f00:1 is a loopback address/,
    decimal: /^127\.0\.0\.1 is a loopback address/,
  };
  for (const [targetId, message] of Object.entries(expected)) {
    const letter = byTarget.get(targetId);
    assert.ok(letter !== undefined, `dead letter of ${targetId}`);
    // One attempt, permanent: a retry (10-20 ms apart here) would have shown up as a second.
    assert.equal(letter.attempts.length, 1, targetId);
    assert.equal(letter.attempts[0]?.outcome, "permanent", targetId);
    assert.equal(letter.attempts[0]?.status, undefined, targetId);
    const error = letter.attempts[0]?.error ?? "";
    assert.ok(error.startsWith("blocked-address: "), error);
    assert.match(error.slice("blocked-address: ".length), message, targetId);
    assert.match(error, /set delivery\.outbound\.allowLoopback: true to allow it$/, targetId);
    assert.equal(letter.reason, `permanent failure on attempt 1: ${error}`);
  }
  assert.equal(receiver.requests.length, 0, "nothing reached the receiver");
});

test("outbound safety - allowLoopback lets loopback targets through", async (t) => {
  const receiver = await createReceiver();
  const service = await startTestService({
    rules: {
      "guarded.yaml": rulesTo({
        ip: `${receiver.url}/ip`,
        name: `http://localhost:${portOf(receiver)}/name`,
      }),
    },
    config: { delivery: { outbound: { allowLoopback: true } } },
  });
  t.after(async () => {
    await service.close();
    await receiver.close();
  });
  await publish(service);
  await receiver.waitFor(1, 5_000, "/ip");
  await receiver.waitFor(1, 5_000, "/name");
  const response = await service.get("/v1/dead-letters?bus=guarded");
  assert.deepEqual(((await response.json()) as { deadLetters: unknown[] }).deadLetters, []);
});

/** A sender (and a receiver) closed after the test, which then checks nothing is left open. */
async function setup(
  t: TestContext,
  options: { outbound?: Partial<OutboundConfig>; lookup?: LookupFunction } = {},
): Promise<{ receiver: Receiver; sender: WebhookSender }> {
  const receiver = await createReceiver();
  const sender = createWebhookSender({
    connectionsPerOrigin: 4,
    logger: silentLogger,
    closeTimeoutMs: 200,
    outbound: { ...DEFAULT_OUTBOUND, ...options.outbound },
    ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
  });
  t.after(async () => {
    await sender.close();
    await receiver.close();
    await assertNothingOpen();
  });
  return { receiver, sender };
}

const request = (url: string, timeoutMs = 2_000) => ({
  url,
  headers: { "content-type": "application/json" },
  body: "{}",
  timeoutMs,
});

/** A resolver that answers `answers[i]` on its i-th call (the last one from then on). */
function resolverAnswering(...answers: string[][]): LookupFunction & { calls: number } {
  const lookup = ((_hostname, options, callback) => {
    const found = answers[Math.min(lookup.calls, answers.length - 1)]!;
    lookup.calls++;
    const all = found.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
    if (options.all === true) callback(null, all);
    else callback(null, all[0]!.address, all[0]!.family);
  }) as LookupFunction & { calls: number };
  lookup.calls = 0;
  return lookup;
}

test("outbound safety - a host name that resolves to loopback is refused like the address", async (t) => {
  const lookup = resolverAnswering(["127.0.0.1"]);
  const { receiver, sender } = await setup(t, { lookup });
  const result = await sender.send(request(`http://hooks.example.com:${portOf(receiver)}/hook`));
  assert.equal(result.status, undefined);
  assert.equal(result.errorKind, "blocked-address");
  assert.equal(
    result.error,
    "hooks.example.com resolved to 127.0.0.1, a loopback address; set delivery.outbound.allowLoopback: true to allow it",
  );
  assert.equal(classifyOutcome(result).outcome, "permanent");
  assert.equal(lookup.calls, 1);
  assert.equal(receiver.requests.length, 0);
});

test("outbound safety - a host name re-pointed after a first check is judged again on the next connection", async (t) => {
  // First 127.0.0.1 (allowed by CIDR), then 127.0.0.2 (loopback, refused): DNS rebinding.
  const lookup = resolverAnswering(["127.0.0.1"], ["127.0.0.2"]);
  const { receiver, sender } = await setup(t, {
    lookup,
    outbound: { allowedCidrs: ["127.0.0.1/32"] },
  });
  // `connection: close`, so the second request needs a new connection, hence a new lookup.
  receiver.always("/hook", { status: 200, headers: { connection: "close" } });
  const url = `http://rebind.example:${portOf(receiver)}/hook`;
  const first = await sender.send(request(url));
  assert.equal(first.status, 200);
  const second = await sender.send(request(url));
  assert.equal(second.errorKind, "blocked-address");
  assert.match(second.error ?? "", /^rebind\.example resolved to 127\.0\.0\.2, a loopback address/);
  assert.equal(lookup.calls, 2);
  assert.equal(receiver.requests.length, 1);
});

test("outbound safety - of a host name's addresses only the allowed ones are connected to", async (t) => {
  // A listener on 127.0.0.2, the refused address, at the receiver's port: it must see no
  // connection at all. (Linux routes all of 127/8 to loopback; elsewhere the test is skipped.)
  const refusedSide = createServer((_req, res) => res.end());
  let connections = 0;
  refusedSide.on("connection", () => connections++);
  const lookup = resolverAnswering(["127.0.0.2", "169.254.169.254", "127.0.0.1"]);
  const { receiver, sender } = await setup(t, {
    lookup,
    outbound: { allowedCidrs: ["127.0.0.1/32"] },
  });
  const listening = await new Promise<boolean>((resolve) => {
    refusedSide.once("error", () => resolve(false));
    refusedSide.listen(portOf(receiver), "127.0.0.2", () => resolve(true));
  });
  if (!listening) {
    t.skip("cannot listen on 127.0.0.2 here");
    return;
  }
  try {
    const result = await sender.send(request(`http://mixed.example:${portOf(receiver)}/hook`));
    assert.equal(result.status, 200);
    assert.equal(receiver.requests.length, 1);
    assert.equal(connections, 0, "no connection to the refused address");
  } finally {
    refusedSide.closeAllConnections();
    await new Promise<void>((resolve) => refusedSide.close(() => resolve()));
  }
});

test("outbound safety - redirects are not followed: a 3xx is the answer, and permanent", async (t) => {
  const { receiver, sender } = await setup(t, { outbound: { allowLoopback: true } });
  receiver.script("/moved", [
    { status: 302, headers: { location: `${receiver.url}/elsewhere` } },
    { status: 307, headers: { location: "http://169.254.169.254/latest/meta-data/" } },
    { status: 308, headers: { location: `${receiver.url}/elsewhere` } },
  ]);
  for (const status of [302, 307, 308]) {
    const result = await sender.send(request(`${receiver.url}/moved`));
    assert.equal(result.status, status);
    assert.equal(classifyOutcome(result).outcome, "permanent");
  }
  assert.equal(receiver.requestsTo("/elsewhere").length, 0);
  assert.equal(receiver.requests.length, 3);
});

/**
 * A server whose answers never end: `fast` writes as quickly as the client reads, `trickle`
 * writes 100 bytes every 20 ms. `closed` resolves when the client dropped the connection.
 */
async function startEndlessServer(
  t: TestContext,
  mode: "fast" | "trickle",
  status: number,
): Promise<{ url: string; closed: Promise<number> }> {
  let resolveClosed: (written: number) => void = () => {};
  const closed = new Promise<number>((resolve) => (resolveClosed = resolve));
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res: ServerResponse) => {
    req.resume();
    req.on("end", () => {
      let written = 0;
      res.writeHead(status, { "content-type": "text/plain" });
      res.on("close", () => resolveClosed(written));
      if (mode === "fast") {
        const chunk = Buffer.alloc(16_384, "x");
        const pump = () => {
          while (!res.destroyed) {
            written += chunk.length;
            if (!res.write(chunk)) {
              res.once("drain", pump);
              return;
            }
          }
        };
        pump();
      } else {
        const timer = setInterval(() => {
          if (res.destroyed) return;
          written += 100;
          res.write("y".repeat(100));
        }, 20);
        timers.add(timer);
        res.on("close", () => {
          clearInterval(timer);
          timers.delete(timer);
        });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    for (const timer of timers) clearInterval(timer);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, closed };
}

/** `promise`, or a failure naming `what` after `timeoutMs`; leaves no timer behind. */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

test("outbound safety - an endless answer is cut at maxResponseBytes, well within the timeout", async (t) => {
  // Servers first: after-hooks run in order, and the sender's checks that nothing is left open.
  const servers = [
    await startEndlessServer(t, "fast", 200),
    await startEndlessServer(t, "fast", 500),
  ];
  const { sender } = await setup(t, {
    outbound: { allowLoopback: true, maxResponseBytes: 65_536 },
  });
  for (const [i, status] of [200, 500].entries()) {
    const server = servers[i]!;
    const started = Date.now();
    const result = await sender.send(request(`${server.url}/hook`, 10_000));
    const elapsed = Date.now() - started;
    assert.equal(result.status, status);
    assert.ok(elapsed < 3_000, `took ${elapsed} ms`);
    if (status === 500) assert.equal(result.error, "x".repeat(256));
    else assert.equal(result.error, undefined);
    // The connection is dropped, not drained: the server sees it close.
    const written = await within(server.closed, 2_000, "the connection's close");
    assert.ok(written >= 65_536, `server wrote ${written} bytes`);
  }
});

test("outbound safety - an answer over maxResponseBytes drops its connection, one under it keeps it", async (t) => {
  const { receiver, sender } = await setup(t, {
    outbound: { allowLoopback: true, maxResponseBytes: 65_536 },
  });
  receiver.always("/small", { status: 200, body: "s".repeat(32_768) });
  receiver.always("/big", { status: 200, body: "b".repeat(262_144) });
  for (let i = 0; i < 4; i++)
    assert.equal((await sender.send(request(`${receiver.url}/small`))).status, 200);
  // undici's pool may alternate between two idle connections; it does not open one per request.
  const small = new Set(receiver.requestsTo("/small").map((r) => r.remotePort));
  assert.ok(
    small.size <= 2,
    `a body under the cap leaves its connection to be reused: ${small.size} for 4`,
  );

  for (let i = 0; i < 3; i++)
    assert.equal((await sender.send(request(`${receiver.url}/big`))).status, 200);
  const big = new Set(receiver.requestsTo("/big").map((r) => r.remotePort));
  assert.equal(
    big.size,
    3,
    "a body over the cap closes its connection, so each request opens a new one",
  );
});

test("outbound safety - an endless trickle under the cap ends at the attempt's timeout", async (t) => {
  const server = await startEndlessServer(t, "trickle", 200);
  const { sender } = await setup(t, { outbound: { allowLoopback: true } });
  const started = Date.now();
  const result = await sender.send(request(`${server.url}/hook`, 300));
  const elapsed = Date.now() - started;
  assert.equal(result.errorKind, "timeout");
  assert.ok(elapsed >= 280 && elapsed < 1_500, `took ${elapsed} ms`);
  await within(server.closed, 2_000, "the connection's close");
});
