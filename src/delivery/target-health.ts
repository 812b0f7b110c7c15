/**
 * Target health: the policy that disables a target, which the delivery engine calls after
 * each attempt, and the question every part that creates or sends deliveries asks first.
 *
 * - A `410 Gone` answer disables the target at once: the receiver says the endpoint is no
 *   more (shared/DESIGN.md section 6). The delivery that got it dead-letters as any
 *   permanent failure.
 * - A target that keeps failing (attempts that {@link endpointSignal} calls failures: 5xx,
 *   408, timeouts, connection errors) without one success for `disableAfterFailingSeconds`
 *   (default 5 days) is disabled too. `failingSinceMs` is written on the first failure after
 *   a success and cleared by the next success (or an answer that shows the endpoint up):
 *   only on those transitions, so a target that keeps failing or keeps succeeding costs no
 *   write per attempt. A 429 neither starts nor ends a failing run.
 * - Every disabled target has a reason a person can read, shown by
 *   `GET /v1/buses/{bus}/rules/{rule}/targets/{target}/status`, and is enabled again with
 *   `POST .../targets/{target}:enable`, which also forgets its failing run.
 *
 * What happens to the deliveries of a disabled target: they are dead-lettered with the
 * reason `target disabled: <reason>` ({@link disabledDeadLetterReason}) — the ones waiting
 * in the engine, and new ones at dispatch (the dispatcher asks {@link TargetHealth.isDisabled}
 * before creating them). Dead letters keep their payload, so nothing is lost: once the
 * endpoint is fixed and the target enabled, `POST /v1/dead-letters:redrive` with
 * `{"filter": {"target": ..., "reason": "target disabled"}}` sends them. Holding them pending
 * instead would grow the delivery table without bound for as long as nobody looks (five days
 * of failing already lie behind an automatic disable), and their retry budgets would run out
 * meanwhile anyway; skipping them would lose events that were acknowledged.
 */
import { errorMessage } from "../errors.js";
import type { TargetAddress, TargetStateStore } from "../log/target-state-store.js";
import type { Clock, Logger } from "../types.js";
import { endpointSignal } from "./circuit-breaker.js";
import type { AttemptOutcome } from "./classify-outcome.js";
import type { TargetPacing } from "./router.js";

/** The beginning of the dead-letter reason of a disabled target's deliveries. */
export const TARGET_DISABLED_REASON_PREFIX = "target disabled: ";

/** The dead-letter reason of a delivery not sent because its target is disabled for `reason`. */
export function disabledDeadLetterReason(reason: string): string {
  return `${TARGET_DISABLED_REASON_PREFIX}${reason}`;
}

/** What {@link createTargetHealth} needs. */
export interface TargetHealthOptions {
  states: TargetStateStore;
  clock: Clock;
  logger: Logger;
}

/** What health needs to know of one attempt: its class and its HTTP status, if an answer came. */
export interface AttemptForHealth {
  outcome: AttemptOutcome;
  status?: number;
}

/** The part of a target's resolved pacing that health uses. */
export type HealthPolicy = Pick<TargetPacing, "disableAfterFailingSeconds">;

/** What an attempt left the target as. */
export interface AfterAttempt {
  /**
   * Set when the target is disabled after this attempt (by it, or already before): the
   * reason. The engine then dead-letters the target's waiting deliveries with
   * {@link disabledDeadLetterReason}.
   */
  disabled?: string;
}

export interface TargetHealth {
  /**
   * Updates the target's health after one attempt at `clock.nowMs()`: disables it on a 410,
   * starts or ends its failing run, and disables it once the run is older than
   * `policy.disableAfterFailingSeconds`. A storage failure is logged and swallowed (the next
   * attempt tries the same transition again): health must never stop delivery.
   */
  afterAttempt(target: TargetAddress, attempt: AttemptForHealth, policy: HealthPolicy): AfterAttempt;
  /** The reason the target is disabled, or undefined when it is enabled. A memory lookup after the first. */
  isDisabled(target: TargetAddress): string | undefined;
}

/** Creates the policy over the target state store. */
export function createTargetHealth(options: TargetHealthOptions): TargetHealth {
  const { states, clock, logger } = options;

  function disable(target: TargetAddress, reason: string, cause: "gone" | "failing", atMs: number): string {
    // Already disabled (an attempt in flight when another one disabled it): the first reason stays.
    const before = states.get(target);
    if (before?.state === "disabled") return before.reason ?? "disabled";
    const stored = states.disable(target, { reason, cause, atMs });
    logger.warn("target disabled", { bus: target.bus, rule: target.rule, targetId: target.targetId, cause, reason });
    return stored.reason ?? reason;
  }

  function update(target: TargetAddress, attempt: AttemptForHealth, policy: HealthPolicy): AfterAttempt {
    const nowMs = clock.nowMs();
    if (attempt.status === 410) {
      const reason = `the endpoint answered 410 Gone at ${new Date(nowMs).toISOString()}`;
      return { disabled: disable(target, reason, "gone", nowMs) };
    }
    const signal = endpointSignal(attempt.outcome, attempt.status);
    const current = states.get(target);
    if (signal === "up") {
      // Only a failing run has anything to clear: asking the store again for every success
      // would build the target's key a second time per attempt.
      if (current?.failingSinceMs !== undefined) states.markSucceeded(target, nowMs);
    } else if (signal === "failure") {
      const since = current?.failingSinceMs;
      if (since === undefined) {
        states.markFailing(target, nowMs);
      } else if (current?.state !== "disabled" && nowMs - since >= policy.disableAfterFailingSeconds * 1000) {
        const reason = `failing without a success since ${new Date(since).toISOString()} (${describeSeconds(policy.disableAfterFailingSeconds)})`;
        return { disabled: disable(target, reason, "failing", nowMs) };
      }
    }
    const after = current?.state === "disabled" ? current : undefined;
    return after === undefined ? {} : { disabled: after.reason ?? "disabled" };
  }

  return {
    afterAttempt(target, attempt, policy) {
      try {
        return update(target, attempt, policy);
      } catch (error) {
        logger.error("target health could not be updated", {
          bus: target.bus,
          rule: target.rule,
          targetId: target.targetId,
          error: errorMessage(error),
        });
        return {};
      }
    },
    isDisabled(target) {
      const state = states.get(target);
      return state?.state === "disabled" ? (state.reason ?? "disabled") : undefined;
    },
  };
}

/** `432000` → `5 days`, `7200` → `2 hours`, `90` → `90 seconds`: the largest whole unit. */
export function describeSeconds(seconds: number): string {
  const units: [number, string][] = [
    [86_400, "day"],
    [3_600, "hour"],
    [60, "minute"],
  ];
  for (const [size, name] of units) {
    if (seconds >= size && seconds % size === 0) {
      const count = seconds / size;
      return `${count} ${name}${count === 1 ? "" : "s"}`;
    }
  }
  return `${seconds} second${seconds === 1 ? "" : "s"}`;
}
