import assert from "node:assert/strict";
import { test } from "node:test";
import { type ErrorCode, isRelaybusError } from "../../src/errors.js";
import { parseBusName, parsePutEventsEntry, parsePutEventsRequest } from "../../src/events/put-events.js";

const context = { nowIso: "2026-01-02T03:04:05.000Z", maxJsonDepth: 8 };
const entry = { Source: "com.example.orders", DetailType: "Order Created", Detail: '{"total":120}' };
/** Ingest assigns time-ordered UUIDv7 ids, so the log's id index grows at its right edge. */
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function assertEntryError(value: unknown, code: ErrorCode, field: string, pattern: RegExp): void {
  assert.throws(
    () => parsePutEventsEntry(value, 3, context),
    (error: unknown) => {
      assert.ok(isRelaybusError(error, code), `expected ${code}, got ${String(error)}`);
      assert.ok(error.message.startsWith(`${field}: `), `message ${JSON.stringify(error.message)} should name ${field}`);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

test("put events - an entry maps to a CloudEvent on the default bus with a new UUIDv7 id and now", () => {
  const { bus, event } = parsePutEventsEntry(entry, 0, context);
  assert.equal(bus, "default");
  assert.match(event.id, UUID_V7);
  assert.deepEqual(event, {
    specversion: "1.0",
    id: event.id,
    source: "com.example.orders",
    type: "Order Created",
    time: "2026-01-02T03:04:05.000Z",
    datacontenttype: "application/json",
    data: { total: 120 },
  });
  assert.deepEqual(Object.keys(event).at(-1), "data");
  assert.notEqual(parsePutEventsEntry(entry, 0, context).event.id, event.id);
});

test("put events - Time as an RFC 3339 string is kept, as epoch seconds becomes ISO", () => {
  assert.equal(parsePutEventsEntry({ ...entry, Time: "2024-05-01T12:00:00+02:00" }, 0, context).event.time, "2024-05-01T12:00:00+02:00");
  assert.equal(parsePutEventsEntry({ ...entry, Time: 1_714_564_800 }, 0, context).event.time, "2024-05-01T12:00:00.000Z");
  assert.equal(parsePutEventsEntry({ ...entry, Time: 1_714_564_800.25 }, 0, context).event.time, "2024-05-01T12:00:00.250Z");
  // 1.005 * 1000 is 1004.9999999999999 in floating point: the milliseconds are rounded, not cut.
  assert.equal(parsePutEventsEntry({ ...entry, Time: 1.005 }, 0, context).event.time, "1970-01-01T00:00:01.005Z");
  assertEntryError({ ...entry, Time: "yesterday" }, "ValidationError", "Entries[3].Time", /RFC 3339/);
  assertEntryError({ ...entry, Time: -1 }, "ValidationError", "Entries[3].Time", /epoch seconds/);
  assertEntryError({ ...entry, Time: true }, "ValidationError", "Entries[3].Time", /RFC 3339/);
});

test("put events - EventBusName takes a name or an event-bus ARN", () => {
  assert.equal(parsePutEventsEntry({ ...entry, EventBusName: "orders" }, 0, context).bus, "orders");
  assert.equal(
    parsePutEventsEntry({ ...entry, EventBusName: "arn:aws:events:eu-west-1:123456789012:event-bus/orders" }, 0, context).bus,
    "orders",
  );
  assert.equal(parseBusName("arn:aws-cn:events:cn-north-1:123456789012:event-bus/cn-bus", "x"), "cn-bus");
  assert.equal(parseBusName(undefined, "x"), "default");
  assertEntryError({ ...entry, EventBusName: "arn:aws:sqs:eu-west-1:1:queue" }, "ValidationError", "Entries[3].EventBusName", /event-bus\/NAME/);
  assertEntryError({ ...entry, EventBusName: "" }, "ValidationError", "Entries[3].EventBusName", /bus name/);
});

test("put events - Resources and TraceHeader become extension attributes", () => {
  const { event } = parsePutEventsEntry({ ...entry, Resources: ["arn:aws:s3:::bucket"], TraceHeader: "Root=1-abc" }, 0, context);
  assert.deepEqual(event["resources"], ["arn:aws:s3:::bucket"]);
  assert.equal(event["traceheader"], "Root=1-abc");
  assertEntryError({ ...entry, Resources: "arn:a" }, "ValidationError", "Entries[3].Resources", /array of strings/);
  assertEntryError({ ...entry, Resources: ["ok", 5] }, "ValidationError", "Entries[3].Resources[1]", /non-empty string/);
});

test("put events - missing and mistyped fields are named", () => {
  assertEntryError({ ...entry, Source: undefined }, "ValidationError", "Entries[3].Source", /required/);
  assertEntryError({ ...entry, Source: "has space" }, "ValidationError", "Entries[3].Source", /URI reference/);
  assertEntryError({ ...entry, DetailType: "" }, "ValidationError", "Entries[3].DetailType", /non-empty string/);
  assertEntryError({ ...entry, Detail: undefined }, "ValidationError", "Entries[3].Detail", /required/);
  assertEntryError({ ...entry, Detial: "{}" }, "ValidationError", "Entries[3].Detial", /unknown field/);
  assertEntryError("entry", "ValidationError", "Entries[3]", /must be an object/);
});

test("put events - Detail must be JSON text holding an object", () => {
  assertEntryError({ ...entry, Detail: "[1,2]" }, "MalformedDetail", "Entries[3].Detail", /JSON object, got an array/);
  assertEntryError({ ...entry, Detail: '"text"' }, "MalformedDetail", "Entries[3].Detail", /JSON object/);
  assertEntryError({ ...entry, Detail: "{not json" }, "MalformedDetail", "Entries[3].Detail", /invalid JSON/);
  assertEntryError({ ...entry, Detail: { total: 1 } }, "MalformedDetail", "Entries[3].Detail", /must be a string/);
  assertEntryError({ ...entry, Detail: '{"a":'.repeat(10) + "1" + "}".repeat(10) }, "JsonTooDeep", "Entries[3].Detail", /limit of 8/);
});

test("put events - Detail text is kept for the stored JSON only when JSON.stringify would write it so", () => {
  const kept = parsePutEventsEntry({ ...entry, Detail: '{"total":120,"items":[{"sku":"a1"}]}' }, 0, context);
  assert.equal(kept.dataJson, '{"total":120,"items":[{"sku":"a1"}]}');
  assert.deepEqual(kept.event.data, { total: 120, items: [{ sku: "a1" }] });
  for (const Detail of ['{ "total": 120 }', '{"total":120.0}', '{"total":1,"total":2}', '{"a":"\\u00e9"}']) {
    const mapped = parsePutEventsEntry({ ...entry, Detail }, 0, context);
    assert.equal(mapped.dataJson, undefined, Detail);
    assert.deepEqual(mapped.event.data, JSON.parse(Detail));
  }
});

test("put events - the request needs 1 to maxEntriesPerRequest entries", () => {
  const limits = { maxEntriesPerRequest: 2 };
  assert.equal(parsePutEventsRequest({ Entries: [entry, entry] }, limits).length, 2);
  const cases: [unknown, ErrorCode, RegExp][] = [
    [[entry], "ValidationError", /^request body: must be a JSON object/],
    [{ entries: [entry] }, "ValidationError", /^Entries: required/],
    [{ Entries: [] }, "ValidationError", /^Entries: must hold at least 1/],
    [{ Entries: [entry, entry, entry] }, "TooManyEntries", /^Entries: 3 entries, more than the limit of 2/],
  ];
  for (const [body, code, pattern] of cases) {
    assert.throws(
      () => parsePutEventsRequest(body as never, limits),
      (error: unknown) => isRelaybusError(error, code) && pattern.test(error.message),
    );
  }
});
