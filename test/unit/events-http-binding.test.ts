import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { test } from "node:test";
import { type ErrorCode, isRelaybusError } from "../../src/errors.js";
import { decodeHeaderValue, parseCloudEventsRequest } from "../../src/events/http-binding.js";

const limits = { maxJsonDepth: 8, maxEntriesPerRequest: 3 };
const ceHeaders = { "ce-specversion": "1.0", "ce-id": "e-1", "ce-source": "/orders", "ce-type": "order.created" };
const minimal = { specversion: "1.0", id: "e-1", source: "/orders", type: "order.created" };

function parse(headers: IncomingHttpHeaders, body: string | Buffer = "") {
  return parseCloudEventsRequest(headers, typeof body === "string" ? Buffer.from(body) : body, limits);
}

function assertRejects(headers: IncomingHttpHeaders, body: string, code: ErrorCode, pattern: RegExp): void {
  assert.throws(
    () => parse(headers, body),
    (error: unknown) => {
      assert.ok(isRelaybusError(error, code), `expected ${code}, got ${String(error)}`);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

test("http binding - binary mode: ce- headers are attributes and JSON bodies are data", () => {
  const parsed = parse(
    { ...ceHeaders, "ce-time": "2024-05-01T12:00:00Z", "ce-tenant": "acme", "content-type": "application/json; charset=utf-8", host: "x" },
    '{"total":120}',
  );
  assert.ok(parsed.mode === "binary", `mode ${parsed.mode}`);
  assert.deepEqual(parsed.event, {
    ...minimal,
    time: "2024-05-01T12:00:00Z",
    datacontenttype: "application/json; charset=utf-8",
    tenant: "acme",
    data: { total: 120 },
  });
});

test("http binding - binary mode: text bodies are strings, other bodies base64", () => {
  const text = parse({ ...ceHeaders, "content-type": "text/plain; charset=utf-8" }, "héllo");
  assert.ok(text.mode === "binary");
  assert.equal(text.event.data, "héllo");
  const xml = parse({ ...ceHeaders, "content-type": "application/atom+xml" }, "<a/>");
  assert.ok(xml.mode === "binary");
  assert.equal(xml.event.data, "<a/>");
  const bytes = Buffer.from([0, 1, 2, 255]);
  const binary = parse({ ...ceHeaders, "content-type": "application/octet-stream" }, bytes);
  assert.ok(binary.mode === "binary");
  assert.equal(binary.event.data_base64, bytes.toString("base64"));
  assert.ok(!("data" in binary.event));
  const notUtf8 = parse({ ...ceHeaders, "content-type": "text/plain" }, Buffer.from([0xc3, 0x28]));
  assert.ok(notUtf8.mode === "binary");
  assert.equal(notUtf8.event.data_base64, "wyg=");
  const empty = parse({ ...ceHeaders, "content-type": "application/json" });
  assert.ok(empty.mode === "binary");
  assert.ok(!("data" in empty.event) && !("data_base64" in empty.event));
});

test("http binding - binary mode: ce-resources, a comma-separated string in headers, becomes an array", () => {
  const parsed = parse({ ...ceHeaders, "ce-resources": "arn:aws:s3:::a,arn:aws:s3:::b" });
  assert.ok(parsed.mode === "binary");
  assert.deepEqual(parsed.event["resources"], ["arn:aws:s3:::a", "arn:aws:s3:::b"]);
});

test("http binding - binary mode: header values are unquoted and percent-decoded once", () => {
  const parsed = parse({
    ...ceHeaders,
    "ce-subject": "Euro%20%E2%82%AC%20%f0%9f%98%80",
    "ce-note": "100%2525",
    "ce-quoted": '"a \\"b\\" c"',
  });
  assert.ok(parsed.mode === "binary");
  assert.equal(parsed.event.subject, "Euro € 😀");
  assert.equal(parsed.event["note"], "100%25");
  assert.equal(parsed.event["quoted"], 'a "b" c');
  assert.equal(decodeHeaderValue("plain", "ce-x"), "plain");
});

test("http binding - binary mode: bad percent-encoding and overlong UTF-8 name the header", () => {
  assertRejects({ ...ceHeaders, "ce-subject": "%C0%A0" }, "", "ValidationError", /^ce-subject: percent-encoded bytes are not valid UTF-8/);
  assertRejects({ ...ceHeaders, "ce-subject": "50%" }, "", "ValidationError", /^ce-subject: malformed percent-encoding/);
  assertRejects({ ...ceHeaders, "ce-subject": "caf\u00e9" }, "", "ValidationError", /^ce-subject: must be printable ASCII/);
  assertRejects({ ...ceHeaders, "ce-subject": "a%00b" }, "", "ValidationError", /^ce-subject: must not contain control characters/);
});

test("http binding - binary mode: attribute errors name the header they came from", () => {
  assertRejects({ "content-type": "application/json" }, "{}", "ValidationError", /^ce-specversion: required; binary mode needs/);
  assertRejects({ ...ceHeaders, "ce-specversion": "0.3" }, "", "ValidationError", /^ce-specversion: must be "1.0"/);
  assertRejects({ ...ceHeaders, "ce-id": undefined }, "", "ValidationError", /^ce-id: required/);
  assertRejects({ ...ceHeaders, "ce-time": "soon" }, "", "ValidationError", /^ce-time: must be an RFC 3339/);
  assertRejects({ ...ceHeaders, "ce-datacontenttype": "application/json" }, "", "ValidationError", /^ce-datacontenttype: must not be sent in binary mode/);
  assertRejects({ ...ceHeaders, "ce-my_ext": "v" }, "", "ValidationError", /^ce-my_ext: attribute names/);
  assertRejects({ ...ceHeaders, "ce-__proto__": "v" }, "", "ValidationError", /^ce-__proto__: attribute names/);
  assertRejects({ ...ceHeaders, "content-type": "application/json" }, "{bad", "InvalidJson", /^body: invalid JSON/);
  assertRejects({ ...ceHeaders, "content-type": "not a type" }, "", "ValidationError", /^content-type: must be a media type/);
});

test("http binding - structured mode: one event in the JSON format", () => {
  const parsed = parse(
    { "content-type": "application/cloudevents+json; charset=UTF-8" },
    JSON.stringify({ ...minimal, data: { a: 1 } }),
  );
  assert.ok(parsed.mode === "structured", `mode ${parsed.mode}`);
  assert.deepEqual(parsed.event, { ...minimal, data: { a: 1 } });
  assertRejects({ "content-type": "application/cloudevents+json" }, JSON.stringify({ ...minimal, time: 5 }), "ValidationError", /^event\.time: must be a non-empty string/);
  assertRejects({ "content-type": "application/cloudevents+json" }, "[", "InvalidJson", /invalid JSON/);
});

test("http binding - other CloudEvents formats and charsets are UnsupportedMediaType", () => {
  assertRejects({ "content-type": "application/cloudevents+avro" }, "", "UnsupportedMediaType", /send application\/cloudevents\+json/);
  assertRejects({ "content-type": "application/cloudevents-batch+xml" }, "", "UnsupportedMediaType", /send application\/cloudevents-batch\+json/);
  assertRejects({ "content-type": "application/cloudevents+json; charset=latin1" }, "{}", "UnsupportedMediaType", /charset "latin1"/);
});

test("http binding - batch mode: each event gets its own result, in order", () => {
  const parsed = parse(
    { "content-type": "application/cloudevents-batch+json" },
    JSON.stringify([{ ...minimal, id: "a" }, { ...minimal, type: "" }, "nope"]),
  );
  assert.ok(parsed.mode === "batch");
  assert.equal(parsed.items.length, 3);
  const [first, second, third] = parsed.items;
  assert.ok(first && "event" in first && first.event.id === "a");
  assert.ok(second && "error" in second && second.error.code === "ValidationError");
  assert.match(second.error.message, /^events\[1\]\.type: must be a non-empty string/);
  assert.ok(third && "error" in third);
  assert.match(third.error.message, /^events\[2\]: must be a JSON object/);
});

test("http binding - batch mode: an empty batch is valid, too many or not an array is not", () => {
  const empty = parse({ "content-type": "application/cloudevents-batch+json" }, "[]");
  assert.ok(empty.mode === "batch");
  assert.equal(empty.items.length, 0);
  assertRejects({ "content-type": "application/cloudevents-batch+json" }, JSON.stringify([minimal, minimal, minimal, minimal]), "TooManyEntries", /4 events, more than the limit of 3/);
  assertRejects({ "content-type": "application/cloudevents-batch+json" }, JSON.stringify(minimal), "ValidationError", /^body: a batch must be a JSON array/);
});
