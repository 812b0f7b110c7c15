import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { TokenBucket } from "../../src/delivery/token-bucket.js";

const T0 = 1_000_000;

test("token bucket - starts full with one second's worth, then refuses with the wait", () => {
  const bucket = new TokenBucket({ ratePerSecond: 10 }, T0);
  assert.equal(bucket.burst, 10);
  for (let i = 0; i < 10; i++) assert.equal(bucket.take(T0), 0, `token ${i + 1}`);
  assert.equal(bucket.take(T0), 100, "the 11th waits for one refill: 1000 ms / 10");
  assert.equal(bucket.take(T0 + 40), 60, "40 ms later, 60 ms are left");
  assert.equal(bucket.take(T0 + 100), 0, "after 100 ms one token is back");
  assert.equal(bucket.take(T0 + 100), 100);
});

test("token bucket - a refused take takes nothing", () => {
  const bucket = new TokenBucket({ ratePerSecond: 2, burst: 1 }, T0);
  assert.equal(bucket.take(T0), 0);
  for (let i = 0; i < 5; i++) assert.equal(bucket.take(T0 + 100), 400);
  assert.equal(bucket.take(T0 + 500), 0);
});

test("token bucket - refill stops at the burst", () => {
  const bucket = new TokenBucket({ ratePerSecond: 5, burst: 3 }, T0);
  assert.equal(bucket.available(T0 + 3_600_000), 3);
  for (let i = 0; i < 3; i++) assert.equal(bucket.take(T0 + 3_600_000), 0);
  assert.equal(bucket.take(T0 + 3_600_000), 200, "the 4th waits: 1000 ms / 5");
});

test("token bucket - a rate below one per second still allows one attempt (burst at least 1)", () => {
  const bucket = new TokenBucket({ ratePerSecond: 0.5 }, T0);
  assert.equal(bucket.burst, 1);
  assert.equal(bucket.take(T0), 0);
  assert.equal(bucket.take(T0), 2_000);
  assert.equal(bucket.take(T0 + 1_999), 1);
  assert.equal(bucket.take(T0 + 2_000), 0);
});

test("token bucket - a clock moving back adds nothing", () => {
  const bucket = new TokenBucket({ ratePerSecond: 1 }, T0);
  assert.equal(bucket.take(T0), 0);
  assert.equal(bucket.take(T0 - 5_000), 1_000);
  assert.equal(bucket.take(T0 + 999), 1);
  assert.equal(bucket.take(T0 + 1_000), 0);
});

test("token bucket - refuses rates and bursts out of range", () => {
  assert.throws(() => new TokenBucket({ ratePerSecond: 0 }, T0), /ratePerSecond/);
  assert.throws(() => new TokenBucket({ ratePerSecond: -1 }, T0), /ratePerSecond/);
  assert.throws(() => new TokenBucket({ ratePerSecond: Number.NaN }, T0), /ratePerSecond/);
  assert.throws(() => new TokenBucket({ ratePerSecond: Infinity }, T0), /ratePerSecond/);
  assert.throws(() => new TokenBucket({ ratePerSecond: 1, burst: 0.5 }, T0), /burst/);
});

test("token bucket - waiting the answered time is always enough", () => {
  fc.assert(
    fc.property(
      fc.double({ min: 0.01, max: 100_000, noNaN: true }),
      fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 50 }),
      (ratePerSecond, gaps) => {
        const bucket = new TokenBucket({ ratePerSecond }, T0);
        let now = T0;
        for (const gap of gaps) {
          now += gap;
          const wait = bucket.take(now);
          if (wait === 0) continue;
          if (!Number.isInteger(wait) || wait < 1) return false;
          if (bucket.take(now + wait) !== 0) return false;
          now += wait;
        }
        return true;
      },
    ),
  );
});

test("token bucket - never more than burst + rate x time tokens in any run of takes", () => {
  fc.assert(
    fc.property(
      fc.double({ min: 0.1, max: 1_000, noNaN: true }),
      fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }),
      fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 300 }),
      (ratePerSecond, burst, gaps) => {
        const bucket = new TokenBucket({ ratePerSecond, ...(burst === undefined ? {} : { burst }) }, T0);
        let now = T0;
        let taken = 0;
        for (const gap of gaps) {
          now += gap;
          // Ask until refused at this instant, as an engine draining a backlog would.
          while (bucket.take(now) === 0) taken++;
        }
        const allowed = bucket.burst + ((now - T0) * ratePerSecond) / 1000;
        return taken <= Math.floor(allowed + 1e-6);
      },
    ),
  );
});
