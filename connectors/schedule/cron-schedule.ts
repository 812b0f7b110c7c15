/**
 * When a checked cron expression fires, in a time zone.
 *
 * node-cron (the issue asks for it) decides which calendar days match: its matcher knows
 * day-of-month, month and day-of-week with `L`, `W`, `nL` and `n#k`, and this code does not
 * repeat that logic. What node-cron does not offer is written here, small:
 * - AWS syntax (`?`, 1-based weekdays, `a/s` steps, the year field) is translated or
 *   handled in cron-fields.ts; node-cron has no year field.
 * - "The first fire strictly after an arbitrary instant": node-cron's public API only looks
 *   forward from now (`getNextRun`) or tests one instant (`match`), and a missed-run policy
 *   needs fires in the past. The walk below goes day by day and proposes wall-clock times.
 * - Daylight saving time as EventBridge Scheduler does it: a time that does not exist on a
 *   spring-forward day is skipped, and a time that exists twice on a fall-back day fires once,
 *   on its first pass. node-cron's `match` says yes to both passes, so wall times are turned
 *   into instants here (zoned-time.ts), the earlier pass only.
 */
import { createTask } from "node-cron";
import { MAX_CRON_YEAR, type CronFields } from "./cron-fields.js";
import { firstInstantOf, wallTimeAt, type WallTime } from "./zoned-time.js";

/** Decides whether a calendar day (year, month 1-12, day) matches the day fields. */
type DayMatcher = (year: number, month: number, day: number) => boolean;

/**
 * node-cron's matcher for the day fields alone, at midnight UTC: a pure calendar question,
 * whatever the schedule's zone. A task is node-cron's only public handle on its matcher;
 * it is destroyed at once (it was never started, so it holds no timer) and only `match` is
 * used. Throws node-cron's message for a day no month has (`30 FEB`).
 */
function compileDayMatcher(fields: CronFields, where: string): DayMatcher {
  const pattern = `0 0 0 ${fields.dayOfMonth} ${fields.months.join(",")} ${fields.dayOfWeek}`;
  let task: ReturnType<typeof createTask>;
  try {
    task = createTask(pattern, () => {}, { timezone: "UTC" });
  } catch (error) {
    // Every field was checked before; node-cron refuses only days no named month has.
    throw new Error(
      `${where}: field 3 (day-of-month) names no day that the months of field 4 have ` +
        `(node-cron: ${(error as Error).message})`,
      { cause: error },
    );
  }
  void task.destroy();
  return (year, month, day) => task.match(new Date(Date.UTC(year, month - 1, day)));
}

/** The first day of the month after (year, month). */
function nextMonth(year: number, month: number): { year: number; month: number } {
  return month === 12 ? { year: year + 1, month: 1 } : { year, month: month + 1 };
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** The function that gives the first fire strictly after an instant, or undefined after the last year. */
export function compileCronSchedule(
  fields: CronFields,
  timezone: string,
  where: string,
): (afterMs: number) => number | undefined {
  const dayMatches = compileDayMatcher(fields, where);
  const months = new Set(fields.months);
  const lastYear = Math.min(fields.years.at(-1) ?? MAX_CRON_YEAR, MAX_CRON_YEAR);

  /** The first fire on one day, strictly after `afterMs`, not earlier than wall time `from`. */
  function firstOnDay(
    year: number,
    month: number,
    day: number,
    afterMs: number,
    from?: WallTime,
  ): number | undefined {
    for (const hour of fields.hours) {
      if (from !== undefined && hour < from.hour) continue;
      for (const minute of fields.minutes) {
        // Wall times map to instants in order (earlier passes first), so a time before the
        // wall time of `afterMs` on its own day cannot fire after it: skip it without Intl.
        if (from !== undefined && hour === from.hour && minute < from.minute) continue;
        const instant = firstInstantOf({ year, month, day, hour, minute, second: 0 }, timezone);
        if (instant !== undefined && instant > afterMs) return instant;
      }
    }
    return undefined;
  }

  return (afterMs) => {
    const start = wallTimeAt(afterMs, timezone);
    let { year, month, day } = start;
    let from: WallTime | undefined = start;
    for (;;) {
      const yearIndex = fields.years.findIndex((y) => y >= year);
      const nextYear = fields.years[yearIndex];
      if (nextYear === undefined || nextYear > lastYear) return undefined;
      if (nextYear !== year) {
        ({ year, month, day, from } = { year: nextYear, month: 1, day: 1, from: undefined });
      }
      if (!months.has(month)) {
        ({ year, month } = nextMonth(year, month));
        ({ day, from } = { day: 1, from: undefined });
        continue;
      }
      if (dayMatches(year, month, day)) {
        const found = firstOnDay(year, month, day, afterMs, from);
        if (found !== undefined) return found;
      }
      from = undefined;
      if (day < daysIn(year, month)) day += 1;
      else {
        ({ year, month } = nextMonth(year, month));
        day = 1;
      }
    }
  };
}
