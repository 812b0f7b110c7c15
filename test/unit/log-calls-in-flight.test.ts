import assert from "node:assert/strict";
import { test } from "node:test";
import { CallsInFlight } from "../../src/log/sqlite/calls-in-flight.js";

test("calls in flight - answered in order, each call comes back once", () => {
  const calls = new CallsInFlight<string>();
  for (let id = 1; id <= 3; id++) calls.add(id, `call ${id}`);
  assert.equal(calls.size, 3);
  assert.equal(calls.take(1), "call 1");
  assert.equal(calls.take(1), undefined, "taken already");
  assert.equal(calls.take(2), "call 2");
  assert.equal(calls.take(3), "call 3");
  assert.equal(calls.size, 0);
  assert.deepEqual(calls.values(), []);
});

test("calls in flight - answered out of order and across a growth of the ring", () => {
  const calls = new CallsInFlight<number>();
  // More calls than the first ring holds, ids not starting at 0, the oldest answered last.
  for (let id = 1000; id < 1300; id++) calls.add(id, id * 10);
  for (let id = 1299; id > 1000; id -= 2) assert.equal(calls.take(id), id * 10);
  assert.equal(calls.size, 150);
  assert.deepEqual(calls.values().slice(0, 3), [10_000, 10_020, 10_040], "oldest first");
  for (let id = 1300; id < 1400; id++) calls.add(id, id * 10);
  assert.equal(calls.take(1002), 10_020);
  assert.equal(calls.take(1399), 13_990);
  assert.equal(calls.take(5000), undefined, "never added");
  assert.equal(calls.take(999), undefined, "before the first");
  assert.equal(calls.size, 248);
  const held = calls.values();
  assert.equal(held.length, 248);
  assert.equal(held[0], 10_000);
  assert.equal(held.at(-1), 13_980);
});

test("calls in flight - a lap around the ring after it emptied reuses its slots", () => {
  const calls = new CallsInFlight<number>();
  for (let id = 0; id < 10_000; id++) {
    calls.add(id, id);
    if (id >= 10) assert.equal(calls.take(id - 10), id - 10);
  }
  assert.equal(calls.size, 10);
  assert.deepEqual(calls.values(), [9990, 9991, 9992, 9993, 9994, 9995, 9996, 9997, 9998, 9999]);
  calls.clear();
  assert.equal(calls.size, 0);
  assert.equal(calls.take(9995), undefined, "cleared");
  calls.add(10_000, 1);
  assert.deepEqual(calls.values(), [1]);
});

test("calls in flight - an id added out of order is refused", () => {
  const calls = new CallsInFlight<number>();
  calls.add(5, 5);
  assert.throws(() => calls.add(4, 4), /call 4 added after call 5/);
});
