import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  CircuitBreaker,
  DEFAULT_PROBE_TIMEOUT_MS,
  endpointSignal,
  type CircuitBreakerPolicy,
} from "../../src/delivery/circuit-breaker.js";

const T0 = 1_700_000_000_000;
const POLICY: CircuitBreakerPolicy = { failureThreshold: 3, openMs: 1_000, maxOpenMs: 5_000 };

function failTimes(breaker: CircuitBreaker, n: number, atMs: number): void {
  for (let i = 0; i < n; i++) breaker.onFailure(atMs);
}

test("circuit breaker - what counts: 5xx, 408, timeouts and connection errors fail; 429 and 4xx do not", () => {
  assert.equal(endpointSignal("retryable", 500), "failure");
  assert.equal(endpointSignal("retryable", 503), "failure");
  assert.equal(endpointSignal("retryable", 408), "failure");
  assert.equal(endpointSignal("retryable", undefined), "failure", "timeout or connection error");
  assert.equal(endpointSignal("retryable", 429), "neutral", "429 is pacing's business");
  assert.equal(endpointSignal("permanent", 400), "up", "the event's fault: the endpoint answered");
  assert.equal(endpointSignal("permanent", 404), "up");
  assert.equal(endpointSignal("permanent", undefined), "neutral", "blocked or invalid request never left");
  assert.equal(endpointSignal("success", 200), "up");
  assert.equal(endpointSignal("success", 204), "up");
});

test("circuit breaker - closed allows everything and opens at the threshold of consecutive failures", () => {
  const breaker = new CircuitBreaker(POLICY);
  assert.equal(breaker.state, "closed");
  assert.deepEqual(breaker.canSend(T0), { ok: true, probe: false });
  failTimes(breaker, 2, T0);
  breaker.onSuccess(T0);
  failTimes(breaker, 2, T0);
  assert.equal(breaker.state, "closed", "a success in between starts the count over");
  assert.deepEqual(breaker.snapshot(T0), { state: "closed", consecutiveFailures: 2, currentOpenMs: 1_000 });
  breaker.onFailure(T0 + 5);
  assert.equal(breaker.state, "open");
  assert.deepEqual(breaker.canSend(T0 + 5), { ok: false, retryAtMs: T0 + 1_005 });
  assert.deepEqual(breaker.canSend(T0 + 1_004), { ok: false, retryAtMs: T0 + 1_005 });
  assert.deepEqual(breaker.snapshot(T0 + 10), {
    state: "open",
    openUntilMs: T0 + 1_005,
    consecutiveFailures: 0,
    currentOpenMs: 1_000,
  });
});

test("circuit breaker - after the pause exactly one probe goes; its success closes the circuit", () => {
  const breaker = new CircuitBreaker(POLICY);
  failTimes(breaker, 3, T0);
  assert.equal(breaker.snapshot(T0 + 1_000).state, "half-open", "the snapshot shows the pause over");
  assert.deepEqual(breaker.canSend(T0 + 1_000), { ok: true, probe: true });
  assert.equal(breaker.state, "half-open");
  const refused = breaker.canSend(T0 + 1_001);
  assert.deepEqual(refused, { ok: false, retryAtMs: T0 + 1_000 + DEFAULT_PROBE_TIMEOUT_MS });
  assert.equal(breaker.canSend(T0 + 2_000).ok, false, "still only the one probe");
  breaker.onSuccess(T0 + 2_100, { probe: true });
  assert.equal(breaker.state, "closed");
  assert.deepEqual(breaker.canSend(T0 + 2_100), { ok: true, probe: false });
});

test("circuit breaker - each failed probe doubles the pause, up to maxOpenMs; a success resets it", () => {
  const breaker = new CircuitBreaker(POLICY);
  failTimes(breaker, 3, T0);
  let now = T0;
  const pauses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const refused = breaker.canSend(now);
    assert.equal(refused.ok, false);
    now = (refused as { retryAtMs: number }).retryAtMs;
    assert.deepEqual(breaker.canSend(now), { ok: true, probe: true });
    now += 10;
    breaker.onFailure(now, { probe: true });
    assert.equal(breaker.state, "open");
    pauses.push(breaker.snapshot(now).currentOpenMs);
  }
  assert.deepEqual(pauses, [2_000, 4_000, 5_000, 5_000, 5_000, 5_000]);
  now += 5_000;
  assert.deepEqual(breaker.canSend(now), { ok: true, probe: true });
  breaker.onSuccess(now, { probe: true });
  failTimes(breaker, 3, now);
  assert.equal(breaker.snapshot(now).currentOpenMs, 1_000, "the next opening starts from openMs again");
  assert.deepEqual(breaker.canSend(now), { ok: false, retryAtMs: now + 1_000 });
});

test("circuit breaker - attempts sent before it opened change nothing while open or half-open", () => {
  const breaker = new CircuitBreaker(POLICY);
  failTimes(breaker, 3, T0);
  breaker.onSuccess(T0 + 10);
  breaker.onFailure(T0 + 20);
  assert.deepEqual(breaker.canSend(T0 + 500), { ok: false, retryAtMs: T0 + 1_000 }, "open, same pause");
  assert.deepEqual(breaker.canSend(T0 + 1_000), { ok: true, probe: true });
  breaker.onSuccess(T0 + 1_001);
  breaker.onFailure(T0 + 1_002);
  assert.equal(breaker.state, "half-open", "only the probe decides");
  breaker.onFailure(T0 + 1_003, { probe: true });
  assert.equal(breaker.state, "open");
});

test("circuit breaker - a neutral probe (429) gives its slot back for another probe", () => {
  const breaker = new CircuitBreaker(POLICY);
  failTimes(breaker, 3, T0);
  assert.deepEqual(breaker.canSend(T0 + 1_000), { ok: true, probe: true });
  assert.equal(breaker.canSend(T0 + 1_001).ok, false);
  assert.equal(breaker.record(T0 + 1_002, { outcome: "retryable", status: 429 }, { probe: true }), "neutral");
  assert.equal(breaker.state, "half-open");
  assert.deepEqual(breaker.canSend(T0 + 1_003), { ok: true, probe: true });
});

test("circuit breaker - 429s and 4xx never open it; record maps outcomes", () => {
  const breaker = new CircuitBreaker(POLICY);
  for (let i = 0; i < 20; i++) breaker.record(T0, { outcome: "retryable", status: 429 });
  assert.equal(breaker.state, "closed");
  for (let i = 0; i < 20; i++) breaker.record(T0, { outcome: "permanent", status: 400 });
  assert.equal(breaker.state, "closed");
  breaker.record(T0, { outcome: "retryable", status: 502 });
  breaker.record(T0, { outcome: "retryable" });
  breaker.record(T0, { outcome: "permanent", status: 422 });
  breaker.record(T0, { outcome: "retryable", status: 500 });
  breaker.record(T0, { outcome: "retryable", status: 408 });
  assert.equal(breaker.state, "closed", "the 422 answered: the count started over");
  assert.equal(breaker.record(T0, { outcome: "retryable", status: 503 }), "failure");
  assert.equal(breaker.state, "open");
});

test("circuit breaker - a lost probe is replaced after the probe timeout", () => {
  const breaker = new CircuitBreaker(POLICY, { probeTimeoutMs: 2_000 });
  failTimes(breaker, 3, T0);
  assert.deepEqual(breaker.canSend(T0 + 1_000), { ok: true, probe: true });
  assert.deepEqual(breaker.canSend(T0 + 2_999), { ok: false, retryAtMs: T0 + 3_000 });
  assert.deepEqual(breaker.canSend(T0 + 3_000), { ok: true, probe: true });
});

test("circuit breaker - a threshold of 1 opens on the first failure", () => {
  const breaker = new CircuitBreaker({ failureThreshold: 1, openMs: 10, maxOpenMs: 10 });
  breaker.onFailure(T0);
  assert.equal(breaker.state, "open");
});

test("circuit breaker - refuses settings out of range", () => {
  assert.throws(() => new CircuitBreaker({ ...POLICY, failureThreshold: 0 }), /failureThreshold/);
  assert.throws(() => new CircuitBreaker({ ...POLICY, failureThreshold: 1.5 }), /failureThreshold/);
  assert.throws(() => new CircuitBreaker({ ...POLICY, openMs: 0 }), /openMs/);
  assert.throws(() => new CircuitBreaker({ ...POLICY, openMs: 6_000 }), /maxOpenMs/);
});

/** One step of a random life of a breaker. */
type Step =
  | { kind: "advance"; ms: number }
  | { kind: "send" }
  | { kind: "end"; signal: "up" | "failure" | "neutral"; which: number; probeFirst: boolean };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 3_000 }) }),
  fc.record({ kind: fc.constant("send" as const) }),
  fc.record({
    kind: fc.constant("end" as const),
    signal: fc.constantFrom("up" as const, "failure" as const, "neutral" as const),
    which: fc.nat(),
    // Ending the probe when one is out makes the half-open transitions frequent.
    probeFirst: fc.boolean(),
  }),
);

test("circuit breaker - properties over random lives: one probe at a time, pauses within bounds, opening needs the threshold", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 2_000 }),
      fc.integer({ min: 1, max: 8 }),
      fc.array(stepArbitrary, { minLength: 40, maxLength: 200, size: "max" }),
      (failureThreshold, openMs, factor, steps) => {
        const policy = { failureThreshold, openMs, maxOpenMs: openMs * factor };
        const probeTimeoutMs = 10_000;
        const breaker = new CircuitBreaker(policy, { probeTimeoutMs });
        let now = T0;
        /** Attempts in flight: whether each is the probe. */
        const inFlight: boolean[] = [];
        let probesOut = 0;
        let lastProbeAtMs = -Infinity;
        /** Failures reported in the closed state since its last success or opening. */
        let closedFailures = 0;
        for (const step of steps) {
          const before = breaker.state;
          if (step.kind === "advance") {
            now += step.ms;
          } else if (step.kind === "send") {
            const answer = breaker.canSend(now);
            if (before === "closed") assert.deepEqual(answer, { ok: true, probe: false });
            if (answer.ok) {
              if (answer.probe) {
                // Never two probes out, unless the first one timed out.
                assert.ok(probesOut === 0 || now >= lastProbeAtMs + probeTimeoutMs, "a second probe");
                probesOut = 1;
                lastProbeAtMs = now;
                assert.equal(breaker.state, "half-open");
              }
              inFlight.push(answer.probe);
            } else {
              assert.ok(answer.retryAtMs > now, "a refusal names a later time");
              assert.notEqual(breaker.state, "closed");
            }
          } else if (inFlight.length > 0) {
            const probeAt = inFlight.indexOf(true);
            const index = step.probeFirst && probeAt >= 0 ? probeAt : step.which % inFlight.length;
            const probe = inFlight.splice(index, 1)[0]!;
            if (probe) probesOut = 0;
            if (step.signal === "up") breaker.onSuccess(now, { probe });
            else if (step.signal === "failure") breaker.onFailure(now, { probe });
            else breaker.onNeutral(now, { probe });
            if (before === "closed") {
              if (step.signal === "up") closedFailures = 0;
              if (step.signal === "failure") closedFailures++;
              if (breaker.state === "open") {
                assert.equal(closedFailures, failureThreshold, "opened at exactly the threshold");
                closedFailures = 0;
              } else {
                assert.ok(closedFailures < failureThreshold, "below the threshold it stays closed");
              }
            }
            if (before === "half-open" && probe) {
              const expected = { up: "closed", failure: "open", neutral: "half-open" }[step.signal];
              assert.equal(breaker.state, expected);
              if (expected === "closed") closedFailures = 0;
            }
            if (!probe && before !== "closed") assert.equal(breaker.state, before, "only the probe decides");
          }
          const snapshot = breaker.snapshot(now);
          assert.ok(
            snapshot.currentOpenMs >= policy.openMs && snapshot.currentOpenMs <= policy.maxOpenMs,
            `pause ${snapshot.currentOpenMs} ms outside ${policy.openMs}..${policy.maxOpenMs}`,
          );
          if (snapshot.state === "open") {
            assert.ok(
              snapshot.openUntilMs! > now && snapshot.openUntilMs! <= now + policy.maxOpenMs,
              `open until ${snapshot.openUntilMs} at ${now}`,
            );
          }
        }
      },
    ),
    { numRuns: 500 },
  );
});
