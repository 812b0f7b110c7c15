import assert from "node:assert/strict";
import { test } from "node:test";
import { deliveryId, replayDeliveryId } from "../../src/delivery/delivery-id.js";

const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("delivery id - a replay's id is a UUID of its own, the same every time, different per replay", () => {
  const original = deliveryId("orders", 7, "e-7", "big-orders", "fulfil");
  const replayed = replayDeliveryId("fix-1", original);
  assert.match(replayed, UUID_V5);
  assert.notEqual(replayed, original, "a receiver that deduplicates must not drop the replay");
  assert.equal(replayDeliveryId("fix-1", original), replayed, "a resumed replay repeats its ids");
  assert.notEqual(replayDeliveryId("fix-2", original), replayed, "another replay, other ids");
  assert.notEqual(replayDeliveryId("fix-1", deliveryId("orders", 8, "e-8", "big-orders", "fulfil")), replayed);
});
