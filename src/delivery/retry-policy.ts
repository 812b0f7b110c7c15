/**
 * What happens after an attempt: done, another try later, or the dead letters.
 * Pure functions of their inputs (the random source and the time are passed in), so that
 * tests can pin every branch without timers.
 */
import type { DeliveryNext, RetryPolicy } from "../log/log-engine.js";
import type { ClassifiedOutcome } from "./classify-outcome.js";

/** A source of uniform numbers in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

/**
 * The delay before the retry that follows attempt number `attempt` (from 1): exponential
 * backoff with full jitter, `random(0, min(maxDelayMs, baseDelayMs * factor^(attempt-1)))`.
 *
 * Full jitter (rather than "equal" or no jitter) spreads the retries of many deliveries that
 * failed together, so a receiver that comes back is not hit by all of them at once; the cost
 * is that one retry may come almost immediately. A `Retry-After` from the receiver replaces
 * the computed delay, capped at `maxDelayMs` so that a receiver cannot park a delivery for
 * longer than the policy allows.
 *
 * A policy with `delaysMs` uses that list instead (the wait before retry n is
 * `delaysMs[n-1]`, the last one repeating), without jitter: a list is written by someone who
 * wants exactly those waits.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  attempt: number,
  random: RandomSource,
  retryAfterMs?: number,
): number {
  if (retryAfterMs !== undefined) return Math.min(Math.max(0, retryAfterMs), policy.maxDelayMs);
  const delays = policy.delaysMs;
  if (delays !== undefined && delays.length > 0) return delays[Math.min(Math.max(0, attempt - 1), delays.length - 1)]!;
  // factor^(attempt-1) overflows to Infinity for large attempt counts; min() then caps it.
  const ceilingMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * policy.factor ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceilingMs);
}

/** What {@link decideNext} needs about one finished attempt. */
export interface NextInput {
  policy: RetryPolicy;
  /** The number of the attempt that just ended, from 1. */
  attempt: number;
  classified: ClassifiedOutcome;
  /** When the attempt ended. */
  nowMs: number;
  /** When the event entered the log; the max age counts from here. */
  eventReceivedAtMs: number;
  random: RandomSource;
}

/**
 * Decides what follows an attempt. A permanent failure dead-letters at once; a retryable one
 * is rescheduled unless attempts reached `maxAttempts` or the next attempt would start after
 * the event's max age (`eventReceivedAtMs + maxAgeSeconds`): giving up then, rather than
 * waiting for the age to pass, frees the slot early and records the true reason.
 */
export function decideNext(input: NextInput): DeliveryNext {
  const { policy, attempt, classified, nowMs } = input;
  if (classified.outcome === "success") return { kind: "succeeded" };
  const last = classified.error ?? "unknown error";
  if (classified.outcome === "permanent") {
    return { kind: "dead", reason: `permanent failure on attempt ${attempt}: ${last}` };
  }
  if (attempt >= policy.maxAttempts) {
    return { kind: "dead", reason: `gave up after ${attempt} attempts (maxAttempts ${policy.maxAttempts}): ${last}` };
  }
  const nextAttemptAtMs = nowMs + retryDelayMs(policy, attempt, input.random, classified.retryAfterMs);
  const expiresAtMs = input.eventReceivedAtMs + policy.maxAgeSeconds * 1000;
  if (nextAttemptAtMs > expiresAtMs) {
    return {
      kind: "dead",
      reason: `gave up after ${attempt} attempts: the next one would be past the event's max age of ${policy.maxAgeSeconds} s: ${last}`,
    };
  }
  return { kind: "retry", nextAttemptAtMs };
}
