import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { decideNext, retryDelayMs } from "../../src/delivery/retry-policy.js";
import type { RetryPolicy } from "../../src/log/log-engine.js";

const POLICY: RetryPolicy = { maxAttempts: 5, maxAgeSeconds: 3_600, baseDelayMs: 1_000, factor: 2, maxDelayMs: 60_000 };
const RETRYABLE = { outcome: "retryable" as const, error: "HTTP 503" };

test("retry - delays grow exponentially and stay within the full-jitter bounds", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 200 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
      const delay = retryDelayMs(POLICY, attempt, () => r);
      const ceiling = Math.min(POLICY.maxDelayMs, POLICY.baseDelayMs * 2 ** (attempt - 1));
      return delay >= 0 && delay <= ceiling && Number.isInteger(delay);
    }),
  );
  const top = () => 0.999999;
  assert.equal(retryDelayMs(POLICY, 1, top), 999);
  assert.equal(retryDelayMs(POLICY, 2, top), 1_999);
  assert.equal(retryDelayMs(POLICY, 3, top), 3_999);
  assert.equal(retryDelayMs(POLICY, 10, top), 59_999);
  assert.equal(retryDelayMs(POLICY, 1_000, top), 59_999);
  assert.equal(retryDelayMs(POLICY, 4, () => 0), 0);
  assert.equal(retryDelayMs(POLICY, 4, () => 0.5), 4_000);
});

test("retry - Retry-After replaces the backoff, capped at maxDelayMs", () => {
  assert.equal(retryDelayMs(POLICY, 1, () => 0, 7_000), 7_000);
  assert.equal(retryDelayMs(POLICY, 1, () => 0, 600_000), 60_000);
  const next = decideNext({
    policy: POLICY, attempt: 1, classified: { ...RETRYABLE, retryAfterMs: 5_000 },
    nowMs: 10_000, eventReceivedAtMs: 9_000, random: () => 0,
  });
  assert.deepEqual(next, { kind: "retry", nextAttemptAtMs: 15_000 });
});

test("retry - success succeeds and a permanent failure dead-letters at once", () => {
  const base = { policy: POLICY, attempt: 1, nowMs: 1_000, eventReceivedAtMs: 0, random: () => 0.5 };
  assert.deepEqual(decideNext({ ...base, classified: { outcome: "success" } }), { kind: "succeeded" });
  const dead = decideNext({ ...base, classified: { outcome: "permanent", error: "HTTP 400" } });
  assert.equal(dead.kind, "dead");
  assert.match(dead.kind === "dead" ? dead.reason : "", /permanent failure on attempt 1: HTTP 400/);
});

test("retry - gives up when attempts reach maxAttempts", () => {
  const base = { policy: POLICY, classified: RETRYABLE, nowMs: 1_000, eventReceivedAtMs: 0, random: () => 0.5 };
  assert.deepEqual(decideNext({ ...base, attempt: 4 }), { kind: "retry", nextAttemptAtMs: 1_000 + 4_000 });
  const dead = decideNext({ ...base, attempt: 5 });
  assert.equal(dead.kind, "dead");
  assert.match(dead.kind === "dead" ? dead.reason : "", /gave up after 5 attempts \(maxAttempts 5\): HTTP 503/);
});

test("retry - gives up when the next attempt would be past the event's max age", () => {
  const receivedAtMs = 1_000_000;
  const expiresAtMs = receivedAtMs + POLICY.maxAgeSeconds * 1000;
  const base = { policy: POLICY, attempt: 2, classified: RETRYABLE, eventReceivedAtMs: receivedAtMs, random: () => 0.5 };
  // Delay after attempt 2 at r=0.5 is 1,000 ms.
  assert.deepEqual(decideNext({ ...base, nowMs: expiresAtMs - 1_000 }), { kind: "retry", nextAttemptAtMs: expiresAtMs });
  const dead = decideNext({ ...base, nowMs: expiresAtMs - 999 });
  assert.equal(dead.kind, "dead");
  assert.match(dead.kind === "dead" ? dead.reason : "", /past the event's max age of 3600 s/);
});

test("retry - an explicit delay list replaces the curve, the last delay repeating, without jitter", () => {
  const listed = { ...POLICY, delaysMs: [250, 1_000, 5_000] };
  assert.deepEqual([1, 2, 3, 4, 50].map((attempt) => retryDelayMs(listed, attempt, () => 0.5)), [250, 1_000, 5_000, 5_000, 5_000]);
  assert.equal(retryDelayMs(listed, 2, () => 0), 1_000, "no jitter");
  // Retry-After still wins, capped at maxDelayMs.
  assert.equal(retryDelayMs(listed, 1, () => 0, 7_000), 7_000);
});
