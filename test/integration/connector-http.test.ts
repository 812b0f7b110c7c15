/**
 * The HTTP source on a real port: each CloudEvents mode, wrapping, the answers it gives
 * (200 only once the stream confirmed, 400, 401, 404, 405, 413, 503), and how it stops.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { test, type TestContext } from "node:test";
import type { SourceBatch } from "../../connectors/index.js";
import { httpSource, type HttpSourceConfig } from "../../connectors/http/index.js";
import type { CloudEvent } from "../../src/types.js";
import { freePort } from "../conformance/harnesses/http.js";
import { runSource, sourceContext } from "../helpers/connector-runs.js";
import { assertNothingOpen } from "../helpers/open-handles.js";

interface Endpoint {
  url: string;
  port: number;
  batches: SourceBatch[];
  /** Stops the source; resolves once run() settled, rejects if it rejected. */
  stop(): Promise<unknown>;
  running: Promise<void>;
}

const EVENT: CloudEvent = {
  specversion: "1.0",
  id: "e-1",
  source: "test",
  type: "http.test",
  data: { n: 1 },
};

/**
 * Runs the source; `confirm` decides each batch's fate (default: confirmed at once).
 * Stopped and checked for open handles when the test ends.
 */
async function startEndpoint(
  t: TestContext,
  config: Partial<HttpSourceConfig> = {},
  options: { maxBatchEvents?: number; confirm?: (batch: SourceBatch) => Promise<void> } = {},
): Promise<Endpoint> {
  const port = config.port ?? (await freePort());
  const { batches, stop, running } = runSource(
    httpSource,
    { ...config, port },
    {
      streamName: "http-test",
      maxBatchEvents: options.maxBatchEvents,
      handle: options.confirm,
    },
  );
  const path = config.path ?? "/events";
  await waitUntilListening(port);
  stopWhenDone(t, stop);
  return { url: `http://127.0.0.1:${port}${path}`, port, batches, stop, running };
}

const stopsOfTest = new WeakMap<TestContext, (() => Promise<unknown>)[]>();

/** Stops every endpoint a test started, then checks that nothing is left open. */
function stopWhenDone(t: TestContext, stop: () => Promise<unknown>): void {
  let stops = stopsOfTest.get(t);
  if (stops === undefined) {
    const list: (() => Promise<unknown>)[] = [];
    stops = list;
    stopsOfTest.set(t, list);
    t.after(async () => {
      for (const each of list) await each();
      await assertNothingOpen();
    });
  }
  stops.push(stop);
}

/** Resolves once something accepts connections on `port` (the source's run() listens). */
async function waitUntilListening(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (accepted) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`nothing listens on ${port}`);
}

/** POSTs and reads the answer; the connection is not kept. */
async function post(
  url: string,
  body: string | Buffer,
  headers: Record<string, string>,
  method = "POST",
) {
  const response = await fetch(url, {
    method,
    body: method === "GET" ? undefined : body,
    headers: { connection: "close", ...headers },
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    json: text === "" ? undefined : (JSON.parse(text) as Record<string, unknown>),
  };
}

const errorCode = (json: Record<string, unknown> | undefined) =>
  (json?.["error"] as { code?: string } | undefined)?.code;

test("http source - structured mode hands the event over unchanged and answers 200 once it is confirmed", async (t) => {
  let confirm: () => void = () => {};
  const endpoint = await startEndpoint(
    t,
    {},
    { confirm: () => new Promise<void>((resolve) => (confirm = resolve)) },
  );
  const event = {
    ...EVENT,
    time: "2024-05-01T12:00:00Z",
    tenant: "acme",
    datacontenttype: "application/json",
  };
  let answered = false;
  const answer = post(endpoint.url, JSON.stringify(event), {
    "content-type": "application/cloudevents+json; charset=utf-8",
  }).then((r) => {
    answered = true;
    return r;
  });
  while (endpoint.batches.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(answered, false, "no answer before the stream confirmed");
  confirm();
  const { status, json } = await answer;
  assert.equal(status, 200);
  assert.deepEqual(json, { accepted: 1 });
  assert.deepEqual(endpoint.batches[0]?.events, [event]);
  assert.equal(endpoint.batches[0]?.position, undefined, "the producer keeps the position");
});

test("http source - batch mode splits a request into batches of maxBatchEvents, in order", async (t) => {
  const endpoint = await startEndpoint(t, {}, { maxBatchEvents: 4 });
  const events = Array.from({ length: 10 }, (_, i) => ({ ...EVENT, id: `b-${i}` }));
  const { status, json } = await post(endpoint.url, JSON.stringify(events), {
    "content-type": "application/cloudevents-batch+json",
  });
  assert.equal(status, 200);
  assert.deepEqual(json, { accepted: 10 });
  assert.deepEqual(
    endpoint.batches.map((b) => b.events.length),
    [4, 4, 2],
  );
  assert.deepEqual(
    endpoint.batches.flatMap((b) => b.events.map((e) => e.id)),
    events.map((e) => e.id),
  );
  const empty = await post(endpoint.url, "[]", {
    "content-type": "application/cloudevents-batch+json",
  });
  assert.deepEqual([empty.status, empty.json], [200, { accepted: 0 }]);
  assert.equal(endpoint.batches.length, 3, "an empty batch hands nothing over");
});

test("http source - binary mode takes attributes from ce- headers and the body as data", async (t) => {
  const endpoint = await startEndpoint(t);
  const base = { "ce-specversion": "1.0", "ce-source": "bin", "ce-type": "bin.test" };
  assert.equal(
    (
      await post(endpoint.url, '{"x":1}', {
        ...base,
        "ce-id": "j",
        "ce-subject": "caf%C3%A9",
        "content-type": "application/json",
        "ce-tenant": "acme",
      })
    ).status,
    200,
  );
  assert.equal(
    (
      await post(endpoint.url, "hello", {
        ...base,
        "ce-id": "t",
        "content-type": "text/plain; charset=utf-8",
      })
    ).status,
    200,
  );
  assert.equal(
    (
      await post(endpoint.url, Buffer.from([0, 1, 2]), {
        ...base,
        "ce-id": "b",
        "content-type": "application/octet-stream",
      })
    ).status,
    200,
  );
  const [json, text, binary] = endpoint.batches.map((b) => b.events[0]);
  assert.deepEqual(json, {
    specversion: "1.0",
    id: "j",
    source: "bin",
    type: "bin.test",
    subject: "café",
    tenant: "acme",
    datacontenttype: "application/json",
    data: { x: 1 },
  });
  assert.equal(text?.data, "hello");
  assert.equal(text?.datacontenttype, "text/plain; charset=utf-8");
  assert.equal(binary?.data_base64, "AAEC");
  const missing = await post(endpoint.url, "{}", {
    "ce-specversion": "1.0",
    "ce-source": "bin",
    "content-type": "application/json",
  });
  assert.equal(missing.status, 400);
  assert.equal(errorCode(missing.json), "ValidationError");
  assert.match(String((missing.json?.["error"] as { message: string }).message), /id: required/);
});

test("http source - other JSON is wrapped, its id taken from Idempotency-Key, Webhook-Id or ce-id, else a new UUID", async (t) => {
  const endpoint = await startEndpoint(t);
  await post(endpoint.url, '{"order":7}', {
    "content-type": "application/json",
    "idempotency-key": "key-1",
  });
  await post(endpoint.url, "[1,2]", { "content-type": "application/json", "webhook-id": "msg_2" });
  await post(endpoint.url, '"no id"', { "content-type": "application/json" });
  await post(endpoint.url, "plain words", { "content-type": "text/plain" });
  await post(endpoint.url, JSON.stringify(EVENT), { "content-type": "application/json" });
  await post(endpoint.url, "{}", {
    "content-type": "application/json",
    "ce-id": "ce-7",
    "idempotency-key": "key-7",
    "webhook-id": "msg_7",
  });
  const [keyed, webhook, anonymous, text, passed, preferred] = endpoint.batches.map(
    (b) => b.events[0] as CloudEvent,
  );
  assert.equal(keyed?.id, "key-1");
  assert.equal(keyed?.source, "relaybus.http/events");
  assert.equal(keyed?.type, "relaybus.http.message");
  assert.equal(keyed?.datacontenttype, "application/json");
  assert.deepEqual(keyed?.data, { order: 7 });
  assert.ok(keyed?.time !== undefined && !Number.isNaN(Date.parse(keyed.time)));
  assert.equal(webhook?.id, "msg_2");
  assert.deepEqual(webhook?.data, [1, 2], "an array is one payload");
  assert.match(anonymous?.id ?? "", /^[0-9a-f-]{36}$/);
  assert.equal(anonymous?.data, "no id");
  assert.equal(text?.data, "plain words");
  assert.deepEqual(passed, EVENT, "a CloudEvent sent as application/json passes through");
  assert.equal(preferred?.id, "ce-7", "ce-id, then Idempotency-Key, then Webhook-Id");
});

test("http source - bad input gets 400 with an error code and message", async (t) => {
  const endpoint = await startEndpoint(t);
  const cases: [string, Record<string, string>, string][] = [
    ["{not json", { "content-type": "application/json" }, "InvalidJson"],
    ["{not json", { "content-type": "application/cloudevents+json" }, "InvalidJson"],
    [
      JSON.stringify({ ...EVENT, specversion: "0.3" }),
      { "content-type": "application/cloudevents+json" },
      "ValidationError",
    ],
    [
      JSON.stringify(EVENT),
      { "content-type": "application/cloudevents-batch+json" },
      "ValidationError",
    ],
    [
      JSON.stringify([EVENT, { ...EVENT, "Bad-Name": 1 }]),
      { "content-type": "application/cloudevents-batch+json" },
      "ValidationError",
    ],
    [
      JSON.stringify({ ...EVENT, time: "yesterday" }),
      { "content-type": "application/cloudevents+json" },
      "ValidationError",
    ],
  ];
  for (const [body, headers, code] of cases) {
    const { status, json } = await post(endpoint.url, body, headers);
    assert.equal(status, 400, body);
    assert.equal(errorCode(json), code, body);
    assert.equal(typeof (json?.["error"] as { message?: unknown }).message, "string");
  }
  assert.equal(endpoint.batches.length, 0, "nothing of a refused request is handed over");
});

test("http source - authToken: 401 without the right bearer token, 200 with it", async (t) => {
  const endpoint = await startEndpoint(t, { authToken: "s3cret-token" });
  const body = JSON.stringify(EVENT);
  const type = { "content-type": "application/cloudevents+json" };
  const none = await post(endpoint.url, body, type);
  assert.equal(none.status, 401);
  assert.equal(none.headers.get("www-authenticate"), "Bearer");
  assert.equal(errorCode(none.json), "Unauthorized");
  assert.equal(
    (await post(endpoint.url, body, { ...type, authorization: "Bearer s3cret-tokeN" })).status,
    401,
  );
  assert.equal(
    (await post(endpoint.url, body, { ...type, authorization: "Basic czNjcmV0LXRva2Vu" })).status,
    401,
  );
  assert.equal(
    (await post(endpoint.url, body, { ...type, authorization: "Bearer s3cret-token" })).status,
    200,
  );
  assert.equal(endpoint.batches.length, 1);
});

test("http source - 404 for another path, 405 for another method, 413 for a body over maxBodyBytes", async (t) => {
  const endpoint = await startEndpoint(t, { path: "/in", maxBodyBytes: 1_000 });
  const type = { "content-type": "application/json" };
  const elsewhere = await post(endpoint.url.replace("/in", "/out"), "{}", type);
  assert.deepEqual([elsewhere.status, errorCode(elsewhere.json)], [404, "RouteNotFound"]);
  const get = await post(endpoint.url, "", {}, "GET");
  assert.deepEqual([get.status, errorCode(get.json)], [405, "MethodNotAllowed"]);
  assert.equal(get.headers.get("allow"), "POST");
  const large = await post(endpoint.url, JSON.stringify({ blob: "x".repeat(2_000) }), type);
  assert.deepEqual([large.status, errorCode(large.json)], [413, "PayloadTooLarge"]);
  // Without a Content-Length the limit holds as the body streams in.
  const chunked = await fetch(endpoint.url, {
    method: "POST",
    headers: type,
    body: new Blob([JSON.stringify({ blob: "y".repeat(5_000) })]).stream(),
    duplex: "half",
  } as RequestInit);
  assert.equal(chunked.status, 413);
  await chunked.text();
  assert.equal(
    (await post(endpoint.url + "?x=1", '{"ok":true}', type)).status,
    200,
    "a query string is ignored",
  );
  assert.equal(endpoint.batches.length, 1);
});

test("http source - 503 with Retry-After when the stream does not confirm", async (t) => {
  const endpoint = await startEndpoint(
    t,
    {},
    { confirm: () => Promise.reject(new Error("sink down")) },
  );
  const { status, headers, json } = await post(endpoint.url, JSON.stringify(EVENT), {
    "content-type": "application/cloudevents+json",
  });
  assert.equal(status, 503);
  assert.equal(headers.get("retry-after"), "1");
  assert.equal(errorCode(json), "ServiceUnavailable");
});

test("http source - stopping answers requests in flight 503 and frees the port at once", async (t) => {
  const never = new Promise<void>(() => {});
  const endpoint = await startEndpoint(t, {}, { confirm: () => never });
  const inFlight = post(endpoint.url, JSON.stringify(EVENT), {
    "content-type": "application/cloudevents+json",
  });
  while (endpoint.batches.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  const started = Date.now();
  await endpoint.stop();
  assert.ok(Date.now() - started < 1_500, `run ended ${Date.now() - started} ms after the abort`);
  assert.equal((await inFlight).status, 503);
  const again = await startEndpoint(t, { port: endpoint.port });
  assert.equal(
    (
      await post(again.url, JSON.stringify(EVENT), {
        "content-type": "application/cloudevents+json",
      })
    ).status,
    200,
  );
});

test("http source - run rejects when the port is taken", async (t) => {
  const first = await startEndpoint(t);
  const second = httpSource.create(
    { port: first.port },
    sourceContext({ streamName: "http-test" }),
  );
  await assert.rejects(
    second.run(async () => {}),
    /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/,
  );
  await second.close();
});
