import assert from "node:assert/strict";
import { test } from "node:test";
import { isRelaybusError } from "../../src/errors.js";
import { RELAYBUS_VERSION } from "../../src/version.js";
import {
  awsEnvelope,
  formatRequest,
  percentEncodeHeaderValue,
  structuredFallbackRequest,
} from "../../src/delivery/format-payload.js";
import type { RoutedTarget } from "../../src/delivery/router.js";
import type { CloudEvent, StoredEvent, TargetFormat } from "../../src/types.js";

const RETRY = { maxAttempts: 3, maxAgeSeconds: 60, baseDelayMs: 10, factor: 2, maxDelayMs: 100 };
const DELIVERY_ID = "0b6c1a3e-5f2d-4c1b-9a8e-2f4d6c8b0a1e";
const NOW_MS = Date.UTC(2024, 4, 1, 12, 0, 0, 750);

function stored(event: CloudEvent): StoredEvent {
  const json = JSON.stringify(event);
  return { bus: "orders", event, json, sizeBytes: Buffer.byteLength(json), units: 1, offset: 7, receivedAtMs: NOW_MS - 5_000 };
}

function target(format: TargetFormat, headers: Record<string, string> = {}): RoutedTarget {
  return { rule: "big", targetId: "t1", url: "http://127.0.0.1:1/hook", headers, timeoutMs: 2_500, format, retry: RETRY };
}

const ORDER: CloudEvent = {
  specversion: "1.0",
  id: "evt-1",
  source: "shop.orders",
  type: "order.created",
  subject: "order 42",
  time: "2024-05-01T11:59:55Z",
  data: { id: 42, total: 120.5 },
  resources: ["arn:a", "arn:b"],
  tenant: "acme",
};

const COMMON = {
  "webhook-id": DELIVERY_ID,
  "webhook-timestamp": String(Math.floor(NOW_MS / 1000)),
  "user-agent": `Relaybus/${RELAYBUS_VERSION}`,
};

test("format - cloudevents-structured sends the stored JSON as application/cloudevents+json", () => {
  const event = stored(ORDER);
  const request = formatRequest({ event, target: target("cloudevents-structured"), deliveryId: DELIVERY_ID, nowMs: NOW_MS });
  assert.deepEqual(request, {
    url: "http://127.0.0.1:1/hook",
    headers: { "content-type": "application/cloudevents+json", ...COMMON },
    body: event.json,
    timeoutMs: 2_500,
  });
});

test("format - cloudevents-binary maps every attribute to a ce- header and the data to the body", () => {
  const request = formatRequest({ event: stored(ORDER), target: target("cloudevents-binary"), deliveryId: DELIVERY_ID, nowMs: NOW_MS });
  assert.deepEqual(request.headers, {
    "ce-specversion": "1.0",
    "ce-id": "evt-1",
    "ce-source": "shop.orders",
    "ce-type": "order.created",
    "ce-subject": "order%2042",
    "ce-time": "2024-05-01T11:59:55Z",
    "ce-resources": "arn:a,arn:b",
    "ce-tenant": "acme",
    "content-type": "application/json",
    ...COMMON,
  });
  assert.equal(request.body, '{"id":42,"total":120.5}');
});

test("format - cloudevents-binary keeps text data as is under its datacontenttype", () => {
  const event: CloudEvent = { specversion: "1.0", id: "e", source: "s", type: "t", datacontenttype: "text/plain", data: "héllo \"x\"", flag: true, n: 3 };
  const request = formatRequest({ event: stored(event), target: target("cloudevents-binary"), deliveryId: DELIVERY_ID, nowMs: NOW_MS });
  assert.equal(request.body, 'héllo "x"');
  assert.equal(request.headers["content-type"], "text/plain");
  assert.equal(request.headers["ce-datacontenttype"], undefined);
  assert.equal(request.headers["ce-flag"], "true");
  assert.equal(request.headers["ce-n"], "3");
});

test("format - cloudevents-binary decodes data_base64 into the body", () => {
  const event: CloudEvent = {
    specversion: "1.0", id: "e", source: "s", type: "t",
    datacontenttype: "application/xml", data_base64: Buffer.from("<a>ü</a>").toString("base64"),
  };
  const request = formatRequest({ event: stored(event), target: target("cloudevents-binary"), deliveryId: DELIVERY_ID, nowMs: NOW_MS });
  assert.equal(request.body, "<a>ü</a>");
  assert.equal(request.headers["content-type"], "application/xml");
  assert.equal(request.headers["ce-data_base64"], undefined);
});

test("format - binary data that is not UTF-8 is refused with a reason, not sent corrupted", () => {
  const event: CloudEvent = { specversion: "1.0", id: "e", source: "s", type: "t", data_base64: Buffer.from([0xff, 0xfe, 0x00]).toString("base64") };
  assert.throws(
    () => formatRequest({ event: stored(event), target: target("data"), deliveryId: DELIVERY_ID, nowMs: NOW_MS }),
    (error: unknown) => isRelaybusError(error, "ValidationError") && /not UTF-8/.test(error.message),
  );
});

test("format - header values are percent-encoded as the CloudEvents HTTP binding says", () => {
  assert.equal(percentEncodeHeaderValue("plain-ascii_1.0"), "plain-ascii_1.0");
  assert.equal(percentEncodeHeaderValue('a b"c%d'), "a%20b%22c%25d");
  assert.equal(percentEncodeHeaderValue("€"), "%E2%82%AC");
  assert.equal(percentEncodeHeaderValue("tab\there\n"), "tab%09here%0A");
});

test("format - aws sends the EventBridge envelope", () => {
  const request = formatRequest({ event: stored(ORDER), target: target("aws"), deliveryId: DELIVERY_ID, nowMs: NOW_MS });
  assert.deepEqual(request.headers, { "content-type": "application/json", ...COMMON });
  assert.deepEqual(JSON.parse(request.body), {
    version: "0",
    id: "evt-1",
    "detail-type": "order.created",
    source: "shop.orders",
    account: "000000000000",
    time: "2024-05-01T11:59:55Z",
    region: "local",
    resources: ["arn:a", "arn:b"],
    detail: { id: 42, total: 120.5 },
  });
});

test("format - aws fills time from the log and empty resources and detail when absent", () => {
  const event = stored({ specversion: "1.0", id: "e", source: "s", type: "t" });
  const envelope = awsEnvelope(event, { awsAccount: "123456789012", awsRegion: "eu-west-1" });
  assert.equal(envelope.time, new Date(NOW_MS - 5_000).toISOString());
  assert.deepEqual(envelope.resources, []);
  assert.deepEqual(envelope.detail, {});
  assert.equal(envelope.account, "123456789012");
  assert.equal(envelope.region, "eu-west-1");
});

test("format - data sends the bare data", () => {
  const request = formatRequest({ event: stored(ORDER), target: target("data"), deliveryId: DELIVERY_ID, nowMs: NOW_MS });
  assert.deepEqual(request.headers, { "content-type": "application/json", ...COMMON });
  assert.equal(request.body, '{"id":42,"total":120.5}');
});

test("format - transform sends the transform's output as JSON", () => {
  const request = formatRequest({
    event: stored(ORDER), target: target("transform"), deliveryId: DELIVERY_ID, nowMs: NOW_MS,
    transformed: { orderId: 42, amount: 120.5 },
  });
  assert.deepEqual(request.headers, { "content-type": "application/json", ...COMMON });
  assert.equal(request.body, '{"orderId":42,"amount":120.5}');
  assert.throws(
    () => formatRequest({ event: stored(ORDER), target: target("transform"), deliveryId: DELIVERY_ID, nowMs: NOW_MS }),
    (error: unknown) => isRelaybusError(error, "ValidationError") && /no value/.test(error.message),
  );
});

test("format - target headers are sent, but never override the protocol headers", () => {
  const request = formatRequest({
    event: stored(ORDER),
    target: target("cloudevents-structured", { Authorization: "Bearer x", "Webhook-Id": "spoof", "Content-Type": "text/plain" }),
    deliveryId: DELIVERY_ID,
    nowMs: NOW_MS,
  });
  assert.equal(request.headers["authorization"], "Bearer x");
  assert.equal(request.headers["webhook-id"], DELIVERY_ID);
  assert.equal(request.headers["content-type"], "application/cloudevents+json");
  assert.equal(request.headers["Webhook-Id"], undefined);
});

test("format - the structured fallback keeps the event as the payload of a dead letter", () => {
  const event = stored(ORDER);
  const request = structuredFallbackRequest({ event, target: target("transform"), deliveryId: DELIVERY_ID, nowMs: NOW_MS });
  assert.equal(request.body, event.json);
  assert.equal(request.headers["content-type"], "application/cloudevents+json");
});

