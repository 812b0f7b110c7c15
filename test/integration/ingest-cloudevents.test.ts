import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { CloudEvent as SdkCloudEvent, emitterFor, httpTransport, Mode } from "cloudevents";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { isRelaybusError, toRelaybusError } from "../../src/errors.js";
import { createIngest, type CloudEventsIngestResult, type Ingest } from "../../src/events/ingest.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/log/sqlite/index.js";

/** Real SQLite storage in a temp dir and ingest over it; closed and checked closed after the test. */
function setup(t: TestContext, limits: Partial<typeof DEFAULT_CONFIG.limits> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-ingest-ce-"));
  const storage: SqliteStorage = openSqliteStorage({ dataDir: join(dir, "data"), durability: "fsync" });
  t.after(async () => {
    await storage.close();
    assert.equal(storage.open, false, "storage left open");
    rmSync(dir, { recursive: true, force: true });
  });
  const ingest = createIngest({
    log: storage.log,
    busExists: (name) => name === "orders",
    limits: { ...DEFAULT_CONFIG.limits, ...limits },
  });
  return { storage, ingest };
}

/**
 * A bare HTTP server handing raw headers and body to ingest, as the data plane does, so the
 * SDK's emitter goes through real HTTP and Node's header parsing. Closed after the test.
 */
async function serve(t: TestContext, ingest: Ingest): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      ingest.putCloudEvents("orders", req.headers, Buffer.concat(chunks)).then(
        (result) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(result)),
        (thrown: unknown) => {
          const error = toRelaybusError(thrown);
          res.writeHead(error.status, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: error.code, message: error.message } }));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

function idOf(result: CloudEventsIngestResult): string {
  assert.ok("id" in result, `expected { id }, got ${JSON.stringify(result)}`);
  return result.id;
}

const structured = { "content-type": "application/cloudevents+json" };
const minimal = { specversion: "1.0", id: "e-1", source: "/orders", type: "order.created" };

test("ingest cloudevents - the SDK's HTTP emitter sends to ingest in binary and structured mode", async (t) => {
  const { storage, ingest } = setup(t);
  const url = await serve(t, ingest);
  for (const mode of [Mode.BINARY, Mode.STRUCTURED]) {
    const sent = new SdkCloudEvent({
      type: "order.created",
      source: "/orders/eu",
      subject: "order 42",
      tenant: "acme",
      priority: 5,
      data: { total: 120, items: ["a", "b"] },
    });
    const emit = emitterFor(httpTransport(url), { mode });
    const response = (await emit(sent)) as { body: string };
    assert.deepEqual(JSON.parse(response.body), { id: sent.id }, `${mode} answer`);
    const stored = await storage.log.findById("orders", sent.id);
    assert.ok(stored, `${mode} event stored`);
    assert.equal(stored.event.source, "/orders/eu");
    assert.equal(stored.event.subject, "order 42");
    assert.equal(stored.event.type, "order.created");
    assert.equal(stored.event.time, sent.time);
    assert.equal(stored.event["tenant"], "acme");
    // Binary mode carries extensions as header strings; structured mode keeps the JSON number.
    assert.equal(stored.event["priority"], mode === Mode.BINARY ? "5" : 5);
    assert.deepEqual(stored.event.data, { total: 120, items: ["a", "b"] });
    // What we store is a valid CloudEvent by the SDK's own validation too.
    assert.ok(new SdkCloudEvent(stored.event as never).validate());
  }
});

test("ingest cloudevents - binary data from the SDK is stored as data_base64", async (t) => {
  const { storage, ingest } = setup(t);
  const url = await serve(t, ingest);
  const bytes = Buffer.from([0, 1, 2, 250, 255]);
  const sent = new SdkCloudEvent({ type: "blob", source: "/blobs", datacontenttype: "application/octet-stream", data: bytes });
  for (const mode of [Mode.BINARY, Mode.STRUCTURED]) {
    const copy = sent.cloneWith({ id: `${sent.id}-${mode}` });
    await emitterFor(httpTransport(url), { mode })(copy);
    const stored = await storage.log.findById("orders", copy.id);
    assert.equal(stored?.event.data_base64, bytes.toString("base64"), `${mode} keeps the bytes`);
    assert.equal(stored?.event.datacontenttype, "application/octet-stream");
  }
});

test("ingest cloudevents - a single event that is invalid, too large or for an unknown bus throws", async (t) => {
  const { storage, ingest } = setup(t, { maxEventBytes: 300 });
  await assert.rejects(
    ingest.putCloudEvents("orders", structured, Buffer.from(JSON.stringify({ ...minimal, time: "now" }))),
    (error: unknown) => isRelaybusError(error, "ValidationError") && /^event\.time: /.test(error.message),
  );
  await assert.rejects(
    ingest.putCloudEvents("orders", structured, Buffer.from(JSON.stringify({ ...minimal, data: "x".repeat(300) }))),
    (error: unknown) => isRelaybusError(error, "EventTooLarge") && /^event: the event is \d+ bytes as JSON, over the limit of 300/.test(error.message),
  );
  await assert.rejects(
    ingest.putCloudEvents("nope", structured, Buffer.from(JSON.stringify(minimal))),
    (error: unknown) => isRelaybusError(error, "BusNotFound") && /bus "nope" does not exist/.test(error.message),
  );
  await assert.rejects(
    ingest.putCloudEvents("orders", { "content-type": "application/cloudevents+protobuf" }, Buffer.from("x")),
    (error: unknown) => isRelaybusError(error, "UnsupportedMediaType"),
  );
  assert.equal(await storage.log.count("orders"), 0);
});

test("ingest cloudevents - a batch stores its valid events together and reports each one", async (t) => {
  const { storage, ingest } = setup(t, { maxEventBytes: 400 });
  const commitsBefore = storage.log.stats().commits;
  const result = await ingest.putCloudEvents(
    "orders",
    { "content-type": "application/cloudevents-batch+json; charset=utf-8" },
    Buffer.from(
      JSON.stringify([
        { ...minimal, id: "a" },
        { ...minimal, id: "b", specversion: "0.3" },
        { ...minimal, id: "c", data: "x".repeat(400) },
        { ...minimal, id: "d", data: { n: 1 } },
      ]),
    ),
  );
  assert.ok("results" in result);
  assert.equal(result.failedCount, 2);
  assert.deepEqual(result.results[0], { id: "a" });
  assert.deepEqual(result.results[3], { id: "d" });
  const second = result.results[1];
  assert.ok(second && "error" in second);
  assert.equal(second.error.code, "ValidationError");
  assert.match(second.error.message, /^events\[1\]\.specversion: must be "1.0", got "0.3"/);
  const third = result.results[2];
  assert.ok(third && "error" in third);
  assert.equal(third.error.code, "EventTooLarge");
  assert.match(third.error.message, /^events\[2\]: the event is \d+ bytes/);
  assert.deepEqual((await storage.log.read("orders", 0, 10)).map((e) => [e.offset, e.event.id]), [[1, "a"], [2, "d"]]);
  assert.equal(storage.log.stats().commits - commitsBefore, 1);
});

test("ingest cloudevents - binary mode with percent-encoded headers through ingest", async (t) => {
  const { storage, ingest } = setup(t);
  const headers: IncomingHttpHeaders = {
    "ce-specversion": "1.0",
    "ce-id": "pct",
    "ce-source": "/orders",
    "ce-type": "order.created",
    "ce-subject": "Euro%20%E2%82%AC",
    "content-type": "text/plain",
  };
  assert.equal(idOf(await ingest.putCloudEvents("orders", headers, Buffer.from("hello"))), "pct");
  const stored = await storage.log.findById("orders", "pct");
  assert.equal(stored?.event.subject, "Euro €");
  assert.equal(stored?.event.data, "hello");
  assert.equal(stored?.event.datacontenttype, "text/plain");
});

test("ingest cloudevents - a failed append rejects the request and stores nothing of it", async (t) => {
  const { storage, ingest } = setup(t);
  await ingest.putCloudEvents("orders", structured, Buffer.from(JSON.stringify(minimal)));
  await storage.log.close();
  await assert.rejects(
    ingest.putCloudEvents(
      "orders",
      { "content-type": "application/cloudevents-batch+json" },
      Buffer.from(JSON.stringify([{ ...minimal, id: "x" }, { ...minimal, id: "y" }])),
    ),
    (error: unknown) => isRelaybusError(error, "ServiceUnavailable"),
  );
  assert.equal(await storage.log.findById("orders", "x"), undefined);
});
