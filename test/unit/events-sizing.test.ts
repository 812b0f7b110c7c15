import assert from "node:assert/strict";
import { test } from "node:test";
import { billableUnits, measureEvent } from "../../src/events/sizing.js";
import type { CloudEvent } from "../../src/types.js";

test("sizing - billable units at the 64 KB boundaries", () => {
  assert.equal(billableUnits(0), 1);
  assert.equal(billableUnits(1), 1);
  assert.equal(billableUnits(65_535), 1);
  assert.equal(billableUnits(65_536), 1);
  assert.equal(billableUnits(65_537), 2);
  assert.equal(billableUnits(131_072), 2);
  assert.equal(billableUnits(131_073), 3);
  assert.equal(billableUnits(262_144), 4);
});

test("sizing - measures the UTF-8 bytes of the structured JSON form, not its characters", () => {
  const event: CloudEvent = { specversion: "1.0", id: "1", source: "/s", type: "t", data: { name: "café €😀" } };
  const measured = measureEvent("orders", event);
  assert.equal(measured.json, JSON.stringify(event));
  assert.equal(measured.sizeBytes, new TextEncoder().encode(measured.json).length);
  assert.ok(measured.sizeBytes > measured.json.length, "multi-byte characters must count as their bytes");
  assert.equal(measured.bus, "orders");
  assert.equal(measured.event, event);
  assert.equal(measured.units, 1);
});

test("sizing - an event just over 64 KB costs two units", () => {
  const event: CloudEvent = { specversion: "1.0", id: "1", source: "/s", type: "t", data: "" };
  const overhead = JSON.stringify(event).length;
  event.data = "x".repeat(65_536 - overhead);
  assert.equal(measureEvent("b", event).sizeBytes, 65_536);
  assert.equal(measureEvent("b", event).units, 1);
  event.data = "x".repeat(65_537 - overhead);
  assert.equal(measureEvent("b", event).sizeBytes, 65_537);
  assert.equal(measureEvent("b", event).units, 2);
});

test("sizing - splicing data's JSON text gives exactly the JSON, size and units of serializing it", () => {
  const data = { name: "café €😀", total: 129.5, items: [{ sku: "a1" }], pad: "x".repeat(65_400) };
  const event: CloudEvent = {
    specversion: "1.0",
    id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    source: "com.example.orders",
    type: 'Order "Created"',
    time: "2026-01-02T03:04:05.000Z",
    datacontenttype: "application/json",
    resources: ["arn:aws:s3:::bucket"],
    traceheader: "Root=1-5759e988-bd862e3fe1be46a994272793",
    data,
  };
  const serialized = measureEvent("orders", event);
  const spliced = measureEvent("orders", event, JSON.stringify(data));
  assert.equal(spliced.json, JSON.stringify(event));
  assert.equal(spliced.json, serialized.json);
  assert.equal(spliced.sizeBytes, serialized.sizeBytes);
  assert.equal(spliced.units, 2);
  assert.equal(spliced.units, serialized.units);
  // The event keeps its data (and its attribute order) afterwards.
  assert.equal(spliced.event, event);
  assert.equal(event.data, data);
  assert.deepEqual(Object.keys(event).at(-1), "data");
});
