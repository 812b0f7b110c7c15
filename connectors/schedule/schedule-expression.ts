/**
 * Schedule expressions as AWS EventBridge Scheduler writes them, compiled to a function that
 * says when the schedule fires next:
 * - `cron(minutes hours day-of-month month day-of-week year)`, in a time zone (cron-fields.ts);
 * - `rate(value unit)`, unit `minute(s)`, `hour(s)`, `day(s)`, and, a Relaybus extension for
 *   tests and fast pipelines, `second(s)`;
 * - `at(yyyy-mm-ddThh:mm:ss)`, once, at that wall-clock time in the time zone.
 *
 * Daylight saving time follows EventBridge Scheduler: a cron or at time that does not exist
 * on a spring-forward day (02:30 when clocks jump from 02:00 to 03:00) does not fire that day
 * (an `at` for it is refused); a time that exists twice on a fall-back day fires once, on its
 * first pass. A rate counts fixed durations (a day is 24 hours), whatever the clocks do.
 */
import { parseCronFields } from "./cron-fields.js";
import { compileCronSchedule } from "./cron-schedule.js";
import { assertTimeZone, firstInstantOf } from "./zoned-time.js";

/** The three kinds of schedule. */
export const SCHEDULE_KINDS = ["cron", "rate", "at"] as const;
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

/** The default time zone of a schedule. */
export const DEFAULT_TIMEZONE = "UTC";

/** A compiled schedule: when it fires. */
export interface CompiledSchedule {
  kind: ScheduleKind;
  /** The expression as written. */
  expression: string;
  /** The IANA time zone it is read in. */
  timezone: string;
  /** A sentence for people: "every 5 minutes from 2026-01-01T00:00:00.000Z". */
  description: string;
  /** The first fire strictly after instant `ms` (ms since the epoch); undefined when there is none. */
  nextAfter(ms: number): number | undefined;
}

/** Options of {@link parseScheduleExpression}. */
export interface ScheduleExpressionOptions {
  /**
   * Where a `rate` is anchored, ms since the epoch: it fires at `anchorMs + k * period`
   * for k = 0, 1, 2, ... and never before `anchorMs` (EventBridge Scheduler starts a rate
   * schedule at its start date, or at its creation). Default 0, the Unix epoch.
   * Ignored by `cron` and `at`.
   */
  anchorMs?: number;
}

const RATE_UNIT_MS: Readonly<Record<string, number>> = {
  second: 1_000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
};

/**
 * Parses and compiles a schedule expression read in `timezone` (an IANA name, default
 * "UTC"). Throws an Error whose message names the expression and what is wrong in it, e.g.
 * `cron(0 25 * * ? *): field 2 (hours) 25 is out of range 0-23`.
 */
export function parseScheduleExpression(
  expression: string,
  timezone: string = DEFAULT_TIMEZONE,
  options: ScheduleExpressionOptions = {},
): CompiledSchedule {
  assertTimeZone(timezone);
  const text = expression.trim();
  const call = /^(cron|rate|at)\((.*)\)$/s.exec(text);
  if (call === null) {
    throw new Error(
      `schedule expression ${JSON.stringify(expression)} is not cron(...), rate(...) or at(...), ` +
        `e.g. cron(0 12 * * ? *), rate(5 minutes), at(2026-01-01T09:00:00)`,
    );
  }
  const kind = call[1] as ScheduleKind;
  const inner = call[2] ?? "";
  if (kind === "cron") {
    const nextAfter = compileCronSchedule(parseCronFields(inner), timezone, text);
    return { kind, expression: text, timezone, description: `${text} in ${timezone}`, nextAfter };
  }
  if (kind === "rate") return compileRate(text, inner, timezone, options.anchorMs ?? 0);
  return compileAt(text, inner, timezone);
}

function compileRate(
  text: string,
  inner: string,
  timezone: string,
  anchorMs: number,
): CompiledSchedule {
  const match = /^\s*(\d+)\s+([a-z]+)\s*$/i.exec(inner);
  if (match === null) {
    throw new Error(
      `${text}: expected rate(value unit), a whole number and a unit, e.g. rate(5 minutes)`,
    );
  }
  const value = Number(match[1]);
  const unit = (match[2] ?? "").toLowerCase().replace(/s$/, "");
  const unitMs = RATE_UNIT_MS[unit];
  if (unitMs === undefined) {
    throw new Error(
      `${text}: unit ${JSON.stringify(match[2])} is not one of minute(s), hour(s), day(s), second(s)`,
    );
  }
  if (value < 1) throw new Error(`${text}: the value must be a whole number from 1`);
  const periodMs = value * unitMs;
  if (!Number.isSafeInteger(periodMs)) throw new Error(`${text}: the period is too long`);
  return {
    kind: "rate",
    expression: text,
    timezone,
    description: `every ${value} ${unit}${value === 1 ? "" : "s"} from ${new Date(anchorMs).toISOString()}`,
    nextAfter(ms) {
      if (ms < anchorMs) return anchorMs;
      return anchorMs + (Math.floor((ms - anchorMs) / periodMs) + 1) * periodMs;
    },
  };
}

function compileAt(text: string, inner: string, timezone: string): CompiledSchedule {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(inner.trim());
  if (match === null)
    throw new Error(`${text}: expected at(yyyy-mm-ddThh:mm:ss), e.g. at(2026-01-01T09:00:00)`);
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const checks: [string, number, number, number][] = [
    ["month", month, 1, 12],
    ["day", day, 1, new Date(Date.UTC(year, month, 0)).getUTCDate()],
    ["hour", hour, 0, 23],
    ["minute", minute, 0, 59],
    ["second", second, 0, 59],
  ];
  for (const [name, v, min, max] of checks) {
    if (v < min || v > max) throw new Error(`${text}: ${name} ${v} is out of range ${min}-${max}`);
  }
  const fireMs = firstInstantOf({ year, month, day, hour, minute, second }, timezone);
  if (fireMs === undefined) {
    throw new Error(
      `${text}: ${inner.trim().slice(11)} does not exist on ${inner.trim().slice(0, 10)} in ${timezone} ` +
        "(the clocks skip it when daylight saving time starts); pick a time outside the skipped hour",
    );
  }
  return {
    kind: "at",
    expression: text,
    timezone,
    description: `once at ${inner.trim()} in ${timezone} (${new Date(fireMs).toISOString()})`,
    nextAfter: (ms) => (ms < fireMs ? fireMs : undefined),
  };
}
