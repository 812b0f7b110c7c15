import assert from "node:assert/strict";
import { test } from "node:test";
import { DeliveryLanes, Fifo, type LaneLimits } from "../../src/delivery/delivery-lanes.js";

const limits = (over: Partial<LaneLimits> = {}) => () => ({ maxInFlight: 10, maxQueued: 100, ordered: false, ...over });

test("lanes - a fifo keeps order through pushes, shifts and unshifts past its compaction", () => {
  const fifo = new Fifo<number>();
  for (let i = 0; i < 5_000; i++) fifo.push(i);
  for (let i = 0; i < 3_000; i++) assert.equal(fifo.shift(), i);
  fifo.unshift(2_999);
  assert.equal(fifo.length, 2_001);
  assert.equal(fifo.peek(), 2_999);
  assert.deepEqual(fifo.drain().slice(0, 3), [2_999, 3_000, 3_001]);
  assert.equal(fifo.shift(), undefined);
});

test("lanes - lanes take turns, so a long queue does not go before a short one", () => {
  const lanes = new DeliveryLanes<string>();
  const busy = lanes.lane("busy", limits());
  const quiet = lanes.lane("quiet", limits());
  for (let i = 0; i < 5; i++) lanes.add(busy, `b${i}`);
  lanes.add(quiet, "q0");
  const order = [1, 2, 3].map(() => lanes.take(0)!.item);
  assert.deepEqual(order, ["b0", "q0", "b1"]);
  assert.equal(lanes.queued, 3);
});

test("lanes - a lane never has more in flight than its limit, and resumes when one ends", () => {
  const lanes = new DeliveryLanes<string>();
  const lane = lanes.lane("t", limits({ maxInFlight: 2 }));
  for (let i = 0; i < 4; i++) lanes.add(lane, `d${i}`);
  assert.equal(lanes.take(0)?.item, "d0");
  assert.equal(lanes.take(0)?.item, "d1");
  assert.equal(lanes.take(0), undefined, "two in flight already");
  lanes.finished(lane);
  assert.equal(lanes.take(0)?.item, "d2");
  assert.equal(lane.inFlight, 2);
});

test("lanes - a gate's wait holds that lane only, until its time", () => {
  const waits = new Map([["paced", 50]]);
  const lanes = new DeliveryLanes<string>((key) => waits.get(key) ?? 0);
  const paced = lanes.lane("paced", limits());
  const free = lanes.lane("free", limits());
  lanes.add(paced, "p0");
  lanes.add(free, "f0");
  assert.equal(lanes.take(0)?.item, "f0");
  assert.equal(lanes.take(0), undefined);
  assert.equal(lanes.nextWakeAtMs(), 50);
  waits.set("paced", 0);
  assert.equal(lanes.take(49), undefined, "not before its time");
  assert.equal(lanes.take(50)?.item, "p0");
  assert.equal(lanes.nextWakeAtMs(), undefined);
});

test("lanes - an ordered lane sends one at a time and a blocked head holds the rest", () => {
  const lanes = new DeliveryLanes<string>();
  const lane = lanes.lane("replay:r1:orders/r/t", limits({ ordered: true, maxInFlight: 10 }));
  for (const item of ["e1", "e2", "e3"]) lanes.add(lane, item);
  const first = lanes.take(0)!;
  assert.equal(first.item, "e1");
  assert.equal(lanes.take(0), undefined, "one at a time");
  // e1 failed: back in front, blocked until its retry at 100.
  lanes.add(lane, "e1", true);
  lanes.block(lane, 100);
  lanes.finished(lane);
  assert.equal(lanes.take(10), undefined);
  assert.equal(lanes.take(100)?.item, "e1");
  lanes.finished(lane);
  assert.equal(lanes.take(100)?.item, "e2");
});

test("lanes - an idle lane is forgotten, and a full one says so", () => {
  const lanes = new DeliveryLanes<string>();
  const lane = lanes.lane("t", limits({ maxQueued: 2 }));
  lanes.add(lane, "a");
  lanes.add(lane, "b");
  assert.equal(lanes.isFull(lane), true);
  lanes.take(0);
  lanes.finished(lane);
  lanes.take(0);
  lanes.finished(lane);
  assert.notEqual(lanes.lane("t", limits()), lane, "a new lane after the old one went idle");
});

test("lanes - an ordered lane takes a late item in its place, not at the back", () => {
  const lanes = new DeliveryLanes<number>();
  const lane = lanes.lane("replay:r:orders/r/t", limits({ ordered: true }));
  for (const offset of [2, 3, 5]) lanes.add(lane, offset);
  lanes.addInOrder(lane, 1, (item, queued) => item < queued);
  lanes.addInOrder(lane, 4, (item, queued) => item < queued);
  lanes.addInOrder(lane, 6, (item, queued) => item < queued);
  const taken: number[] = [];
  for (let i = 0; i < 6; i++) {
    taken.push(lanes.take(0)!.item);
    lanes.finished(lane);
  }
  assert.deepEqual(taken, [1, 2, 3, 4, 5, 6]);
});
