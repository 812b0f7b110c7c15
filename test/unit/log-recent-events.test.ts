import assert from "node:assert/strict";
import { test } from "node:test";
import { createRecentEvents } from "../../src/log/sqlite/recent-events.js";
import type { StoredEvent } from "../../src/types.js";

function stored(bus: string, offset: number): StoredEvent {
  const event = { specversion: "1.0" as const, id: `${bus}-${offset}`, source: "s", type: "t" };
  return { bus, offset, event, json: JSON.stringify(event), sizeBytes: 10, units: 1, receivedAtMs: 0 };
}

test("recent events - reads right behind the writer come from memory, in offset order", () => {
  const recent = createRecentEvents(4);
  for (let offset = 1; offset <= 5; offset++) recent.add(stored("a", offset));
  assert.deepEqual(recent.read("a", 2, 2)?.map((e) => e.offset), [3, 4]);
  assert.deepEqual(recent.read("a", 5, 10), [], "past the end: nothing yet");
  assert.equal(recent.read("b", 0, 10), undefined, "another bus: not covered");
});

test("recent events - a position before the tail is not covered, so the caller reads SQLite", () => {
  const recent = createRecentEvents(2);
  for (let offset = 1; offset <= 10; offset++) recent.add(stored("a", offset));
  assert.equal(recent.read("a", 0, 5), undefined, "offset 1 was trimmed");
  const last = recent.read("a", 8, 5);
  assert.deepEqual(last?.map((e) => e.offset), [9, 10]);
});

test("recent events - a gap restarts the tail instead of serving a hole", () => {
  const recent = createRecentEvents(8);
  recent.add(stored("a", 1));
  recent.add(stored("a", 2));
  recent.add(stored("a", 5));
  assert.equal(recent.read("a", 1, 5), undefined);
  assert.deepEqual(recent.read("a", 4, 5)?.map((e) => e.offset), [5]);
  recent.clear();
  assert.equal(recent.read("a", 4, 5), undefined);
});
