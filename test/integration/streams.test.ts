/**
 * Event streams end to end on a real Relaybus: a bus source, a filter, a transform and a
 * webhook sink on a real receiver; the API's lifecycle (create, pause, resume, delete);
 * retries and dead letters; rule-file streams and their problems.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

type Obj = Record<string, unknown>;

const open: { close(): Promise<void> }[] = [];
after(async () => {
  for (const thing of open.reverse()) await thing.close();
});

async function service(options: Parameters<typeof startTestService>[0] = {}): Promise<TestService> {
  const started = await startTestService(options);
  open.push(started);
  return started;
}

async function receiver(): Promise<Receiver> {
  const started = await createReceiver();
  open.push(started);
  return started;
}

async function json(response: Response): Promise<Obj> {
  const text = await response.text();
  return text === "" ? {} : (JSON.parse(text) as Obj);
}

async function publish(svc: TestService, bus: string, entries: Obj[]): Promise<void> {
  for (let i = 0; i < entries.length; i += 10) {
    const response = await svc.post("/v1/events", {
      Entries: entries.slice(i, i + 10).map((detail) => ({ Source: "shop", DetailType: "order.created", Detail: JSON.stringify(detail), EventBusName: bus })),
    });
    assert.equal(response.status, 200);
    assert.equal((await json(response)).FailedEntryCount, 0);
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const streamOf = async (svc: TestService, name: string): Promise<Obj> => json(await svc.get(`/v1/streams/${name}`));

test("streams - a rule-file stream carries a bus's events to a webhook, filtered and transformed, in order", async () => {
  const sink = await receiver();
  const svc = await service({
    rules: {
      "orders.yaml": `bus: orders
streams:
  - name: big-orders
    source: {bus: {bus: orders, startAt: oldest}}
    filter: {detail-type: [order.created], detail: {total: [{numeric: [">", 100]}]}}
    transform: '{"order": data.id, "total": data.total}'
    sink: {webhook: {url: "${sink.url}/in"}}
    batch: {maxEvents: 10, maxWaitMs: 20}
`,
    },
  });
  await publish(svc, "orders", Array.from({ length: 40 }, (_, i) => ({ id: i, total: i % 2 === 0 ? 500 : 5 })));
  const received = await sink.waitFor(20, 10_000, "/in");
  const bodies = received.map((r) => JSON.parse(r.body) as Obj);
  assert.deepEqual(
    bodies.map((b) => b.data),
    Array.from({ length: 20 }, (_, i) => ({ order: i * 2, total: 500 })),
  );
  assert.equal(bodies[0]?.type, "order.created", "the CloudEvent's attributes stay");
  const stream = await until("the counters", async () => {
    const s = await streamOf(svc, "big-orders");
    return (s.counters as Obj).eventsIn === 40 ? s : undefined;
  });
  assert.deepEqual(stream.counters, {
    eventsIn: 40,
    eventsOut: 20,
    eventsFiltered: 20,
    eventsDeadLettered: 0,
    bytesOut: (stream.counters as Obj).bytesOut,
    retries: 0,
    throttledMs: (stream.counters as Obj).throttledMs,
  });
  assert.equal(stream.state, "running");
  assert.equal(stream.position, "40", "the bus source's position is the last offset confirmed");
  assert.deepEqual(stream.origin, { kind: "file", file: `${svc.rulesDir}/orders.yaml`, line: 3 });
  const put = await fetch(`${svc.url}/v1/streams/big-orders`, { method: "DELETE" });
  assert.equal(put.status, 409);
  assert.equal(((await json(put)).error as Obj).code, "StreamManagedByFile");
});

test("streams - the API creates, pauses, resumes and deletes a stream; what is published while paused comes after", async () => {
  const sink = await receiver();
  const svc = await service();
  assert.equal((await svc.post("/v1/buses", { name: "clicks" })).status, 201);
  const definition = {
    name: "clicks-out",
    source: { bus: { bus: "clicks", startAt: "oldest" } },
    sink: { webhook: { url: `${sink.url}/clicks`, mode: "batch" } },
    batch: { maxEvents: 50, maxWaitMs: 10 },
  };
  const created = await svc.post("/v1/streams", definition);
  assert.equal(created.status, 201, JSON.stringify(await created.clone().json()));
  assert.equal((await svc.post("/v1/streams", definition)).status, 409);
  await publish(svc, "clicks", Array.from({ length: 30 }, (_, i) => ({ id: i })));
  await until("30 events at the sink", async () => (countBatchEvents(sink, "/clicks") >= 30 ? true : undefined));

  const paused = await json(await svc.post("/v1/streams/clicks-out:pause", {}));
  assert.equal(paused.state, "paused");
  await publish(svc, "clicks", Array.from({ length: 20 }, (_, i) => ({ id: 30 + i })));
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(countBatchEvents(sink, "/clicks"), 30, "nothing moves while paused");
  const resumed = await json(await svc.post("/v1/streams/clicks-out:resume", {}));
  assert.equal(resumed.state, "running");
  await until("50 events at the sink", async () => (countBatchEvents(sink, "/clicks") >= 50 ? true : undefined));
  const ids = sink.requestsTo("/clicks").flatMap((r) => (JSON.parse(r.body) as Obj[]).map((e) => (e.data as Obj).id));
  assert.deepEqual(ids, Array.from({ length: 50 }, (_, i) => i), "in order, each once");

  const list = await json(await svc.get("/v1/streams"));
  assert.deepEqual((list.streams as Obj[]).map((s) => s.name), ["clicks-out"]);
  assert.equal((await fetch(`${svc.url}/v1/streams/clicks-out`, { method: "DELETE" })).status, 204);
  assert.equal((await svc.get("/v1/streams/clicks-out")).status, 404);
});

function countBatchEvents(sink: Receiver, path: string): number {
  return sink.requestsTo(path).reduce((sum, r) => sum + (JSON.parse(r.body) as unknown[]).length, 0);
}

test("streams - a bad definition is refused with the field named, connector configs included", async () => {
  const svc = await service();
  const cases: [Obj, RegExp][] = [
    [{ name: "x", source: { nosuch: {} }, sink: { webhook: { url: "http://127.0.0.1:1/" } } }, /\/source\/nosuch: no source connector named "nosuch"/],
    [{ name: "x", source: { bus: { bus: "default" } }, sink: { webhook: { url: "ftp://x" } } }, /\/sink\/webhook\/url/],
    [{ name: "x", source: { bus: { bus: "default" } }, sink: { webhook: { url: "http://127.0.0.1:1/" } }, capacity: { minCU: 4, maxCU: 2 } }, /\/capacity\/maxCU: must be at least minCU/],
    [{ name: "x", source: { bus: { bus: "default" } }, sink: { webhook: { url: "http://127.0.0.1:1/" } }, filter: { source: "not-a-list" } }, /\/filter/],
    [{ name: "x", source: { bus: { bus: "default" } }, sink: { webhook: { url: "http://127.0.0.1:1/" } }, transform: "{" }, /transform/],
    [{ name: "x", source: { bus: { bus: "default" }, webhook: {} }, sink: { webhook: { url: "http://127.0.0.1:1/" } } }, /source/],
  ];
  for (const [definition, message] of cases) {
    const response = await svc.post("/v1/streams", definition);
    assert.equal(response.status, 400, JSON.stringify(definition));
    const error = (await json(response)).error as Obj;
    assert.ok(["InvalidStream", "InvalidTransform", "InvalidEventPattern"].includes(error.code as string), String(error.code));
    assert.match(error.message as string, message);
  }
  assert.deepEqual((await json(await svc.get("/v1/streams"))).streams, []);
});

test("streams - a failing sink is retried, then its events are dead-lettered and the stream goes on", async () => {
  const sink = await receiver();
  const svc = await service();
  sink.script("/flaky", [{ status: 503 }, { status: 503 }]);
  sink.always("/refuses", { status: 400 });
  for (const [name, path] of [["flaky", "/flaky"], ["refused", "/refuses"]] as const) {
    const response = await svc.post("/v1/streams", {
      name,
      source: { bus: { bus: "default", startAt: "oldest" } },
      sink: { webhook: { url: `${sink.url}${path}` } },
      retry: { maxAttempts: 3, delaysMs: [10] },
      batch: { maxEvents: 1 },
    });
    assert.equal(response.status, 201);
  }
  await publish(svc, "default", [{ n: 1 }, { n: 2 }]);
  const flaky = await until("flaky delivered", async () => {
    const s = await streamOf(svc, "flaky");
    return (s.counters as Obj).eventsOut === 2 ? s : undefined;
  });
  assert.equal((flaky.counters as Obj).retries, 2);
  const refused = await until("refused dead-lettered", async () => {
    const s = await streamOf(svc, "refused");
    return (s.counters as Obj).eventsDeadLettered === 2 ? s : undefined;
  });
  assert.equal((refused.counters as Obj).eventsOut, 0);
  const dead = await json(await svc.get("/v1/streams/refused/dead-letters"));
  const letters = dead.deadLetters as Obj[];
  assert.equal(letters.length, 2);
  assert.match(letters[0]?.reason as string, /the sink refused it: .*400/);
  assert.deepEqual(((letters[1]?.event as Obj).data as Obj), { n: 2 }, "the payload is kept");
});

test("streams - with deadLetter none a stream fails at the batch, and resumes from it once started again", async () => {
  const sink = await receiver();
  const svc = await service();
  sink.always("/down", { status: 400 });
  const response = await svc.post("/v1/streams", {
    name: "strict",
    source: { bus: { bus: "default", startAt: "oldest" } },
    sink: { webhook: { url: `${sink.url}/down` } },
    deadLetter: "none",
  });
  assert.equal(response.status, 201);
  await publish(svc, "default", [{ n: 1 }, { n: 2 }, { n: 3 }]);
  const failed = await until("failed", async () => {
    const s = await streamOf(svc, "strict");
    return s.state === "failed" ? s : undefined;
  });
  assert.match(failed.reason as string, /could not be written \(deadLetter: none\)/);
  sink.always("/down", { status: 200 });
  const resumed = await json(await svc.post("/v1/streams/strict:resume", {}));
  assert.equal(resumed.state, "running");
  await until("delivered after the restart", async () => {
    const s = await streamOf(svc, "strict");
    return (s.counters as Obj).eventsOut === 3 ? s : undefined;
  });
  const okBodies = sink.requestsTo("/down").filter((r) => r.body !== "").map((r) => ((JSON.parse(r.body) as Obj).data as Obj).n);
  assert.deepEqual(okBodies.slice(-3), [1, 2, 3], "nothing skipped");
});

test("streams - a rule file with a bad stream is refused whole, with file and line", async () => {
  const svc = await service();
  const reload = await fetch(`${svc.url}/v1/rules:reload`, { method: "POST" });
  assert.equal(reload.status, 200);
  const { writeFileSync } = await import("node:fs");
  writeFileSync(
    `${svc.rulesDir}/bad.yaml`,
    `streams:
  - name: s1
    source: {bus: {bus: default}}
    sink: {webhook: {url: "http://127.0.0.1:1/"}}
  - name: s1
    source: {bus: {bus: default}}
    sink: {webhook: {url: "http://127.0.0.1:1/", nope: 1}}
`,
  );
  const refused = await fetch(`${svc.url}/v1/rules:reload`, { method: "POST" });
  assert.equal(refused.status, 400);
  const error = (await json(refused)).error as Obj;
  assert.equal(error.code, "RulesReloadFailed");
  assert.match(error.message as string, /bad\.yaml:7: \/streams\/1\/sink\/webhook/);
  assert.deepEqual((await json(await svc.get("/v1/streams"))).streams, [], "the running set stays");
});

test("streams - rule-file schedules put events on a bus, and a stream's schedule source feeds a sink", async () => {
  const sink = await receiver();
  const svc = await service({
    rules: {
      "ticks.yaml": `bus: ticks
schedules:
  - name: every-second
    expression: rate(1 second)
    bus: ticks
    event: {source: test.scheduler, type: Tick, data: {from: schedule}}
streams:
  - name: ticker
    source: {schedule: {expression: rate(1 second), event: {type: StreamTick}}}
    sink: {webhook: {url: "${sink.url}/ticks"}}
`,
    },
  });
  await sink.waitFor(2, 10_000, "/ticks");
  const tick = JSON.parse(sink.requestsTo("/ticks")[0]!.body) as Obj;
  assert.equal(tick.type, "StreamTick");
  assert.match(tick.id as string, /^ticker:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const events = await until("scheduled events on the bus", async () => {
    const page = await json(await svc.get("/v1/buses/ticks/events?limit=10"));
    const list = page.events as Obj[];
    return list.length >= 2 ? list : undefined;
  });
  const first = events[0]!.event as Obj;
  assert.equal(first.type, "Tick");
  assert.deepEqual(first.data, { from: "schedule" });
  assert.match(first.id as string, /^every-second:/);
});

test("streams - a bad schedule expression is refused with its file, line and the field", async () => {
  const svc = await service();
  const { writeFileSync } = await import("node:fs");
  writeFileSync(
    `${svc.rulesDir}/bad.yaml`,
    `schedules:
  - name: nightly
    expression: cron(0 25 * * ? *)
    bus: default
    event: {source: s, type: t}
streams:
  - name: s
    source: {schedule: {expression: "rate(0 minutes)"}}
    sink: {webhook: {url: "http://127.0.0.1:1/"}}
`,
  );
  const refused = await fetch(`${svc.url}/v1/rules:reload`, { method: "POST" });
  assert.equal(refused.status, 400);
  const message = ((await json(refused)).error as Obj).message as string;
  assert.match(message, /bad\.yaml:3: \/schedules\/0\/expression: .*hours.* 25/);
  assert.match(message, /bad\.yaml:8: \/streams\/0\/source\/schedule\/expression: /);
});

test("streams - GET /v1/schedules shows each schedule's file, next and last fire", async () => {
  const svc = await service({
    rules: {
      "s.yaml": `schedules:
  - name: later
    expression: at(2099-01-01T00:00:00)
    bus: default
    event: {source: s, type: t}
`,
    },
  });
  const list = await json(await svc.get("/v1/schedules"));
  const [later] = list.schedules as Obj[];
  assert.equal(later?.name, "later");
  assert.equal(later?.nextFireAt, "2099-01-01T00:00:00.000Z");
  assert.deepEqual(later?.origin, { kind: "file", file: `${svc.rulesDir}/s.yaml`, line: 2 });
  assert.equal((await svc.get("/v1/schedules/nope")).status, 404);
});

test("streams - a webhook sink obeys the outbound policy: a loopback URL is refused for good, as for rule targets", async () => {
  const sink = await receiver();
  const svc = await service({ config: { delivery: { outbound: { allowLoopback: false } } } });
  const response = await svc.post("/v1/streams", {
    name: "to-loopback",
    source: { bus: { bus: "default", startAt: "oldest" } },
    sink: { webhook: { url: `${sink.url}/private` } },
  });
  assert.equal(response.status, 201);
  await publish(svc, "default", [{ n: 1 }]);
  const dead = await until("the dead letter", async () => {
    const page = await json(await svc.get("/v1/streams/to-loopback/dead-letters"));
    const letters = page.deadLetters as Obj[];
    return letters.length > 0 ? letters : undefined;
  });
  assert.match(dead[0]?.reason as string, /the sink refused it: .*loopback/i);
  assert.equal(sink.requestsTo("/private").length, 0, "nothing reached the address");
});

test("streams - GET shows connector credentials as ***", async () => {
  const svc = await service();
  const response = await svc.post("/v1/streams", {
    name: "secretive",
    source: { postgres: { connectionString: "postgres://app:hunter2@127.0.0.1:1/db", table: "t", column: "id" } },
    sink: { webhook: { url: "http://127.0.0.1:9/in", headers: { authorization: "Bearer abc", "x-trace": "keep" } } },
    state: "paused",
  });
  assert.equal(response.status, 201);
  const shown = JSON.stringify((await json(await svc.get("/v1/streams/secretive"))).definition);
  assert.ok(!shown.includes("hunter2") && !shown.includes("Bearer abc"), shown);
  assert.match(shown, /postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/db/);
  assert.match(shown, /"x-trace":"keep"/);
});

test("streams - limits.maxStreams counts file and API streams together", async () => {
  const svc = await service({
    config: { limits: { maxStreams: 2 } },
    rules: { "one.yaml": "streams:\n  - name: from-file\n    source: {bus: {bus: default}}\n    sink: {file: {path: /dev/null, fsync: false}}\n    state: paused\n" },
  });
  const definition = (name: string) => ({ name, source: { bus: { bus: "default" } }, sink: { file: { path: "/dev/null", fsync: false } }, state: "paused" });
  assert.equal((await svc.post("/v1/streams", definition("api-1"))).status, 201);
  const refused = await svc.post("/v1/streams", definition("api-2"));
  assert.equal(refused.status, 409);
  const error = (await json(refused)).error as Obj;
  assert.equal(error.code, "TooManyStreams");
  assert.match(error.message as string, /2 streams already.*limits\.maxStreams/);
  const replaced = await fetch(`${svc.url}/v1/streams/api-1`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...definition("api-1"), description: "replacing is not adding" }),
  });
  assert.equal(replaced.status, 200);
});

test("streams - a bus source starting at newest keeps that moment: events published while it is paused come after", async () => {
  const sink = await receiver();
  const svc = await service();
  await publish(svc, "default", [{ before: 1 }]);
  const created = await svc.post("/v1/streams", {
    name: "from-now",
    source: { bus: { bus: "default" } },
    sink: { webhook: { url: `${sink.url}/now` } },
  });
  assert.equal(created.status, 201);
  await until("the start position saved", async () => ((await streamOf(svc, "from-now")).position === "1" ? true : undefined));
  assert.equal((await svc.post("/v1/streams/from-now:pause", {})).status, 200);
  await publish(svc, "default", [{ during: 1 }]);
  assert.equal((await svc.post("/v1/streams/from-now:resume", {})).status, 200);
  await publish(svc, "default", [{ after: 1 }]);
  const got = await sink.waitFor(2, 10_000, "/now");
  assert.deepEqual(got.map((r) => (JSON.parse(r.body) as Obj).data), [{ during: 1 }, { after: 1 }], "nothing from before, nothing skipped");
});

test("streams - an HTTP source stream answers its producer only once the sink (a bus) stored the events", async () => {
  const { freePort } = await import("../helpers/relaybus-process.js");
  const port = await freePort();
  const svc = await service();
  assert.equal((await svc.post("/v1/buses", { name: "inbox" })).status, 201);
  const created = await svc.post("/v1/streams", {
    name: "http-in",
    source: { http: { port, path: "/in" } },
    sink: { bus: { bus: "inbox" } },
    batch: { maxEvents: 10, maxWaitMs: 5 },
  });
  assert.equal(created.status, 201, await created.text());
  const post = (body: unknown, contentType: string) =>
    fetch(`http://127.0.0.1:${port}/in`, { method: "POST", headers: { "content-type": contentType }, body: JSON.stringify(body) });
  const answer = await until("the endpoint", async () => {
    try {
      return await post([1, 2].map((n) => ({ specversion: "1.0", id: `h-${n}`, source: "producer", type: "t", data: { n } })), "application/cloudevents-batch+json");
    } catch {
      return undefined;
    }
  });
  assert.equal(answer.status, 200);
  assert.deepEqual(await answer.json(), { accepted: 2 });
  // By the time the producer has its 200, the events are on the bus.
  const page = await json(await svc.get("/v1/buses/inbox/events?limit=10"));
  assert.deepEqual((page.events as Obj[]).map((e) => (e.event as Obj).id), ["h-1", "h-2"]);
  const bad = await post({ not: "a cloudevent" }, "application/cloudevents+json");
  assert.equal(bad.status, 400);
});

test("streams - dead letters are redriven through the running stream (the transform's again through the transform) and purged", async () => {
  const sink = await receiver();
  const svc = await service();
  sink.always("/dl", { status: 400 });
  const definition = (transform: string) => ({
    name: "dl",
    source: { bus: { bus: "default", startAt: "oldest" } },
    transform,
    sink: { webhook: { url: `${sink.url}/dl` } },
  });
  assert.equal((await svc.post("/v1/streams", definition('data.bad ? $error("bad event") : data'))).status, 201);
  await publish(svc, "default", [{ n: 1 }, { n: 2, bad: true }, { n: 3 }]);
  const letters = await until("three dead letters", async () => {
    const page = await json(await svc.get("/v1/streams/dl/dead-letters"));
    const list = page.deadLetters as Obj[];
    return list.length === 3 ? list : undefined;
  });
  assert.deepEqual(letters.map((l) => l.stage), ["transform", "sink", "sink"], "the transform's failure first: it happened before the sink was tried");

  // Paused: refused.
  await svc.post("/v1/streams/dl:pause", {});
  const refused = await svc.post("/v1/streams/dl/dead-letters:redrive", { all: true });
  assert.equal(refused.status, 409);
  assert.equal(((await json(refused)).error as Obj).code, "StreamNotRunning");
  assert.equal((await svc.post("/v1/streams/dl/dead-letters:redrive", { ids: [], all: true })).status, 400);

  // Fix the transform and the sink, then redrive: every event arrives once, transformed by the new transform.
  const replaced = await fetch(`${svc.url}/v1/streams/dl`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(definition('{"n": data.n, "fixed": true}')),
  });
  assert.equal(replaced.status, 200);
  await svc.post("/v1/streams/dl:resume", {});
  sink.always("/dl", { status: 200 });
  const redrive = await json(await svc.post("/v1/streams/dl/dead-letters:redrive", { all: true }));
  assert.deepEqual(redrive, { redriven: 3, deadLetteredAgain: 0, more: false });
  const delivered = sink.requestsTo("/dl").filter((r) => r.body !== "").slice(-3).map((r) => (JSON.parse(r.body) as Obj).data);
  assert.deepEqual(delivered, [{ n: 2, fixed: true }, { n: 1 }, { n: 3 }], "the transform's dead letter went through the new transform; the sink's as they were written");
  assert.deepEqual((await json(await svc.get("/v1/streams/dl/dead-letters"))).deadLetters, []);

  // Purge.
  sink.always("/dl", { status: 400 });
  await publish(svc, "default", [{ n: 4 }]);
  const [one] = await until("a new dead letter", async () => {
    const list = (await json(await svc.get("/v1/streams/dl/dead-letters"))).deadLetters as Obj[];
    return list.length === 1 ? list : undefined;
  });
  assert.deepEqual(await json(await svc.post("/v1/streams/dl/dead-letters:purge", { ids: [one!.id, 999_999] })), { purged: 1 });
  assert.deepEqual((await json(await svc.get("/v1/streams/dl/dead-letters"))).deadLetters, []);
});
