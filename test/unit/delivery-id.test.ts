import assert from "node:assert/strict";
import { test } from "node:test";
import { deliveryId } from "../../src/delivery/delivery-id.js";

const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("delivery id - is a version-5 UUID, the same for the same event and target", () => {
  const id = deliveryId("orders", 7, "evt-1", "big", "fulfil");
  assert.match(id, UUID_V5);
  assert.equal(deliveryId("orders", 7, "evt-1", "big", "fulfil"), id);
});

test("delivery id - differs when any part differs, and parts cannot run into each other", () => {
  const ids = new Set([
    deliveryId("orders", 7, "evt-1", "big", "fulfil"),
    deliveryId("orders2", 7, "evt-1", "big", "fulfil"),
    deliveryId("orders", 8, "evt-1", "big", "fulfil"),
    deliveryId("orders", 7, "evt-2", "big", "fulfil"),
    deliveryId("orders", 7, "evt-1", "small", "fulfil"),
    deliveryId("orders", 7, "evt-1", "big", "audit"),
    deliveryId("orders", 7, "evt-1", "bi", "gfulfil"),
  ]);
  assert.equal(ids.size, 7);
});
