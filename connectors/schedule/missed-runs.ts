/**
 * Where a run of the schedule source starts, and what it does with the fires it missed.
 *
 * A fire is *missed* when no run was there to hand it over until it was more than
 * `missedAfterMs` late: the service was down, or the stream stopped or was retrying. A fire
 * less late than that is only *late* and is handed over as usual, so a restart or a deploy
 * that takes a few seconds, or a stream that retries a batch its sink refused, loses nothing.
 * Missed fires follow the schedule's policy:
 * - `skip`: none is handed over; the schedule goes on with its next fire.
 * - `once`: the most recent missed fire is handed over, once, then the schedule goes on.
 *   The most recent rather than the first, as a Kubernetes CronJob does: it is the one
 *   closest to what the schedule would do now; its time and id are still its own.
 */
import type { CompiledSchedule } from "./schedule-expression.js";

/** What a schedule does with the fires it missed. */
export const MISSED_RUN_POLICIES = ["skip", "once"] as const;
export type MissedRunPolicy = (typeof MISSED_RUN_POLICIES)[number];

/** Default of the missed-run policy. */
export const DEFAULT_MISSED_RUNS: MissedRunPolicy = "skip";
/**
 * Default of how late a fire may be before it counts as missed: 60,000 ms. EventBridge
 * Scheduler's own precision is 60 seconds, and a restart rarely takes longer.
 */
export const DEFAULT_MISSED_AFTER_MS = 60_000;

/** Where a run starts, computed once when it starts. */
export interface StartPlan {
  /** Fires strictly after this instant are handed over in order, late ones first. */
  afterMs: number;
  /** Under `once`: the missed fire to hand over before them. */
  catchUpMs?: number;
  /** The instants between which fires were missed, for the log: (from, to]. */
  missed?: { fromMs: number; toMs: number };
}

/** What {@link planStart} needs to know. */
export interface StartInputs {
  /** The last fire handed over and confirmed (the saved position), if any. */
  positionMs: number | undefined;
  /** The first instant the schedule may fire at (config `startAt`), if any. */
  startAtMs: number | undefined;
  /** Now, when the run starts. */
  nowMs: number;
  missedAfterMs: number;
  policy: MissedRunPolicy;
}

/**
 * The start of a run. Without a position or `startAt`, a first run starts now: nothing before
 * is handed over. With them, fires after the later of the two are due, and those already
 * more than `missedAfterMs` old follow the policy.
 */
export function planStart(schedule: CompiledSchedule, inputs: StartInputs): StartPlan {
  const { positionMs, startAtMs, nowMs, missedAfterMs, policy } = inputs;
  let afterMs = positionMs ?? (startAtMs === undefined ? nowMs - 1 : -Infinity);
  if (startAtMs !== undefined) afterMs = Math.max(afterMs, startAtMs - 1);
  const missedUntilMs = nowMs - missedAfterMs;
  if (afterMs >= missedUntilMs || firstAfter(schedule, afterMs, missedUntilMs) === undefined)
    return { afterMs };
  const missed = { fromMs: afterMs, toMs: missedUntilMs };
  if (policy === "skip") return { afterMs: missedUntilMs, missed };
  return {
    afterMs: missedUntilMs,
    missed,
    catchUpMs: lastFireBetween(schedule, afterMs, missedUntilMs),
  };
}

function firstAfter(
  schedule: CompiledSchedule,
  afterMs: number,
  untilMs: number,
): number | undefined {
  const fire = schedule.nextAfter(afterMs);
  return fire !== undefined && fire <= untilMs ? fire : undefined;
}

/**
 * The last fire in (afterMs, untilMs], or undefined. A schedule only walks forward, and
 * walking every fire of a long outage (a minute cron down for a month) would be slow, so
 * this looks back from `untilMs` over windows that double from a minute until one holds a
 * fire, then walks forward inside that window only.
 */
export function lastFireBetween(
  schedule: CompiledSchedule,
  afterMs: number,
  untilMs: number,
): number | undefined {
  if (firstAfter(schedule, afterMs, untilMs) === undefined) return undefined;
  for (let windowMs = 60_000; ; windowMs *= 2) {
    let fire = firstAfter(schedule, Math.max(afterMs, untilMs - windowMs), untilMs);
    if (fire === undefined) continue;
    for (;;) {
      const next = firstAfter(schedule, fire, untilMs);
      if (next === undefined) return fire;
      fire = next;
    }
  }
}
