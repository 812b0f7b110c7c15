import assert from "node:assert/strict";
import { test } from "node:test";
import { CuQuota } from "../../src/streams/cu-quota.js";
import { CuScaler, type ScaleWindow } from "../../src/streams/cu-scaler.js";

/** Runs a stream of batches against the quota on a simulated clock; returns events sent per second. */
function simulate(quota: CuQuota, batchEvents: number, eventBytes: number, seconds: number): number {
  let nowMs = 0;
  let sent = 0;
  const endMs = seconds * 1000;
  while (nowMs < endMs) {
    const waitMs = quota.take(batchEvents, batchEvents * eventBytes, nowMs);
    if (waitMs > 0) {
      nowMs += waitMs;
      continue;
    }
    sent += batchEvents;
  }
  return sent / seconds;
}

test("cu quota - the events bucket binds for small events, at CU x events per second", () => {
  for (const [cu, batch] of [[1, 1], [1, 100], [3, 7], [4, 500]] as const) {
    const quota = new CuQuota({ eventsPerSecond: 5_000, bytesPerSecond: 52_428_800 }, cu, 0);
    const rate = simulate(quota, batch, 1_024, 30);
    const expected = 5_000 * cu;
    assert.ok(Math.abs(rate - expected) / expected < 0.01, `cu ${cu} batch ${batch}: ${rate}/s, expected ${expected}/s`);
  }
});

test("cu quota - the bytes bucket binds for large events, whichever binds first", () => {
  const quota = new CuQuota({ eventsPerSecond: 5_000, bytesPerSecond: 52_428_800 }, 1, 0);
  const eventBytes = 20 * 1024;
  const rate = simulate(quota, 50, eventBytes, 30);
  const bytesPerSecond = rate * eventBytes;
  assert.ok(rate < 5_000 * 0.6, `20 KB events are held by bytes, not events: ${rate}/s`);
  assert.ok(Math.abs(bytesPerSecond - 52_428_800) / 52_428_800 < 0.01, `${bytesPerSecond} bytes/s`);
});

test("cu quota - the maths does not depend on the absolute size of a CU", () => {
  const quota = new CuQuota({ eventsPerSecond: 50, bytesPerSecond: 51_200 }, 2, 0);
  assert.ok(Math.abs(simulate(quota, 5, 100, 60) - 100) < 1.5);
  const byBytes = new CuQuota({ eventsPerSecond: 50, bytesPerSecond: 51_200 }, 1, 0);
  assert.ok(Math.abs(simulate(byBytes, 1, 2_048, 60) - 25) < 0.5, "1 CU of 51,200 B/s carries 25 events of 2 KB");
});

test("cu quota - a batch larger than a second's worth goes, then the stream rests it off", () => {
  const quota = new CuQuota({ eventsPerSecond: 100, bytesPerSecond: 1e9 }, 1, 0);
  assert.equal(quota.take(1_000, 1_000, 0), 0);
  const waitMs = quota.take(1, 1, 0);
  assert.ok(waitMs >= 9_000 && waitMs <= 10_000, `rests ~9.9 s, got ${waitMs}`);
});

test("cu quota - resizing changes the rate from then on", () => {
  const quota = new CuQuota({ eventsPerSecond: 100, bytesPerSecond: 1e9 }, 1, 0);
  assert.equal(quota.eventsPerSecond, 100);
  quota.setCU(4, 0);
  assert.equal(quota.cu, 4);
  assert.equal(quota.eventsPerSecond, 400);
  assert.throws(() => quota.setCU(0, 0), RangeError);
  assert.throws(() => new CuQuota({ eventsPerSecond: 0, bytesPerSecond: 1 }, 1, 0), RangeError);
});

const perCU = { eventsPerSecond: 100, bytesPerSecond: 100_000 };
const window = (over: Partial<ScaleWindow>): ScaleWindow => ({
  windowMs: 1_000,
  throttledMs: 0,
  events: 0,
  bytes: 0,
  backlog: 0,
  ...over,
});

test("cu scaler - grows one CU per look while throttled with a backlog, up to the maximum", () => {
  const scaler = new CuScaler({ minCU: 1, maxCU: 3, perCU, scaleDownAfterIntervals: 2 });
  const busy = window({ throttledMs: 900, events: 100, bytes: 10_000, backlog: 5_000 });
  const first = scaler.observe(1, busy);
  assert.equal(first?.toCU, 2);
  assert.match(first?.reason ?? "", /throttled 90% of the last 1 s, backlog 5,000 events/);
  assert.equal(scaler.observe(2, busy)?.toCU, 3);
  assert.equal(scaler.observe(3, busy), undefined, "never above the maximum");
  assert.equal(scaler.observe(2, window({ throttledMs: 900, backlog: 0 })), undefined, "throttled but nothing waits: stay");
  assert.equal(scaler.observe(1, window({ throttledMs: 900, backlog: undefined }))?.toCU, 2, "a source that cannot tell its backlog");
});

test("cu scaler - gives one CU back only after quiet looks in a row, down to the minimum", () => {
  const scaler = new CuScaler({ minCU: 1, maxCU: 4, perCU, scaleDownAfterIntervals: 3 });
  const quiet = window({ events: 10, bytes: 1_000, backlog: 0 });
  assert.equal(scaler.observe(3, quiet), undefined);
  assert.equal(scaler.observe(3, quiet), undefined);
  assert.equal(scaler.observe(3, window({ events: 250, bytes: 1_000, backlog: 0 })), undefined, "250/s does not fit in 2 CU x 70%");
  assert.equal(scaler.observe(3, quiet), undefined, "the count starts again");
  assert.equal(scaler.observe(3, quiet), undefined);
  const down = scaler.observe(3, quiet);
  assert.equal(down?.toCU, 2);
  assert.match(down?.reason ?? "", /fit in 2 CU/);
  assert.equal(scaler.observe(1, quiet), undefined, "never below the minimum");
  assert.equal(scaler.observe(5, quiet)?.toCU, 4, "outside the bounds is brought back at once");
});

test("cu scaler - a backlog deeper than one interval's quota grows the stream though it is throttled only a little", () => {
  const scaler = new CuScaler({ minCU: 1, maxCU: 4, perCU, scaleDownAfterIntervals: 2 });
  // 3 CU = 300 events/s: a backlog of 5,000 is more than one second's quota; throttled 20%.
  const decision = scaler.observe(3, window({ throttledMs: 200, events: 300, bytes: 30_000, backlog: 5_000 }));
  assert.equal(decision?.toCU, 4);
  assert.equal(scaler.observe(3, window({ throttledMs: 200, events: 300, backlog: 250 })), undefined, "a backlog one interval drains: stay");
  assert.equal(scaler.observe(3, window({ throttledMs: 50, events: 300, backlog: 5_000 })), undefined, "not held back: the quota is not what binds");
});
