import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { isRelaybusError } from "../../src/errors.js";
import { createIngest, type PutEventsResultEntry } from "../../src/events/ingest.js";
import type { LogEngine } from "../../src/log/log-engine.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/log/sqlite/index.js";
import type { EventToAppend } from "../../src/types.js";

const BUSES = new Set(["default", "orders"]);
const NOW_MS = Date.parse("2026-03-04T05:06:07.089Z");

/**
 * Real SQLite storage in a temp dir, closed (and checked closed) after the test. The log is
 * wrapped only to record the sizes of the `append` calls ingest makes; the real log does the work.
 */
function setup(t: TestContext, limits: Partial<typeof DEFAULT_CONFIG.limits> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-ingest-"));
  const storage: SqliteStorage = openSqliteStorage({ dataDir: join(dir, "data"), durability: "fsync" });
  t.after(async () => {
    await storage.close();
    assert.equal(storage.open, false, "storage left open");
    rmSync(dir, { recursive: true, force: true });
  });
  const appendCalls: number[] = [];
  const log: LogEngine = Object.assign(Object.create(storage.log) as LogEngine, {
    append(events: readonly EventToAppend[]) {
      appendCalls.push(events.length);
      return storage.log.append(events);
    },
  });
  const ingest = createIngest({
    log,
    busExists: (name) => BUSES.has(name),
    limits: { ...DEFAULT_CONFIG.limits, ...limits },
    clock: { nowMs: () => NOW_MS },
  });
  return { storage, ingest, appendCalls };
}

function body(entries: unknown[]): Buffer {
  return Buffer.from(JSON.stringify({ Entries: entries }));
}

function idOf(entry: PutEventsResultEntry | undefined): string {
  assert.ok(entry && "EventId" in entry, `expected an EventId, got ${JSON.stringify(entry)}`);
  return entry.EventId;
}

function errorOf(entry: PutEventsResultEntry | undefined): { ErrorCode: string; ErrorMessage: string } {
  assert.ok(entry && "ErrorCode" in entry, `expected an error, got ${JSON.stringify(entry)}`);
  return entry;
}

const entry = { Source: "com.example.orders", DetailType: "Order Created", Detail: '{"total":120}' };

test("ingest put events - valid entries are stored in one append, errors answered in request order", async (t) => {
  const { storage, ingest, appendCalls } = setup(t);
  const result = await ingest.putEvents(
    body([
      { ...entry, EventBusName: "orders", Time: 1_714_564_800 },
      { ...entry, Detail: "[1]" },
      { ...entry, EventBusName: "arn:aws:events:eu-west-1:123456789012:event-bus/orders", Resources: ["arn:r"] },
      { ...entry, EventBusName: "missing" },
      { ...entry, Source: undefined },
      entry,
    ]),
  );
  assert.equal(result.FailedEntryCount, 3);
  assert.deepEqual(appendCalls, [3], "one append with the three valid entries");
  assert.equal(errorOf(result.Entries[1]).ErrorCode, "MalformedDetail");
  assert.match(errorOf(result.Entries[1]).ErrorMessage, /^Entries\[1\]\.Detail: must be a JSON object/);
  assert.equal(errorOf(result.Entries[3]).ErrorCode, "BusNotFound");
  assert.match(errorOf(result.Entries[3]).ErrorMessage, /^Entries\[3\]\.EventBusName: bus "missing" does not exist/);
  assert.equal(errorOf(result.Entries[4]).ErrorCode, "ValidationError");
  assert.match(errorOf(result.Entries[4]).ErrorMessage, /^Entries\[4\]\.Source: required/);

  const orders = await storage.log.read("orders", 0, 10);
  assert.deepEqual(orders.map((e) => e.event.id), [idOf(result.Entries[0]), idOf(result.Entries[2])]);
  assert.equal(orders[0]?.event.time, "2024-05-01T12:00:00.000Z");
  assert.deepEqual(orders[1]?.event["resources"], ["arn:r"]);
  const [onDefault] = await storage.log.read("default", 0, 10);
  assert.equal(onDefault?.event.id, idOf(result.Entries[5]));
  assert.equal(onDefault?.event.time, "2026-03-04T05:06:07.089Z", "time from the injected clock");
});

test("ingest put events - the log stores the JSON, size and units ingest measured", async (t) => {
  const { storage, ingest } = setup(t);
  const result = await ingest.putEvents(body([{ ...entry, Detail: JSON.stringify({ note: "café €", big: "x".repeat(70_000) }) }]));
  const stored = await storage.log.findById("default", idOf(result.Entries[0]));
  assert.ok(stored);
  assert.equal(stored.json, JSON.stringify(stored.event));
  assert.equal(stored.sizeBytes, Buffer.byteLength(stored.json));
  assert.equal(stored.units, 2);
  assert.deepEqual(JSON.parse(stored.json), stored.event);
});

test("ingest put events - stored JSON and sizes are the same whether Detail is stored as sent or serialized again", async (t) => {
  const { storage, ingest } = setup(t);
  const data = { note: "café €😀", total: 129.5, items: [{ sku: "a1", qty: 2 }] };
  // As JSON.stringify writes it (its text goes into the stored JSON as it is), and spaced out.
  const details = [JSON.stringify(data), JSON.stringify(data, null, 2)];
  const result = await ingest.putEvents(body(details.map((Detail) => ({ ...entry, Detail }))), { includeUnits: true });
  const stored = await Promise.all(result.Entries.map((e) => storage.log.findById("default", idOf(e))));
  for (const event of stored) {
    assert.ok(event);
    assert.equal(event.json, JSON.stringify(event.event));
    assert.deepEqual(event.event.data, data);
    assert.equal(event.sizeBytes, Buffer.byteLength(event.json));
  }
  assert.equal(stored[0]!.sizeBytes, stored[1]!.sizeBytes);
  assert.equal(stored[0]!.json.replace(stored[0]!.event.id, ""), stored[1]!.json.replace(stored[1]!.event.id, ""));
});

test("ingest put events - maxEventBytes applies to the stored size, exactly at the limit is accepted", async (t) => {
  // Find the size of an entry's event with an empty pad, then fill it to the limit and one past.
  const probe = setup(t);
  const probeResult = await probe.ingest.putEvents(body([{ ...entry, Detail: '{"pad":""}' }]));
  const overhead = (await probe.storage.log.findById("default", idOf(probeResult.Entries[0])))!.sizeBytes;
  const limit = 2_000;
  const { ingest, storage } = setup(t, { maxEventBytes: limit });
  const fits = { ...entry, Detail: JSON.stringify({ pad: "x".repeat(limit - overhead) }) };
  const over = { ...entry, Detail: JSON.stringify({ pad: "x".repeat(limit - overhead + 1) }) };
  const result = await ingest.putEvents(body([fits, over]));
  assert.equal((await storage.log.findById("default", idOf(result.Entries[0])))?.sizeBytes, limit);
  const error = errorOf(result.Entries[1]);
  assert.equal(error.ErrorCode, "EventTooLarge");
  assert.equal(error.ErrorMessage, `Entries[1]: the event is ${limit + 1} bytes as JSON, over the limit of ${limit}`);
  assert.equal(result.FailedEntryCount, 1);
});

test("ingest put events - request-level problems throw and store nothing", async (t) => {
  const { storage, ingest, appendCalls } = setup(t, { maxEntriesPerRequest: 2, maxJsonDepth: 5 });
  const cases: [Buffer, string, RegExp][] = [
    [Buffer.from('{"Entries": ['), "InvalidJson", /invalid JSON/],
    [Buffer.from("[[[[[[[]]]]]]]"), "JsonTooDeep", /limit of 5/],
    [Buffer.from('{"Entries": {}}'), "ValidationError", /^Entries: required/],
    [body([entry, entry, entry]), "TooManyEntries", /3 entries, more than the limit of 2/],
  ];
  for (const [request, code, pattern] of cases) {
    await assert.rejects(ingest.putEvents(request), (error: unknown) => isRelaybusError(error) && error.code === code && pattern.test(error.message));
  }
  assert.deepEqual(appendCalls, []);
  assert.equal(await storage.log.count("default"), 0);
});

test("ingest put events - when every entry fails nothing is appended", async (t) => {
  const { ingest, appendCalls } = setup(t);
  const result = await ingest.putEvents(body([{ ...entry, Detail: "nope" }, { ...entry, EventBusName: "missing" }]));
  assert.equal(result.FailedEntryCount, 2);
  assert.deepEqual(appendCalls, []);
});

test("ingest put events - a failed append fails the whole request and acks nothing", async (t) => {
  const { storage, ingest } = setup(t);
  await ingest.putEvents(body([entry]));
  // Cap the file at its current size: the next append needs new pages and fails as on a full disk.
  const pages = (await storage.logWriterPragma("page_count")) as number;
  await storage.logWriterPragma(`max_page_count = ${pages}`);
  const big = { ...entry, Detail: JSON.stringify({ blob: "x".repeat(100_000) }) };
  await assert.rejects(ingest.putEvents(body([entry, big])), (error: unknown) => isRelaybusError(error, "ServiceUnavailable"));
  assert.equal(await storage.log.count("default"), 1, "only the event of the first request");
  await storage.logWriterPragma("max_page_count = 1073741823");
});
