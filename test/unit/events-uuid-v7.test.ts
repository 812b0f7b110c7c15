import assert from "node:assert/strict";
import { test } from "node:test";
import { uuidV7 } from "../../src/events/uuid-v7.js";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The 48-bit timestamp of a UUIDv7, as Unix ms. */
function timestampOf(id: string): number {
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

test("uuid v7 - has the RFC 9562 layout: version 7, variant 10", () => {
  for (let i = 0; i < 1_000; i++) assert.match(uuidV7(), UUID_V7);
});

test("uuid v7 - carries the millisecond it was made in", () => {
  const before = Date.now();
  const id = uuidV7();
  const after = Date.now();
  const ms = timestampOf(id);
  assert.ok(ms >= before && ms <= after, `${ms} not in [${before}, ${after}]`);
  assert.equal(timestampOf(uuidV7(1_700_000_000_123)), 1_700_000_000_123);
  assert.equal(timestampOf(uuidV7(0)), 0);
  assert.equal(timestampOf(uuidV7(2 ** 48 - 1)), 2 ** 48 - 1);
});

test("uuid v7 - ids of later milliseconds sort after earlier ones, whatever the order of calls", () => {
  const later = uuidV7(1_700_000_000_001);
  const earlier = uuidV7(1_700_000_000_000);
  const laterAgain = uuidV7(1_700_000_000_001);
  assert.ok(earlier < later && earlier < laterAgain);
  assert.equal(timestampOf(laterAgain), 1_700_000_000_001);
});

test("uuid v7 - ids of one millisecond differ", () => {
  const ids = new Set(Array.from({ length: 10_000 }, () => uuidV7(1_700_000_000_000)));
  assert.equal(ids.size, 10_000);
});
