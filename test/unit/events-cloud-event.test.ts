import assert from "node:assert/strict";
import { test } from "node:test";
import { isRelaybusError } from "../../src/errors.js";
import { parseCloudEvent } from "../../src/events/cloud-event.js";

const minimal = { specversion: "1.0", id: "e-1", source: "/orders", type: "order.created" };

/** Asserts a ValidationError whose message starts with `field: ` and matches `pattern`. */
function assertInvalid(value: unknown, field: string, pattern: RegExp): void {
  assert.throws(
    () => parseCloudEvent(value, "event"),
    (error: unknown) => {
      assert.ok(isRelaybusError(error, "ValidationError"), `expected ValidationError, got ${String(error)}`);
      assert.ok(error.message.startsWith(`${field}: `), `message ${JSON.stringify(error.message)} should name ${field}`);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

test("cloud event - a full event is kept, attributes in canonical order with data last", () => {
  const event = parseCloudEvent(
    {
      data: { total: 120 },
      comexampleext: "v",
      count: 5,
      flag: false,
      dataschema: "https://example.com/schemas/order.json#/v1",
      datacontenttype: "application/json; charset=utf-8",
      time: "2024-02-29T23:59:60.123+05:30",
      subject: "order/42",
      ...minimal,
    },
    "event",
  );
  assert.deepEqual(Object.keys(event), [
    "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema",
    "comexampleext", "count", "flag", "data",
  ]);
  assert.deepEqual(event.data, { total: 120 });
  assert.equal(event["count"], 5);
});

test("cloud event - null attributes are unset, but data null is an explicit payload", () => {
  const event = parseCloudEvent({ ...minimal, subject: null, time: null, myext: null, data: null }, "event");
  assert.deepEqual(event, { ...minimal, data: null });
  assert.ok(!("subject" in event) && !("myext" in event));
});

test("cloud event - source accepts URI references of every kind the spec lists", () => {
  for (const source of [
    "https://github.com/cloudevents",
    "mailto:cncf-wg-serverless@lists.cncf.io",
    "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
    "/sensors/tn-1234567/alerts",
    "1-555-123-4567",
    "com.example.orders",
    "/path%20with%20space",
  ]) {
    assert.equal(parseCloudEvent({ ...minimal, source }, "event").source, source);
  }
});

test("cloud event - required attributes name the field when missing or empty", () => {
  assertInvalid({ ...minimal, specversion: undefined }, "event.specversion", /required, must be "1.0"/);
  assertInvalid({ ...minimal, specversion: "0.3" }, "event.specversion", /must be "1.0", got "0.3"/);
  assertInvalid({ ...minimal, id: undefined }, "event.id", /required/);
  assertInvalid({ ...minimal, id: "" }, "event.id", /non-empty string/);
  assertInvalid({ ...minimal, source: 7 }, "event.source", /non-empty string, got 7/);
  assertInvalid({ ...minimal, type: null }, "event.type", /required/);
});

test("cloud event - a value that is not an object is rejected with where it came from", () => {
  for (const value of [null, [], "x", 3]) {
    assert.throws(
      () => parseCloudEvent(value, "events[2]"),
      (error: unknown) => isRelaybusError(error, "ValidationError") && /^events\[2\]: must be a JSON object/.test(error.message),
    );
  }
});

test("cloud event - typed attributes reject malformed values", () => {
  assertInvalid({ ...minimal, source: "my source" }, "event.source", /URI reference/);
  assertInvalid({ ...minimal, source: "1bad:scheme" }, "event.source", /URI reference/);
  assertInvalid({ ...minimal, source: "/a%zz" }, "event.source", /URI reference/);
  assertInvalid({ ...minimal, time: "2024-02-30T00:00:00Z" }, "event.time", /RFC 3339/);
  assertInvalid({ ...minimal, time: "2023-02-29T00:00:00Z" }, "event.time", /RFC 3339/);
  assertInvalid({ ...minimal, time: "2024-01-01 00:00:00Z" }, "event.time", /RFC 3339/);
  assertInvalid({ ...minimal, time: "2024-01-01T00:00:00" }, "event.time", /RFC 3339/);
  assertInvalid({ ...minimal, time: "2024-01-01T24:00:00Z" }, "event.time", /RFC 3339/);
  assertInvalid({ ...minimal, dataschema: "/relative/schema" }, "event.dataschema", /absolute URI/);
  assertInvalid({ ...minimal, datacontenttype: "json" }, "event.datacontenttype", /media type/);
  assertInvalid({ ...minimal, subject: "" }, "event.subject", /non-empty/);
  assertInvalid({ ...minimal, subject: "a\u0000b" }, "event.subject", /control characters/);
  assertInvalid({ ...minimal, id: "x\uD800" }, "event.id", /unpaired surrogates/);
});

test("cloud event - attribute names must be lower-case letters and digits, at most 20", () => {
  assertInvalid({ ...minimal, myExt: "v" }, "event.myExt", /lower-case letters/);
  assertInvalid({ ...minimal, "my-ext": "v" }, "event.my-ext", /lower-case letters/);
  assertInvalid({ ...minimal, abcdefghijklmnopqrstu: "v" }, "event.abcdefghijklmnopqrstu", /1 to 20/);
  assert.equal(parseCloudEvent({ ...minimal, abcdefghijklmnopqrst: "v" }, "event")["abcdefghijklmnopqrst"], "v");
});

test("cloud event - extension values must be string, 32-bit integer or boolean", () => {
  assertInvalid({ ...minimal, ext: { a: 1 } }, "event.ext", /string, integer or boolean, got an object/);
  assertInvalid({ ...minimal, ext: [1] }, "event.ext", /string, integer or boolean, got an array/);
  assertInvalid({ ...minimal, ext: 1.5 }, "event.ext", /whole number/);
  assertInvalid({ ...minimal, ext: 2_147_483_648 }, "event.ext", /32-bit/);
  assert.equal(parseCloudEvent({ ...minimal, ext: -2_147_483_648 }, "event")["ext"], -2_147_483_648);
});

test("cloud event - resources is an array of strings, also from its string forms", () => {
  assert.deepEqual(parseCloudEvent({ ...minimal, resources: ["arn:a", "arn:b"] }, "event")["resources"], ["arn:a", "arn:b"]);
  assert.deepEqual(parseCloudEvent({ ...minimal, resources: '["arn:a","arn:b"]' }, "event")["resources"], ["arn:a", "arn:b"]);
  assert.deepEqual(parseCloudEvent({ ...minimal, resources: "arn:a, arn:b" }, "event")["resources"], ["arn:a", "arn:b"]);
  assertInvalid({ ...minimal, resources: ["arn:a", 3] }, "event.resources[1]", /non-empty string, got 3/);
  assertInvalid({ ...minimal, resources: { a: 1 } }, "event.resources", /array of strings/);
});

test("cloud event - data and data_base64 are mutually exclusive and base64 must be valid", () => {
  assert.equal(parseCloudEvent({ ...minimal, data_base64: "AAEC/w==" }, "event").data_base64, "AAEC/w==");
  assert.equal(parseCloudEvent({ ...minimal, data_base64: null, data: 1 }, "event").data, 1);
  assertInvalid({ ...minimal, data: 1, data_base64: "AA==" }, "event.data_base64", /mutually exclusive/);
  assertInvalid({ ...minimal, data_base64: "AAE" }, "event.data_base64", /base64/);
  assertInvalid({ ...minimal, data_base64: "AA=A" }, "event.data_base64", /base64/);
  assertInvalid({ ...minimal, data_base64: "AA-_" }, "event.data_base64", /base64/);
});

test("cloud event - non-JSON content types need string data; JSON ones take any value", () => {
  assert.equal(parseCloudEvent({ ...minimal, datacontenttype: "application/xml", data: "<a/>" }, "event").data, "<a/>");
  assert.deepEqual(parseCloudEvent({ ...minimal, datacontenttype: "application/cloudevents+json", data: [1] }, "event").data, [1]);
  assertInvalid({ ...minimal, datacontenttype: "text/plain", data: { a: 1 } }, "event.data", /must be a string when datacontenttype "text\/plain"/);
});
