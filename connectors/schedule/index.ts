/**
 * The schedule source: an event each time a schedule fires, as EventBridge Scheduler puts
 * an event on a bus. The schedule is a `cron(...)`, `rate(...)` or `at(...)` expression in a
 * time zone (schedule-expression.ts). The position is the time of the last fire handed over,
 * so a restart goes on from there; fires missed meanwhile follow `missedRuns`
 * (missed-runs.ts). Time comes from `context.clock`, so tests drive it with a manual clock.
 */
import type { SourceDefinition } from "../connector.js";
import type { JsonValue } from "../../src/types.js";
import {
  DEFAULT_MISSED_AFTER_MS,
  DEFAULT_MISSED_RUNS,
  MISSED_RUN_POLICIES,
  planStart,
  type MissedRunPolicy,
} from "./missed-runs.js";
import {
  DEFAULT_SCHEDULE_EVENT_SOURCE,
  DEFAULT_SCHEDULE_EVENT_TYPE,
  fireTimeIso,
  scheduleEvent,
} from "./schedule-event.js";
import { DEFAULT_TIMEZONE, parseScheduleExpression } from "./schedule-expression.js";

export { parseScheduleExpression, type CompiledSchedule } from "./schedule-expression.js";
export { MISSED_RUN_POLICIES, type MissedRunPolicy } from "./missed-runs.js";

/** The config of the schedule source. */
export interface ScheduleSourceConfig {
  /** `cron(...)`, `rate(...)` or `at(...)`, as EventBridge Scheduler writes them. */
  expression: string;
  /** IANA time zone the expression is read in. Default "UTC". */
  timezone?: string;
  /** What to do with fires missed while no run was there. Default "skip". */
  missedRuns?: MissedRunPolicy;
  /** How late a fire may be handed over before it counts as missed (ms). Default 60,000. */
  missedAfterMs?: number;
  /**
   * The first instant the schedule may fire (ISO 8601 with `Z` or an offset); a `rate` is
   * anchored there. Default: the first run's start, when a `rate` fires at once.
   */
  startAt?: string;
  /** What the events carry. */
  event?: { source?: string; type?: string; data?: JsonValue };
}

/**
 * Longest a run sleeps before it looks at the clock again (ms). It sleeps until the next
 * fire otherwise; a clock moved by a test (or a wall clock stepped by NTP) is noticed
 * within this.
 */
export const MAX_CLOCK_CHECK_MS = 1_000;

/** An ISO 8601 instant with a zone: the form of `startAt`. */
const INSTANT_PATTERN =
  "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2})$";

export const scheduleSource: SourceDefinition<ScheduleSourceConfig> = {
  name: "schedule",
  kind: "source",
  description:
    "An event each time a cron(...), rate(...) or at(...) schedule fires, in a time zone",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["expression"],
    properties: {
      expression: {
        type: "string",
        pattern: "^\\s*(cron|rate|at)\\(.*\\)\\s*$",
        description:
          "cron(minutes hours day-of-month month day-of-week year), rate(value unit) or at(yyyy-mm-ddThh:mm:ss)",
      },
      timezone: {
        type: "string",
        minLength: 1,
        description: 'IANA time zone name (default "UTC")',
      },
      missedRuns: {
        enum: [...MISSED_RUN_POLICIES],
        description:
          'Fires missed while no run was there: skip them, or hand over the most recent once (default "skip")',
      },
      missedAfterMs: {
        type: "integer",
        minimum: 0,
        description: "A fire later than this when handed over counts as missed (ms, default 60000)",
      },
      startAt: {
        type: "string",
        pattern: INSTANT_PATTERN,
        description:
          "First instant the schedule may fire, and a rate's anchor (default: the first run's start)",
      },
      event: {
        type: "object",
        additionalProperties: false,
        properties: {
          source: {
            type: "string",
            minLength: 1,
            description: `CloudEvents source (default "${DEFAULT_SCHEDULE_EVENT_SOURCE}")`,
          },
          type: {
            type: "string",
            minLength: 1,
            description: `CloudEvents type (default "${DEFAULT_SCHEDULE_EVENT_TYPE}")`,
          },
          data: { description: "The events' data, any JSON (default: no data)" },
        },
      },
    },
  },
  check(config) {
    try {
      parseScheduleExpression(config.expression, config.timezone ?? DEFAULT_TIMEZONE);
      return [];
    } catch (error) {
      const message = (error as Error).message;
      // The parser names a bad zone by name; anything else is the expression's.
      return [{ pointer: /time ?zone/i.test(message) ? "/timezone" : "/expression", message }];
    }
  },
  create(config, context) {
    const timezone = config.timezone ?? DEFAULT_TIMEZONE;
    // Refuse a bad expression or zone here, with its message, rather than in run().
    parseScheduleExpression(config.expression, timezone);
    const startAtMs = config.startAt === undefined ? undefined : Date.parse(config.startAt);
    const { clock, logger, signal, streamName } = context;

    return {
      async run(handle) {
        const nowMs = clock.nowMs();
        const positionMs = parsePosition(context.position);
        // A rate fires on a grid: from startAt, else from the last fire (itself on the
        // grid), else from this first run's start.
        const anchorMs = startAtMs ?? positionMs ?? nowMs;
        const schedule = parseScheduleExpression(config.expression, timezone, { anchorMs });
        const plan = planStart(schedule, {
          positionMs,
          startAtMs,
          nowMs,
          missedAfterMs: config.missedAfterMs ?? DEFAULT_MISSED_AFTER_MS,
          policy: config.missedRuns ?? DEFAULT_MISSED_RUNS,
        });
        if (plan.missed) {
          logger.warn("schedule missed fires while it was not running", {
            stream: streamName,
            schedule: schedule.description,
            after: fireTimeIso(Math.max(plan.missed.fromMs, 0)),
            until: fireTimeIso(plan.missed.toMs),
            handedOver: plan.catchUpMs === undefined ? "none" : fireTimeIso(plan.catchUpMs),
          });
        }
        const waiting = plan.catchUpMs === undefined ? [] : [plan.catchUpMs];
        let next = schedule.nextAfter(plan.afterMs);

        while (!signal.aborted) {
          const now = clock.nowMs();
          const due = waiting.splice(0, context.maxBatchEvents);
          while (due.length < context.maxBatchEvents && next !== undefined && next <= now) {
            due.push(next);
            next = schedule.nextAfter(next);
          }
          if (due.length > 0) {
            try {
              await handle({
                events: due.map((fireMs) => scheduleEvent(streamName, fireMs, config.event)),
                position: fireTimeIso(due.at(-1) ?? 0),
              });
            } catch (error) {
              // A stopping stream rejects what it did not confirm: the position stays, and
              // the next run hands these fires over again.
              if (signal.aborted) return;
              throw error;
            }
            continue;
          }
          // An at() that fired has nothing more to do; a long wait is still cut short so a
          // moved clock is seen.
          await sleep(
            next === undefined ? MAX_CLOCK_CHECK_MS : Math.min(next - now, MAX_CLOCK_CHECK_MS),
            signal,
          );
        }
      },
      async close() {},
    };
  },
};

function parsePosition(position: string | undefined): number | undefined {
  if (position === undefined) return undefined;
  const ms = Date.parse(position);
  if (Number.isNaN(ms))
    throw new Error(
      `schedule: the saved position ${JSON.stringify(position)} is not an ISO 8601 time`,
    );
  return ms;
}

/** Resolves after `ms`, or at once when `signal` aborts; leaves no timer behind. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(ms, 0));
    signal.addEventListener("abort", done, { once: true });
  });
}
